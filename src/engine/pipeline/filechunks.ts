import type { BufferRecycler, Chunk } from './chunker.ts'

/**
 * What cutFileChunks reads from: a FileHandle, or anything that reads like one (for example
 * a ClickHouse part's files with their headers). Reads are asked for at increasing positions,
 * each starting where the previous one ended; fewer bytes than asked only at the end.
 */
export interface ChunkReader {
  read(buffer: Uint8Array<ArrayBuffer>, offset: number, length: number, position: number): Promise<{ bytesRead: number }>
}

/** Reads up to `into.length` bytes at `position`; fewer only at the end of the file. */
async function fill(file: ChunkReader, into: Uint8Array<ArrayBuffer>, position: number): Promise<number> {
  let filled = 0
  while (filled < into.length) {
    const { bytesRead } = await file.read(into, filled, into.length - filled, position + filled)
    if (bytesRead === 0) break
    filled += bytesRead
  }
  return filled
}

/**
 * Like cutChunks, for a file: reads from offset 0 straight into recycled chunk buffers, so the
 * data is copied once (by the kernel) and no per-read buffers are left for the GC. Positional
 * reads: the handle's own file position is neither used nor moved. Stops at the end of the file
 * as it is when reached. `stopped` is checked between reads.
 */
export async function* cutFileChunks(file: ChunkReader, chunkSize: number, buffers: BufferRecycler, stopped: AbortSignal): AsyncGenerator<Chunk> {
  let index = 0
  let position = 0
  let held: Uint8Array<ArrayBuffer> | undefined
  for (;;) {
    stopped.throwIfAborted()
    const next = buffers.take()
    const n = await fill(file, next, position)
    position += n
    if (held && n === 0) {
      buffers.give(next.buffer)
      yield { index, data: held, final: true }
      return
    }
    if (held) yield { index: index++, data: held, final: false }
    if (n < chunkSize) {
      yield { index, data: next.subarray(0, n), final: true }
      return
    }
    held = next
  }
}
