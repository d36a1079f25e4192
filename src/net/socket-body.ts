/**
 * The body of a bulk read from a socket (a ClickHouse export over raw-http.ts, a
 * pg_basebackup tar through a FIFO), readable two ways:
 *
 * - as a stream, like any Readable;
 * - with `readInto(buffer, offset, length)`, which copies the bytes of each
 *   socket read straight into the caller's buffer (the pipeline's chunk
 *   buffers). With the socket reading into one fixed buffer of its own
 *   (`onread`), a whole transfer then allocates nothing per read; before, the
 *   garbage collector took about a fifth of the main thread of an export
 *   (bench/RESULTS.md, 2026-11-28T18:12Z).
 *
 * The first use decides; bytes that arrive before it are kept. Only one read
 * is pending at a time, and the socket is paused while delivered bytes wait
 * (at most one socket read of them).
 *
 * At the end, `endCheck` sees the last 16 KiB and may still fail the body (a
 * ClickHouse exception written after `200 OK`, stream-guard.ts; a tool's exit
 * status). Errors are passed through `mapError`.
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
  #finishing = false
  #spare: Buffer | undefined
  #failure: Error | undefined
  /** Runs once the last byte was delivered: an error it returns (or rejects with) fails the body instead of ending it. */
  endCheck: ((tail: Buffer) => Error | undefined | Promise<Error | undefined>) | undefined
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
    if (this.#mode === 'stream') {
      if (!this.push(used === 0 && owned ? bytes : Buffer.from(bytes.subarray(used)))) this.#socket.pause()
      return
    }
    this.#stash.push(used === 0 && owned ? bytes : this.#spareCopy(bytes.subarray(used)))
    this.#stashed += bytes.length - used
    this.#socket.pause()
  }

  /**
   * A copy of `bytes` kept until read: in the spare buffer when nothing else is stashed (the
   * common case, the rest of a socket read that crossed the end of a chunk buffer; the socket
   * stays paused until it has been read, so the spare is not overwritten meanwhile), else new.
   */
  #spareCopy(bytes: Buffer): Buffer {
    if (this.#stash.length > 0) return Buffer.from(bytes)
    if (!this.#spare || this.#spare.length < bytes.length) this.#spare = Buffer.allocUnsafe(Math.max(bytes.length, 256 * 1024))
    bytes.copy(this.#spare)
    return this.#spare.subarray(0, bytes.length)
  }

  /** The last byte of the body was delivered: check its end, then end the body. */
  finish(): void {
    if (this.#finishing || this.destroyed) return
    this.#finishing = true
    let checked: Error | undefined | Promise<Error | undefined>
    try {
      checked = this.endCheck?.(this.#tailBytes())
    } catch (err) {
      checked = err as Error
    }
    if (checked instanceof Promise) checked.then((err) => this.#end(err), (err: unknown) => this.#end(err as Error))
    else this.#end(checked)
  }

  #end(err: Error | undefined): void {
    if (this.destroyed) return
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
      this.#closeAtEnd()
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
    if (this.#complete) {
      this.#closeAtEnd()
      return Promise.resolve(0)
    }
    if (this.#failure) return Promise.reject(this.#failure)
    if (this.destroyed) return Promise.reject(this.mapError(new Error('the response body was closed before its end')))
    return new Promise<number>((resolve, reject) => {
      this.#pending = { buffer, offset, length, resolve, reject }
      this.#socket.resume()
    })
  }

  /** Read direct to its end: close, so whoever waits for the close (a sink's concurrency slot) goes on. */
  #closeAtEnd(): void {
    process.nextTick(() => this.destroy())
  }

  override _read(): void {
    this.#mode ??= 'stream'
    if (this.#mode !== 'stream') return
    // Bytes in the spare buffer are copied: a stream's reader may keep what it is given.
    for (const b of this.#stash) this.push(this.#spare && b.buffer === this.#spare.buffer ? Buffer.from(b) : b)
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

