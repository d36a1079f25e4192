/**
 * The concurrency wrapper: at most `maxConcurrent` operations run against the inner
 * sink at once; the rest wait in FIFO order.
 *
 * get holds its slot until the returned stream ends, fails or is destroyed, because
 * an open stream is an open connection or file handle, which is what the limit is
 * for. Consequence: a caller must read or destroy each stream it got before waiting
 * for more gets than the limit allows, or it waits forever on itself.
 */
import { finished, type Readable } from 'node:stream'
import type { GetOptions, ListOptions, ListPage, ObjectInfo, OpOptions, PutOptions, PutResult, Sink } from './sink.ts'

/** A counting semaphore with FIFO waiters. */
export class Semaphore {
  private free: number
  private readonly waiters: (() => void)[] = []

  constructor(slots: number) {
    if (!Number.isSafeInteger(slots) || slots < 1) throw new RangeError(`concurrency limit must be a positive integer, got ${slots}`)
    this.free = slots
  }

  /** Resolves with a release function (idempotent) once a slot is free. */
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--
    else await new Promise<void>((resolve) => this.waiters.push(resolve))
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.waiters.shift()
      if (next) next() // hand the slot over directly
      else this.free++
    }
  }
}

class LimitSink implements Sink {
  readonly description: string
  private readonly inner: Sink
  private readonly sem: Semaphore

  constructor(inner: Sink, maxConcurrent: number) {
    this.inner = inner
    this.sem = new Semaphore(maxConcurrent)
    this.description = inner.description
  }

  private async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.sem.acquire()
    try {
      return await fn()
    } finally {
      release()
    }
  }

  put(key: string, body: Readable | Buffer, opts?: PutOptions): Promise<PutResult> {
    return this.run(() => this.inner.put(key, body, opts))
  }
  async get(key: string, opts?: GetOptions): Promise<Readable> {
    const release = await this.sem.acquire()
    try {
      const stream = await this.inner.get(key, opts)
      finished(stream, { readable: true, writable: false }, () => release())
      stream.once('close', release)
      return stream
    } catch (err) {
      release()
      throw err
    }
  }
  head(key: string, opts?: OpOptions): Promise<ObjectInfo> {
    return this.run(() => this.inner.head(key, opts))
  }
  list(prefix: string, opts?: ListOptions): Promise<ListPage> {
    return this.run(() => this.inner.list(prefix, opts))
  }
  delete(keys: readonly string[], opts?: OpOptions): Promise<void> {
    return this.run(() => this.inner.delete(keys, opts))
  }
  copy(from: string, to: string, opts?: OpOptions): Promise<void> {
    return this.run(() => this.inner.copy(from, to, opts))
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

/** Wraps `sink` so at most `maxConcurrent` operations (open get streams included) run at once. */
export function withLimit(sink: Sink, maxConcurrent: number): Sink {
  return new LimitSink(sink, maxConcurrent)
}
