import { ByteQueue } from './bytequeue.ts'
import { MAX_STORED_CHUNK } from './limits.ts'
import { FLAG_FINAL, LENGTH_BYTES, MIN_BODY_BYTES } from './seal.ts'
import { corrupt, type Splitter, type StoredUnit } from './split.ts'

const ZSTD_MAGIC_BE = 0x28b52ffd

/** Splits a sealed stream (codec `zstd+aes256gcm`, layout in seal.ts) into one unit per record. */
export class RecordSplitter implements Splitter {
  readonly #queue = new ByteQueue()
  #sawFinal = false
  count = 0

  push(piece: Buffer): void {
    this.#queue.push(piece)
  }

  next(): StoredUnit | undefined {
    if (this.#queue.length < LENGTH_BYTES) return undefined
    if (this.#sawFinal) throw corrupt(`data after the final chunk (chunk ${this.count - 1})`, { chunk: this.count })
    const body = this.#queue.peek(0, LENGTH_BYTES).readUInt32BE(0)
    if (body < MIN_BODY_BYTES || body > MAX_STORED_CHUNK) {
      const hint = this.#queue.offset === 0 && body === ZSTD_MAGIC_BE ? ' (the object is not encrypted)' : ''
      throw corrupt(`bad record length ${body} at offset ${this.#queue.offset} (chunk ${this.count})${hint}`, { chunk: this.count })
    }
    if (this.#queue.length < LENGTH_BYTES + body) return undefined
    const bytes = this.#queue.take(LENGTH_BYTES + body)
    this.count++
    // The flag is only trusted after the record authenticates (it is in the AAD); here it only
    // tells where the stream must end.
    this.#sawFinal = (bytes[LENGTH_BYTES]! & FLAG_FINAL) !== 0
    return { bytes, final: this.#sawFinal }
  }

  finish(): void {
    if (this.#queue.length > 0) throw corrupt(`${this.#queue.length} bytes after the last complete record (chunk ${this.count})`, { chunk: this.count })
    if (this.#sawFinal) return
    const where = this.#count0() ? 'the object holds no chunk at all' : `the object ends after chunk ${this.count - 1}`
    throw corrupt(`the final chunk is missing: ${where}`, { chunk: this.count })
  }

  #count0(): boolean {
    return this.count === 0
  }
}
