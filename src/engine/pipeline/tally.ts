import { createHash, type Hash } from 'node:crypto'

/** Counts the stored bytes and hashes them in stream order: what the manifest records and restore checks. */
export class StoredTally {
  readonly #hash: Hash = createHash('sha256')
  bytes = 0

  add(stored: Uint8Array): void {
    this.#hash.update(stored)
    this.bytes += stored.length
  }

  /** Hex sha256 of everything added; call once. */
  digest(): string {
    return this.#hash.digest('hex')
  }
}
