/**
 * The job registry: every long operation (backup, restore, prune, replicate) runs as
 * a job with an id, a lane, a state, progress and an outcome. One job at a time per
 * lane (a store, or `restore`): a second start is refused (API: 409) and a scheduled
 * run that finds its lane busy is skipped and counted, never queued. The last N
 * finished jobs are kept. Cancellation goes through each job's AbortSignal; the
 * engines honour it and commit nothing.
 */
import { randomBytes } from 'node:crypto'
import { TidemarkError, asTidemarkError, type ErrorCode } from '../../errors.ts'
import type { Clock } from '../clock.ts'

export type JobKind = 'backup' | 'restore' | 'prune' | 'replicate'
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'skipped'
export type JobTrigger = 'schedule' | 'api' | 'cli'

/** Progress as the engines report it; bytes are raw bytes, totals may be estimates. */
export interface JobProgress {
  bytesDone: number
  bytesTotal: number
  unitsDone: number
  unitsTotal: number
}

/** A job as the API shows it (a copy: mutating it changes nothing). */
export interface JobView {
  id: string
  kind: JobKind
  /** The lane: `clickhouse`, `postgres`, `repository`, `replicas`, `restore`. */
  store: string
  trigger: JobTrigger
  state: JobState
  params: Record<string, unknown>
  progress: JobProgress
  createdAt: string
  startedAt?: string
  endedAt?: string
  result?: unknown
  error?: { code: ErrorCode; message: string; details?: Record<string, unknown> }
}

/** What a job's function receives. */
export interface JobContext {
  id: string
  signal: AbortSignal
  progress(p: Partial<JobProgress>): void
}

export type JobFn = (ctx: JobContext) => Promise<unknown>

/** What to start. */
export interface JobSpec {
  kind: JobKind
  store: string
  trigger: JobTrigger
  params?: Record<string, unknown>
}

interface Entry {
  view: JobView
  ac: AbortController
  done: Promise<void>
}

/** Counters for metrics, keyed `kind|store|state`. */
export type JobCounts = ReadonlyMap<string, number>

const FINISHED: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled', 'skipped'])

/** Whether a state is final. */
export const isFinished = (s: JobState): boolean => FINISHED.has(s)

/** The job registry. Not persistent: a restarted daemon starts with an empty history. */
export class JobRegistry {
  readonly #clock: Clock
  readonly #history: number
  readonly #jobs = new Map<string, Entry>()
  readonly #active = new Map<string, Entry>()
  readonly #counts = new Map<string, number>()
  readonly #onFinish: ((v: JobView) => void) | undefined
  #seq = 0

  constructor(o: { clock: Clock; historySize: number; onFinish?: (v: JobView) => void }) {
    this.#clock = o.clock
    this.#history = o.historySize
    this.#onFinish = o.onFinish
  }

  /** Starts `fn` as a job; TM_ERR_JOB_BUSY (naming the running job) when its lane is busy. */
  start(spec: JobSpec, fn: JobFn): JobView {
    this.assertFree(spec.store)
    const entry = this.#create(spec, 'queued')
    this.#active.set(spec.store, entry)
    entry.done = Promise.resolve().then(() => this.#run(entry, fn))
    return this.#copy(entry.view)
  }

  /** For schedules: starts the job, or records a skipped one (and counts it) when the lane is busy. */
  startOrSkip(spec: JobSpec, fn: JobFn): JobView {
    if (!this.#active.has(spec.store)) return this.start(spec, fn)
    const entry = this.#create(spec, 'skipped')
    entry.view.endedAt = entry.view.createdAt
    entry.view.error = { code: 'TM_ERR_JOB_BUSY', message: `skipped: the previous ${spec.store} job (${this.#active.get(spec.store)?.view.id}) was still running` }
    this.#finish(entry)
    return this.#copy(entry.view)
  }

  /** A job by id; TM_ERR_JOB_NOT_FOUND when unknown (or dropped from the history). */
  get(id: string): JobView {
    const e = this.#jobs.get(id)
    if (!e) throw new TidemarkError('TM_ERR_JOB_NOT_FOUND', `no job ${id} (finished jobs are kept for the last ${this.#history}); list them with GET /v1/jobs`)
    return this.#copy(e.view)
  }

  /** Every known job, newest first. */
  list(filter: { kind?: JobKind; state?: JobState; store?: string } = {}): JobView[] {
    return [...this.#jobs.values()]
      .map((e) => e.view)
      .filter((v) => (filter.kind === undefined || v.kind === filter.kind) && (filter.state === undefined || v.state === filter.state) && (filter.store === undefined || v.store === filter.store))
      .reverse()
      .map((v) => this.#copy(v))
  }

  /** Asks a running job to stop; TM_ERR_JOB_FINISHED when it has already ended. */
  cancel(id: string, reason = 'cancelled by request'): JobView {
    const e = this.#jobs.get(id)
    if (!e) return this.get(id)
    if (isFinished(e.view.state)) throw new TidemarkError('TM_ERR_JOB_FINISHED', `job ${id} has already ended (${e.view.state}); nothing to cancel`)
    e.ac.abort(new TidemarkError('TM_ERR_ABORTED', reason))
    return this.#copy(e.view)
  }

  /** The running (or about to run) jobs. */
  active(): JobView[] {
    return [...this.#active.values()].map((e) => this.#copy(e.view))
  }

  /** TM_ERR_JOB_BUSY (naming the running job) when `store`'s lane is busy. */
  assertFree(store: string): void {
    const busy = this.#active.get(store)
    if (busy) {
      throw new TidemarkError('TM_ERR_JOB_BUSY', `job ${busy.view.id} (${busy.view.kind}) is still running for ${store}: wait for it or cancel it (POST /v1/jobs/${busy.view.id}/cancel)`, { details: { running: busy.view.id } })
    }
  }

  /** Resolves when no job runs, or after `ms` (true when idle). */
  async idle(ms = Infinity): Promise<boolean> {
    const all = Promise.all([...this.#active.values()].map((e) => e.done)).then(() => true)
    if (ms === Infinity) return all
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))
    try {
      return await Promise.race([all, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Aborts every running job with `reason`. */
  abortAll(reason: string): void {
    for (const e of this.#active.values()) e.ac.abort(new TidemarkError('TM_ERR_ABORTED', reason))
  }

  /** Finished-job counters, `kind|store|state` → count (skipped runs included). */
  counts(): JobCounts {
    return new Map(this.#counts)
  }

  #create(spec: JobSpec, state: JobState): Entry {
    const now = this.#clock.now()
    const id = `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')}-${spec.kind}-${(++this.#seq).toString(36)}${randomBytes(2).toString('hex')}`
    const view: JobView = {
      id, kind: spec.kind, store: spec.store, trigger: spec.trigger, state, params: spec.params ?? {},
      progress: { bytesDone: 0, bytesTotal: 0, unitsDone: 0, unitsTotal: 0 }, createdAt: now.toISOString(),
    }
    const entry: Entry = { view, ac: new AbortController(), done: Promise.resolve() }
    this.#jobs.set(id, entry)
    return entry
  }

  async #run(entry: Entry, fn: JobFn): Promise<void> {
    const v = entry.view
    v.state = 'running'
    v.startedAt = this.#clock.now().toISOString()
    const ctx: JobContext = { id: v.id, signal: entry.ac.signal, progress: (p) => Object.assign(v.progress, p) }
    try {
      if (entry.ac.signal.aborted) throw entry.ac.signal.reason
      v.result = await fn(ctx)
      v.state = 'succeeded'
    } catch (err) {
      const e = asTidemarkError(entry.ac.signal.aborted && !(err instanceof TidemarkError) ? entry.ac.signal.reason : err)
      v.state = entry.ac.signal.aborted ? 'cancelled' : 'failed'
      v.error = e.details ? { code: e.code, message: e.message, details: e.details } : { code: e.code, message: e.message }
    } finally {
      v.endedAt = this.#clock.now().toISOString()
      this.#active.delete(v.store)
      this.#finish(entry)
    }
  }

  #finish(entry: Entry): void {
    const v = entry.view
    const key = `${v.kind}|${v.store}|${v.state}`
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1)
    this.#trim()
    this.#onFinish?.(this.#copy(v))
  }

  /** Drops the oldest finished jobs beyond the history size (running ones are never dropped). */
  #trim(): void {
    const finished = [...this.#jobs.values()].filter((e) => isFinished(e.view.state))
    for (const e of finished.slice(0, Math.max(0, finished.length - this.#history))) this.#jobs.delete(e.view.id)
  }

  #copy(v: JobView): JobView {
    return structuredClone(v)
  }
}
