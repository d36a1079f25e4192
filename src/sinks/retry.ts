/**
 * The retry wrapper: exponential backoff with full jitter (delay drawn uniformly from
 * [0, min(maxMs, baseMs·2^(n-1))]), retrying only errors the inner sink calls
 * transient. A permanent error is rethrown at once, unchanged.
 *
 * Replay: a put whose body is a stream is attempted once, because the bytes a failed
 * attempt consumed are gone; buffering a whole stream to replay it would defeat
 * streaming (objects can be many GiB). Its error is rethrown unchanged, so a caller
 * holding a way to reopen the data can retry: `putWithRetry` does that with a body
 * factory. A Buffer body is replayable and retried like every other call.
 *
 * get: the call is retried until a stream is returned; an error in the middle of the
 * returned stream is the reader's to handle (re-get with a range from where it was).
 */
import type { Readable } from 'node:stream'
import { abortedError, type SinkOp } from './common.ts'
import {
  SinkError,
  type GetOptions,
  type ListOptions,
  type ListPage,
  type ObjectInfo,
  type OpOptions,
  type PutOptions,
  type PutResult,
  type Sink,
} from './sink.ts'

/** What the wrapper tells `onRetry` before it sleeps. */
export interface RetryInfo {
  op: SinkOp
  key: string
  /** The attempt that failed (1-based). */
  attempt: number
  delayMs: number
  error: unknown
}

export interface RetryOptions {
  /** Total attempts including the first (>= 1). */
  attempts: number
  baseMs: number
  maxMs: number
  onRetry?: (info: RetryInfo) => void
  /** Uniform in [0, 1); injectable for tests. */
  random?: () => number
  /** Injectable for tests; must reject when `signal` aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
}

/** Defaults: 8 attempts, 200 ms base, 30 s cap (worst case about 25 s of waiting, expected about half). */
export const DEFAULT_RETRY: Readonly<RetryOptions> = Object.freeze({ attempts: 8, baseMs: 200, maxMs: 30_000 })

/** The full-jitter delay before attempt `failed + 1`. Pure given `random`. */
export function backoffDelay(failed: number, o: Pick<RetryOptions, 'baseMs' | 'maxMs'>, random: () => number = Math.random): number {
  const cap = Math.min(o.maxMs, o.baseMs * 2 ** Math.max(0, failed - 1))
  return Math.floor(random() * cap)
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

function resolveOptions(o: Partial<RetryOptions>): RetryOptions {
  const r = { ...DEFAULT_RETRY, ...o }
  if (!Number.isSafeInteger(r.attempts) || r.attempts < 1) throw new RangeError(`retry attempts must be a positive integer, got ${r.attempts}`)
  if (!(r.baseMs >= 0) || !(r.maxMs >= 0)) throw new RangeError('retry baseMs and maxMs must be non-negative')
  return r
}

/** The error after the last attempt: same kind, code and key as the last error, which is its cause. */
function gaveUp(op: SinkOp, key: string, attempts: number, last: unknown): Error {
  const msg = `${op} ${key}: gave up after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${last instanceof Error ? last.message : String(last)}`
  if (last instanceof SinkError) return new SinkError(last.kind, last.code, msg, { key: last.key, cause: last })
  return new SinkError('transient', 'TM_ERR_SINK_IO', msg, { key, cause: last })
}

/**
 * Runs `fn` until it succeeds, fails with an error `isPermanent` accepts (rethrown as is),
 * or `attempts` are used up (a SinkError naming the attempts, caused by the last error).
 */
export async function retryCall<T>(
  fn: (attempt: number) => Promise<T>,
  isPermanent: (err: unknown) => boolean,
  opts: Partial<RetryOptions>,
  what: { op: SinkOp; key: string; signal?: AbortSignal },
): Promise<T> {
  const o = resolveOptions(opts)
  const sleep = o.sleep ?? defaultSleep
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt)
    } catch (err) {
      if (isPermanent(err)) throw err
      if (attempt >= o.attempts) throw gaveUp(what.op, what.key, attempt, err)
      if (what.signal?.aborted) throw abortedError(`${what.op} ${what.key}`, what.signal, what.key)
      const delayMs = backoffDelay(attempt, o, o.random)
      o.onRetry?.({ op: what.op, key: what.key, attempt, delayMs, error: err })
      try {
        await sleep(delayMs, what.signal)
      } catch {
        throw abortedError(`${what.op} ${what.key}`, what.signal, what.key)
      }
    }
  }
}

class RetrySink implements Sink {
  readonly description: string
  private readonly inner: Sink
  private readonly opts: Partial<RetryOptions>

  constructor(inner: Sink, opts: Partial<RetryOptions>) {
    resolveOptions(opts) // fail fast on bad options
    this.inner = inner
    this.opts = opts
    this.description = inner.description
  }

  private run<T>(op: SinkOp, key: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    return retryCall(fn, (e) => this.inner.isPermanent(e), this.opts, { op, key, signal })
  }

  put(key: string, body: Readable | Buffer, opts?: PutOptions): Promise<PutResult> {
    if (!Buffer.isBuffer(body)) return this.inner.put(key, body, opts)
    return this.run('put', key, opts?.signal, () => this.inner.put(key, body, opts))
  }
  get(key: string, opts?: GetOptions): Promise<Readable> {
    return this.run('get', key, opts?.signal, () => this.inner.get(key, opts))
  }
  head(key: string, opts?: OpOptions): Promise<ObjectInfo> {
    return this.run('head', key, opts?.signal, () => this.inner.head(key, opts))
  }
  list(prefix: string, opts?: ListOptions): Promise<ListPage> {
    return this.run('list', JSON.stringify(prefix), opts?.signal, () => this.inner.list(prefix, opts))
  }
  delete(keys: readonly string[], opts?: OpOptions): Promise<void> {
    return this.run('delete', keys.length === 1 ? keys[0]! : `${keys.length} keys`, opts?.signal, () => this.inner.delete(keys, opts))
  }
  copy(from: string, to: string, opts?: OpOptions): Promise<void> {
    return this.run('copy', `${from} -> ${to}`, opts?.signal, () => this.inner.copy(from, to, opts))
  }
  isNotFound(err: unknown): boolean {
    return this.inner.isNotFound(err)
  }
  isPermanent(err: unknown): boolean {
    return this.inner.isPermanent(err)
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}

/** Wraps `sink` so every call except a put of a stream is retried on transient errors (see the file comment). */
export function withRetry(sink: Sink, opts: Partial<RetryOptions> = {}): Sink {
  return new RetrySink(sink, opts)
}

/** Puts a body made by `makeBody` (called afresh for each attempt), retrying transient failures. */
export function putWithRetry(
  sink: Sink,
  key: string,
  makeBody: () => Readable | Buffer | Promise<Readable | Buffer>,
  opts: PutOptions & { retry?: Partial<RetryOptions> } = {},
): Promise<PutResult> {
  const { retry, ...putOpts } = opts
  return retryCall(
    async () => sink.put(key, await makeBody(), putOpts),
    (e) => sink.isPermanent(e),
    retry ?? {},
    { op: 'put', key, signal: opts.signal },
  )
}
