/**
 * The fault-injection wrapper, for tests: fails chosen calls with transient or
 * permanent SinkErrors, cuts put bodies short as a dropped connection would, adds
 * latency, and counts calls (and concurrent calls) per operation so a test can assert
 * how many attempts reached the store. Faults can be armed at any time.
 */
import { Readable } from 'node:stream'
import { discardBody, SINK_OPS, type SinkOp } from './common.ts'
import { SinkError, type GetOptions, type ListOptions, type ListPage, type ObjectInfo, type OpOptions, type PutOptions, type PutResult, type Sink } from './sink.ts'

export type FaultKind = 'transient' | 'permanent'

/** One call as a predicate sees it; `call` counts calls of this op from 1. */
export interface FaultCall {
  op: SinkOp
  key: string
  call: number
}

export interface FaultPlan {
  /** Fail the next `count` calls of `op` (entries are consumed in order). */
  failNext?: { op: SinkOp; count: number; kind?: FaultKind }[]
  /** Fail any call for which this returns a kind. */
  failWhen?: (c: FaultCall) => FaultKind | undefined
  /** Cut the next `count` (default 1) put bodies after `afterBytes` bytes, then fail them (transient). */
  truncatePut?: { afterBytes: number; count?: number }
  /** Delay before every call. */
  latencyMs?: number
}

export interface FaultySink extends Sink {
  /** Calls per op so far, failed ones included. */
  readonly calls: Readonly<Record<SinkOp, number>>
  /** Calls currently inside the wrapper, and the most seen at once. */
  readonly active: number
  readonly maxActive: number
  failNext(op: SinkOp, count: number, kind?: FaultKind): void
  failWhen(pred: FaultPlan['failWhen']): void
  truncateNextPut(afterBytes: number, count?: number): void
  setLatency(ms: number): void
  /** Zeroes the counters (faults stay armed). */
  resetCounts(): void
}

function injected(kind: FaultKind, what: string, key: string): SinkError {
  return new SinkError(kind, 'TM_ERR_SINK_IO', `injected ${kind} fault: ${what}`, { key })
}

/** `body` cut after `afterBytes` bytes, then failing with a transient error. */
function truncated(body: Readable | Buffer, afterBytes: number, key: string): Readable {
  async function* cut(): AsyncGenerator<Buffer> {
    let sent = 0
    try {
      for await (const chunk of Buffer.isBuffer(body) ? [body] : body) {
        const buf = chunk as Buffer
        if (sent + buf.length > afterBytes) {
          yield buf.subarray(0, afterBytes - sent)
          break
        }
        yield buf
        sent += buf.length
      }
    } finally {
      if (!Buffer.isBuffer(body)) body.destroy()
    }
    throw injected('transient', `put ${key} cut after ${afterBytes} bytes`, key)
  }
  return Readable.from(cut(), { objectMode: false })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

class FaultySinkImpl implements FaultySink {
  readonly description: string
  readonly calls: Record<SinkOp, number> = Object.fromEntries(SINK_OPS.map((op) => [op, 0])) as Record<SinkOp, number>
  active = 0
  maxActive = 0
  private readonly inner: Sink
  private readonly pending: { op: SinkOp; count: number; kind: FaultKind }[] = []
  private pred: FaultPlan['failWhen']
  private truncation: { afterBytes: number; count: number } | undefined
  private latency = 0

  constructor(inner: Sink, plan: FaultPlan) {
    this.inner = inner
    this.description = `faulty(${inner.description})`
    for (const f of plan.failNext ?? []) this.failNext(f.op, f.count, f.kind)
    this.pred = plan.failWhen
    if (plan.truncatePut) this.truncateNextPut(plan.truncatePut.afterBytes, plan.truncatePut.count)
    this.latency = plan.latencyMs ?? 0
  }

  failNext(op: SinkOp, count: number, kind: FaultKind = 'transient'): void {
    this.pending.push({ op, count, kind })
  }
  failWhen(pred: FaultPlan['failWhen']): void {
    this.pred = pred
  }
  truncateNextPut(afterBytes: number, count = 1): void {
    this.truncation = { afterBytes, count }
  }
  setLatency(ms: number): void {
    this.latency = ms
  }
  resetCounts(): void {
    for (const op of SINK_OPS) this.calls[op] = 0
    this.maxActive = this.active
  }

  /** The fault for this call, consuming a failNext entry if one applies. */
  private fault(c: FaultCall): FaultKind | undefined {
    const i = this.pending.findIndex((p) => p.op === c.op && p.count > 0)
    if (i >= 0) {
      const p = this.pending[i]!
      if (--p.count === 0) this.pending.splice(i, 1)
      return p.kind
    }
    return this.pred?.(c)
  }

  private async run<T>(op: SinkOp, key: string, fn: () => Promise<T>): Promise<T> {
    const call = ++this.calls[op]
    this.active++
    this.maxActive = Math.max(this.maxActive, this.active)
    try {
      if (this.latency > 0) await sleep(this.latency)
      const kind = this.fault({ op, key, call })
      if (kind) throw injected(kind, `${op} ${key} (call ${call})`, key)
      return await fn()
    } finally {
      this.active--
    }
  }

  put(key: string, body: Readable | Buffer, opts?: PutOptions): Promise<PutResult> {
    const attempt = this.run('put', key, () => {
      const t = this.truncation
      if (t && t.count > 0) {
        if (--t.count === 0) this.truncation = undefined
        return this.inner.put(key, truncated(body, t.afterBytes, key), opts)
      }
      return this.inner.put(key, body, opts)
    })
    // Like a real sink, an injected failure releases the body it did not read.
    return attempt.catch((err: unknown) => {
      discardBody(body)
      throw err
    })
  }
  get(key: string, opts?: GetOptions): Promise<Readable> {
    return this.run('get', key, () => this.inner.get(key, opts))
  }
  head(key: string, opts?: OpOptions): Promise<ObjectInfo> {
    return this.run('head', key, () => this.inner.head(key, opts))
  }
  list(prefix: string, opts?: ListOptions): Promise<ListPage> {
    return this.run('list', prefix, () => this.inner.list(prefix, opts))
  }
  delete(keys: readonly string[], opts?: OpOptions): Promise<void> {
    return this.run('delete', keys.join(','), () => this.inner.delete(keys, opts))
  }
  copy(from: string, to: string, opts?: OpOptions): Promise<void> {
    return this.run('copy', from, () => this.inner.copy(from, to, opts))
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

/** Wraps `sink` with the faults of `plan` (none by default) and per-op call counters. */
export function withFaults(sink: Sink, plan: FaultPlan = {}): FaultySink {
  return new FaultySinkImpl(sink, plan)
}
