import { ByteQueue } from './bytequeue.ts'
import { MAX_STORED_CHUNK } from './limits.ts'
import { corrupt, type Splitter, type StoredUnit } from './split.ts'
import { BLOCK_RESERVED, BLOCK_RLE, MAX_BLOCK, ZSTD_MAGIC, hasChecksum, headerBytes } from './zstdframe.ts'

/**
 * Splits concatenated zstd frames (codec `zstd`) into one unit per frame by walking block
 * headers, without decompressing: frames are then decompressed in parallel on the pool.
 * Node's zstd decompressor stops after the first frame, so it cannot take the stream whole.
 */
export class FrameSplitter implements Splitter {
  readonly #queue = new ByteQueue()
  /** Offset in the queue of the next block header, or 0 while the frame header is not parsed. */
  #cursor = 0
  #checksum = false
  /** Length of the current frame once its last block is seen. */
  #frameEnd = 0
  count = 0

  push(piece: Buffer): void {
    this.#queue.push(piece)
  }

  next(): StoredUnit | undefined {
    if (this.#cursor === 0 && !this.#readHeader()) return undefined
    while (this.#frameEnd === 0) {
      if (!this.#readBlock()) return undefined
    }
    if (this.#queue.length < this.#frameEnd) return undefined
    const bytes = this.#queue.take(this.#frameEnd)
    this.#cursor = 0
    this.#frameEnd = 0
    this.count++
    return { bytes, final: undefined }
  }

  finish(): void {
    if (this.#queue.length > 0) throw corrupt(`${this.#queue.length} bytes after the last complete frame (chunk ${this.count})`, { chunk: this.count })
  }

  #readHeader(): boolean {
    if (this.#queue.length < 5) return false
    const start = this.#queue.peek(0, 5)
    if (start.readUInt32LE(0) !== ZSTD_MAGIC) {
      const hint = this.#queue.offset === 0 ? ' (an encrypted object needs its key)' : ''
      throw corrupt(`no zstd frame at offset ${this.#queue.offset} (chunk ${this.count})${hint}`, { chunk: this.count })
    }
    const descriptor = start[4]!
    const size = headerBytes(descriptor)
    if (this.#queue.length < size) return false
    this.#checksum = hasChecksum(descriptor)
    this.#cursor = size
    return true
  }

  #readBlock(): boolean {
    if (this.#queue.length < this.#cursor + 3) return false
    const header = this.#queue.peek(this.#cursor, 3).readUIntLE(0, 3)
    const type = (header >> 1) & 3
    const size = header >>> 3
    if (type === BLOCK_RESERVED || size > MAX_BLOCK) throw corrupt(`bad zstd block header in chunk ${this.count}`, { chunk: this.count })
    this.#cursor += 3 + (type === BLOCK_RLE ? 1 : size)
    if (this.#cursor > MAX_STORED_CHUNK) throw corrupt(`zstd frame of chunk ${this.count} exceeds ${MAX_STORED_CHUNK} bytes`, { chunk: this.count })
    if ((header & 1) === 1) this.#frameEnd = this.#cursor + (this.#checksum ? 4 : 0)
    return true
  }
}
