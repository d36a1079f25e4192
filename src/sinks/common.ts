/**
 * Small pieces shared by the Sink adapters and wrappers: operation names, range
 * checks, byte counting, error relaying for returned streams, abort errors.
 */
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream'
import { DirectBody, type DirectSource } from '../net/direct.ts'
import { SinkError } from './sink.ts'

/** The names of the Sink operations, as wrappers count and report them. */
export type SinkOp = 'put' | 'get' | 'head' | 'list' | 'delete' | 'copy'

/** All Sink operation names, in a fixed order. */
export const SINK_OPS: readonly SinkOp[] = ['put', 'get', 'head', 'list', 'delete', 'copy']

/** The permanent error for an operation stopped by its AbortSignal. */
export function abortedError(what: string, signal: AbortSignal | undefined, key?: string): SinkError {
  return new SinkError('permanent', 'TM_ERR_ABORTED', `${what}: aborted`, { key, cause: signal?.reason })
}

/** Throws the permanent abort error when `signal` is already aborted. */
export function throwIfAborted(what: string, signal: AbortSignal | undefined, key?: string): void {
  if (signal?.aborted) throw abortedError(what, signal, key)
}

/** Whether `err` is the AbortError that Node streams and the AWS SDK throw on abort. */
export function isAbortError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as { code?: unknown }).code === 'ABORT_ERR')
}

/**
 * Validates a requested range before any I/O: integers, `start >= 0`, `end >= start`.
 * S3 silently ignores a malformed Range header and sends the whole object, so the
 * check must happen on our side for both adapters to agree.
 */
export function checkRange(key: string, range: { start: number; end?: number }): void {
  const { start, end } = range
  const ok = Number.isSafeInteger(start) && start >= 0 && (end === undefined || (Number.isSafeInteger(end) && end >= start))
  if (!ok) throw new SinkError('permanent', 'TM_ERR_SINK_IO', `invalid byte range ${JSON.stringify(range)} for ${key}`, { key })
}

/** The error for a range that starts at or past the end of the object (S3's InvalidRange). */
export function rangeNotSatisfiable(key: string, start: number, size: number, cause?: unknown): SinkError {
  return new SinkError('permanent', 'TM_ERR_SINK_IO', `range starting at byte ${start} is not satisfiable for ${key} (size ${size})`, { key, cause })
}

/** Throws a permanent error when a known `expected` length differs from `actual`. */
export function checkLength(key: string, expected: number | undefined, actual: number): void {
  if (expected !== undefined && expected !== actual) {
    throw new SinkError('permanent', 'TM_ERR_SINK_IO', `body of ${key} does not match contentLength ${expected} (got ${actual} bytes)`, { key })
  }
}

/** A pass-through that counts bytes and, when `expected` is given, fails the stream unless exactly that many arrive. */
export class ByteCounter extends Transform {
  bytes = 0
  readonly expected: number | undefined
  readonly key: string

  constructor(key: string, expected?: number) {
    super()
    this.key = key
    this.expected = expected
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length
    if (this.expected !== undefined && this.bytes > this.expected) return cb(this.mismatch())
    cb(null, chunk)
  }

  // Failing in flush (before 'end') means a consumer never sees a clean end, so a
  // short body cannot be committed as a complete object.
  override _flush(cb: TransformCallback): void {
    cb(this.expected !== undefined && this.bytes !== this.expected ? this.mismatch() : null)
  }

  private mismatch(): SinkError {
    return new SinkError('permanent', 'TM_ERR_SINK_IO', `body of ${this.key} does not match contentLength ${this.expected} (got ${this.bytes}+ bytes)`, { key: this.key })
  }
}

/**
 * ByteCounter for a body read direct (src/net/direct.ts): counts each read against
 * `expected` and fails at the end unless exactly that many arrived. Remembers a failure
 * of the body it reads (`failure`), which the caller rethrows unchanged: it is not the
 * store's to classify.
 */
export class DirectCounter extends DirectBody {
  bytes = 0
  failure: { err: unknown } | undefined
  readonly key: string
  readonly expected: number | undefined
  readonly src: Readable & DirectSource

  constructor(key: string, src: Readable & DirectSource, expected?: number) {
    super()
    this.key = key
    this.src = src
    this.expected = expected
  }

  protected async pull(buffer: Uint8Array, offset: number, length: number): Promise<number> {
    let n: number
    try {
      n = await this.src.readInto(buffer, offset, length)
    } catch (err) {
      this.failure ??= { err }
      throw err
    }
    this.bytes += n
    const over = this.expected !== undefined && this.bytes > this.expected
    if (over || (n === 0 && this.expected !== undefined && this.bytes !== this.expected)) {
      const err = new SinkError('permanent', 'TM_ERR_SINK_IO', `body of ${this.key} does not match contentLength ${this.expected} (got ${this.bytes}${over ? '+' : ''} bytes)`, { key: this.key })
      this.failure ??= { err }
      throw err
    }
    return n
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.src.destroy()
    cb(err)
  }
}

/**
 * Re-emits `src` through a PassThrough whose errors are mapped by `mapErr`, so a reader
 * sees SinkErrors mid-stream too. Destroying the returned stream destroys `src`
 * (releases the file handle or the HTTP connection).
 */
export function relay(src: Readable, mapErr: (err: unknown) => Error): Readable {
  const out = new PassThrough()
  src.on('error', (err) => out.destroy(mapErr(err)))
  out.once('close', () => {
    if (!src.destroyed) src.destroy()
  })
  src.pipe(out)
  return out
}

/**
 * Wraps a put body so the caller's own stream failures can be told apart from the
 * store's: an error the body raises by itself is marked; when the store fails first,
 * the wrapper is destroyed and the body torn down without an error of its own.
 * The caller's error is rethrown unchanged (it is not the store's to classify).
 */
export function guardBody(body: Readable): { stream: Readable; isSourceError(err: unknown): boolean } {
  let failure: { err: unknown } | undefined
  async function* pass(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of body) yield typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)
    } catch (err) {
      failure = { err }
      throw err
    }
  }
  return { stream: Readable.from(pass(), { objectMode: false }), isSourceError: (err) => failure !== undefined && failure.err === err }
}

/** Releases a body the sink will not read (after an early failure). */
export function discardBody(body: Readable | Buffer): void {
  if (!Buffer.isBuffer(body) && !body.destroyed) body.destroy()
}

/** Throws a permanent error unless `pageSize` is absent or a positive integer (0 would page forever). */
export function checkPageSize(what: string, pageSize: number | undefined): void {
  if (pageSize !== undefined && (!Number.isSafeInteger(pageSize) || pageSize < 1)) {
    throw new SinkError('permanent', 'TM_ERR_SINK_IO', `${what}: pageSize must be a positive integer, got ${pageSize}`)
  }
}
