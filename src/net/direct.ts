/**
 * Bodies read "direct": a source that copies its bytes straight into a caller's
 * buffer (`readInto`, as src/net/socket-body.ts does from its socket's fixed read
 * buffer) can be passed through a chain of checks and onto another socket without
 * a buffer allocated per read. Every stage here is also a Readable, so a consumer
 * that only knows streams still works (it gets a new buffer per read).
 */
import { Readable } from 'node:stream'

/** A source that can copy its bytes into a caller's buffer; resolves 0 at its end. */
export interface DirectSource {
  readInto(buffer: Uint8Array, offset: number, length: number): Promise<number>
}

export function hasReadInto(s: unknown): s is Readable & DirectSource {
  return s instanceof Readable && typeof (s as Partial<DirectSource>).readInto === 'function'
}

/** Bytes per read when a direct body is read as a stream. */
const STREAM_READ_BYTES = 256 * 1024

/**
 * A Readable whose bytes come from `pull` (a readInto): read direct with `readInto`, or as a
 * stream. `pull` resolving 0 ends it; rejecting fails it. The first use decides the mode.
 */
export abstract class DirectBody extends Readable implements DirectSource {
  #mode: 'stream' | 'direct' | undefined
  #ended = false

  constructor() {
    super()
    // A failure is reported by readInto's rejection (or to a stream reader's own listener):
    // unheard, it must not become an uncaught exception.
    this.on('error', () => {})
  }

  /** Copies the next bytes into `buffer`; 0 at the end. */
  protected abstract pull(buffer: Uint8Array, offset: number, length: number): Promise<number>

  async readInto(buffer: Uint8Array, offset: number, length: number): Promise<number> {
    if (this.#mode === 'stream') throw new Error('readInto on a body already read as a stream')
    this.#mode = 'direct'
    if (this.#ended) return 0
    if (this.errored) throw this.errored
    if (this.destroyed) throw new Error('the body was closed before its end')
    try {
      const n = await this.pull(buffer, offset, length)
      if (n === 0) {
        this.#ended = true
        // Read to its end: close, so whoever waits for the close (a sink's concurrency slot) goes on.
        process.nextTick(() => this.destroy())
      }
      return n
    } catch (err) {
      this.destroy(err as Error)
      throw err
    }
  }

  override _read(): void {
    this.#mode ??= 'stream'
    if (this.#mode !== 'stream') return
    const buffer = Buffer.allocUnsafe(STREAM_READ_BYTES)
    this.pull(buffer, 0, buffer.length).then(
      (n) => this.push(n === 0 ? null : buffer.subarray(0, n)),
      (err: unknown) => this.destroy(err as Error),
    )
  }
}

/** Free buffers for direct writes to a socket: a buffer goes back once the socket wrote it. */
const BUFFER_BYTES = 256 * 1024
const MAX_FREE = 64
const free: Buffer[] = []

export function takeBuffer(): Buffer {
  return free.pop() ?? Buffer.allocUnsafe(BUFFER_BYTES)
}

/** Returns a buffer from takeBuffer (whole, not a part of it) once nothing refers to its bytes. */
export function giveBuffer(b: Buffer): void {
  if (free.length < MAX_FREE && b.length === BUFFER_BYTES) free.push(b)
}
