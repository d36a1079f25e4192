import type { Readable } from 'node:stream'

/** One chunk of the source: `data` is a view from offset 0 of a transferable ArrayBuffer; only the last chunk has `final`. */
export interface Chunk {
  index: number
  data: Uint8Array<ArrayBuffer>
  final: boolean
}

/**
 * Chunk-sized ArrayBuffers for reuse: workers hand the input buffer back with their result,
 * so a long stream allocates about maxInFlight buffers in total instead of one per chunk.
 */
export class BufferRecycler {
  readonly #size: number
  #keep: number
  readonly #free: ArrayBuffer[] = []

  constructor(size: number, keep: number) {
    this.#size = size
    this.#keep = keep
  }

  take(): Uint8Array<ArrayBuffer> {
    return new Uint8Array(this.#free.pop() ?? new ArrayBuffer(this.#size))
  }

  /** Retains up to `keep` idle buffers from now on, if that is more than before. */
  keepAtLeast(keep: number): void {
    this.#keep = Math.max(this.#keep, keep)
  }

  give(buffer: ArrayBuffer): void {
    if (buffer.byteLength === this.#size && !buffer.detached && this.#free.length < this.#keep) this.#free.push(buffer)
  }
}

const shared = new WeakMap<object, Map<number, BufferRecycler>>()

/**
 * The recycler of `owner` (a worker pool) for `size`-byte chunks, shared by every object encoded
 * with it: a backup of many small objects (one per ClickHouse part) then reuses a few chunk
 * buffers instead of allocating fresh ones for each object, which cost a garbage collection
 * every few objects. At most `keep` idle buffers are retained (the largest `keep` asked for).
 */
export function sharedRecycler(owner: object, size: number, keep: number): BufferRecycler {
  let bySize = shared.get(owner)
  if (!bySize) shared.set(owner, (bySize = new Map()))
  let r = bySize.get(size)
  if (!r) bySize.set(size, (r = new BufferRecycler(size, keep)))
  r.keepAtLeast(keep)
  return r
}

function toBytes(piece: unknown): Uint8Array {
  if (piece instanceof Uint8Array) return piece
  if (typeof piece === 'string') return Buffer.from(piece)
  throw new TypeError(`pipeline source must yield bytes, got ${typeof piece}`)
}

/**
 * Cuts `source` into chunks of exactly `chunkSize` bytes (the last may be shorter). A full chunk is
 * held back until the next byte arrives, because whether it is the final one is part of what gets
 * authenticated. Empty input yields one empty final chunk, so every object has at least one frame
 * (the zstd CLI rejects a zero-length file). Reads the source only as fast as chunks are pulled.
 */
export async function* cutChunks(source: Readable, chunkSize: number, buffers: BufferRecycler): AsyncGenerator<Chunk> {
  let index = 0
  let current: Uint8Array<ArrayBuffer> | undefined
  let fill = 0
  let held: Uint8Array<ArrayBuffer> | undefined
  for await (const piece of source) {
    const bytes = toBytes(piece)
    for (let offset = 0; offset < bytes.length; ) {
      if (held) {
        yield { index: index++, data: held, final: false }
        held = undefined
      }
      current ??= buffers.take()
      const n = Math.min(chunkSize - fill, bytes.length - offset)
      current.set(bytes.subarray(offset, offset + n), fill)
      fill += n
      offset += n
      if (fill === chunkSize) {
        held = current
        current = undefined
        fill = 0
      }
    }
  }
  const last = held ?? (current ?? buffers.take()).subarray(0, fill)
  yield { index, data: last, final: true }
}
