/**
 * The body of a bulk response (raw-http.ts), readable two ways:
 *
 * - as a stream, like any Readable;
 * - with `readInto(buffer, offset, length)`, which copies the bytes of each
 *   socket read straight into the caller's buffer (the pipeline's chunk
 *   buffers). With the socket reading into one fixed buffer of its own
 *   (`onread`), a whole export then allocates nothing per read: measured, the
 *   garbage collector's share of an export's main thread went from ~20 % to
 *   almost nothing (bench/RESULTS.md).
 *
 * The first use decides; bytes that arrive before it are kept. Only one read
 * is pending at a time, and the socket is paused while delivered bytes wait
 * (at most one socket read of them).
 *
 * At the end of the body, `endCheck` looks at its last 16 KiB: a server that
 * fails after `200 OK` writes its exception there (stream-guard.ts), and the
 * body then fails instead of ending. Errors are passed through `mapError`.
 */
import { Readable } from 'node:stream'

/** How many bytes at the end of the body endCheck sees. */
export const TAIL_BYTES = 16 * 1024

/** What the body controls of its connection. */
export interface BodySocket {
  pause(): void
  resume(): void
  destroy(): void
}

interface PendingRead {
  buffer: Uint8Array
  offset: number
  length: number
  resolve(n: number): void
  reject(err: Error): void
}

export class SocketBody extends Readable {
  readonly #socket: BodySocket
  #mode: 'stream' | 'direct' | undefined
  /** Owned bytes delivered before anyone asked for them. */
  #stash: Buffer[] = []
  #stashed = 0
  #pending: PendingRead | undefined
  readonly #tail = Buffer.allocUnsafe(2 * TAIL_BYTES)
  #tailLength = 0
  /** The whole body arrived and passed the end check. */
  #complete = false
  #failure: Error | undefined
  /** Returns an error when the body's last bytes hold a server exception. */
  endCheck: ((tail: Buffer) => Error | undefined) | undefined
  mapError: (err: Error) => Error = (err) => err

  constructor(socket: BodySocket) {
    super({ highWaterMark: 256 * 1024 })
    this.#socket = socket
    // A failure before the consumer listens stays in `errored` and reaches readInto and
    // for-await (both look there) instead of becoming an uncaught exception.
    this.on('error', () => {})
  }

  /**
   * Hands over decoded body bytes. `owned`: the caller will not reuse `bytes`, so they may be
   * kept; otherwise they are copied before this returns (the socket's read buffer is reused).
   */
  deliver(bytes: Buffer, owned: boolean): void {
    if (bytes.length === 0 || this.destroyed) return
    this.#keepTail(bytes)
    let used = 0
    const p = this.#pending
    if (p && this.#stashed === 0) {
      used = Math.min(p.length, bytes.length)
      bytes.copy(p.buffer, p.offset, 0, used)
      this.#pending = undefined
      p.resolve(used)
    }
    if (used === bytes.length) return
    const rest = used === 0 && owned ? bytes : Buffer.from(bytes.subarray(used))
    if (this.#mode === 'stream') {
      if (!this.push(rest)) this.#socket.pause()
      return
    }
    this.#stash.push(rest)
    this.#stashed += rest.length
    this.#socket.pause()
  }

  /** The last byte of the body was delivered: check its end, then end the body. */
  finish(): void {
    const err = this.endCheck?.(this.#tailBytes())
    if (err) {
      this.destroy(err)
      return
    }
    this.#complete = true
    if (this.#mode === 'stream') this.push(null)
    else if (this.#pending && this.#stashed === 0) {
      const p = this.#pending
      this.#pending = undefined
      p.resolve(0)
    }
  }

  /**
   * Copies up to `length` bytes into `buffer` at `offset`; resolves with how many (at least
   * one), or 0 at the end of the body. Rejects with the body's failure.
   */
  readInto(buffer: Uint8Array, offset: number, length: number): Promise<number> {
    if (this.#mode === 'stream') return Promise.reject(new Error('readInto on a body already read as a stream'))
    this.#mode = 'direct'
    if (this.#pending) return Promise.reject(new Error('readInto while another read is pending'))
    if (this.#stashed > 0) return Promise.resolve(this.#fromStash(buffer, offset, length))
    if (this.#complete) return Promise.resolve(0)
    if (this.#failure) return Promise.reject(this.#failure)
    if (this.destroyed) return Promise.reject(this.mapError(new Error('the response body was closed before its end')))
    return new Promise<number>((resolve, reject) => {
      this.#pending = { buffer, offset, length, resolve, reject }
      this.#socket.resume()
    })
  }

  override _read(): void {
    this.#mode ??= 'stream'
    if (this.#mode !== 'stream') return
    for (const b of this.#stash) this.push(b)
    this.#stash = []
    this.#stashed = 0
    if (this.#complete) this.push(null)
    else this.#socket.resume()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const mapped = err ? this.mapError(err) : null
    if (!this.#complete || mapped) this.#failure ??= mapped ?? this.mapError(new Error('the response body was closed before its end'))
    const p = this.#pending
    this.#pending = undefined
    if (p && this.#failure) p.reject(this.#failure)
    else p?.resolve(0)
    this.#stash = []
    this.#stashed = 0
    this.#socket.destroy()
    callback(mapped)
  }

  #fromStash(buffer: Uint8Array, offset: number, length: number): number {
    let n = 0
    while (n < length && this.#stash.length > 0) {
      const head = this.#stash[0] as Buffer
      const take = Math.min(length - n, head.length)
      head.copy(buffer, offset + n, 0, take)
      n += take
      if (take === head.length) this.#stash.shift()
      else this.#stash[0] = head.subarray(take)
    }
    this.#stashed -= n
    if (this.#stashed === 0 && !this.#complete) this.#socket.resume()
    return n
  }

  #keepTail(bytes: Buffer): void {
    if (bytes.length >= TAIL_BYTES) {
      bytes.copy(this.#tail, 0, bytes.length - TAIL_BYTES)
      this.#tailLength = TAIL_BYTES
      return
    }
    if (this.#tailLength + bytes.length > this.#tail.length) {
      const keep = Math.min(this.#tailLength, TAIL_BYTES)
      this.#tail.copy(this.#tail, 0, this.#tailLength - keep, this.#tailLength)
      this.#tailLength = keep
    }
    bytes.copy(this.#tail, this.#tailLength)
    this.#tailLength += bytes.length
  }

  #tailBytes(): Buffer {
    return Buffer.from(this.#tail.subarray(Math.max(0, this.#tailLength - TAIL_BYTES), this.#tailLength))
  }
}

/** True for a stream that can be read with readInto (a bulk response body). */
export function isSocketBody(x: unknown): x is SocketBody {
  return x instanceof SocketBody
}
