/**
 * The daemon's core: the job registry, the schedules, the supervised services and
 * the restore executor, behind the `DaemonFacade` the HTTP API and the CLI use.
 * Owns no connection of its own: the repository and the sources are given to it.
 *
 * Shutdown (`shutdown`): schedules stop, new jobs are refused (TM_ERR_SHUTTING_DOWN),
 * running jobs get the grace period to finish, then are aborted (an aborted backup
 * commits no manifest: the engines guarantee it), then the services stop.
 */
import type { Config } from '../../config.ts'
import { TidemarkError } from '../../errors.ts'
import { jobLogger, type Logger } from '../../log.ts'
import type { Clock } from '../clock.ts'
import { plan as planRestore, restorePoints as alignedPoints, type Catalogs, type Plan } from '../planner.ts'
import type { Repository, SourceName } from '../repository/index.ts'
import { getBackup, listBackupSummaries } from './backups-index.ts'
import type { BackupOutcome, ClickHouseSource, DaemonFacade, PostgresSource, RestorePointsView, RestoreRequest, Service } from './facade.ts'
import { JobRegistry, type JobKind, type JobState, type JobTrigger, type JobView } from './jobs.ts'
import { renderMetrics, type MetricsSnapshot } from './metrics.ts'
import { executeRestore, checkTargets, publicTargets } from './restore-exec.ts'
import { Scheduler, scheduleEntries } from './scheduler.ts'
import { Status, type StoreRecord } from './status.ts'
import { walReplicationService } from './wal-replication.ts'

/** Everything the daemon is built from. */
export interface DaemonDeps {
  version: string
  repo: Repository
  clock: Clock
  log: Logger
  config: Pick<Config, 'schedules' | 'daemon' | 'hooks'>
  clickhouse?: ClickHouseSource
  postgres?: PostgresSource
  /** Runs a prune of the repository (the configured policy). */
  prune?: (signal: AbortSignal) => Promise<unknown>
  /** Copies new backups to the secondaries. */
  replicate?: (signal: AbortSignal) => Promise<unknown>
  replicationLag?: () => Promise<MetricsSnapshot['replication']>
  /** One pass copying the WAL archive to every secondary; run continuously as a service. */
  replicateWal?: (signal: AbortSignal) => Promise<unknown>
  /** Time between WAL copy passes (default 30 s). */
  walReplicationIntervalMs?: number
  /** How long the PostgreSQL smoke check waits (default 10 min). */
  smokeTimeoutMs?: number
}

/** The daemon. */
export class Daemon implements DaemonFacade {
  readonly version: string
  readonly jobs: JobRegistry
  readonly scheduler: Scheduler
  readonly #d: DaemonDeps
  readonly #records = new Map<string, StoreRecord>()
  readonly #callbacks = new Map<string, string>()
  readonly #status: Status
  readonly #services: Service[]
  #stopping = false
  /** A backup committed while a replication job ran: replicate again when it ends. */
  #replicateAgain = false

  constructor(d: DaemonDeps) {
    this.#d = d
    this.version = d.version
    this.jobs = new JobRegistry({ clock: d.clock, historySize: d.config.daemon.jobHistory, onFinish: (v) => this.#finished(v) })
    this.scheduler = new Scheduler(scheduleEntries(d.config.schedules, {
      clickhouseIncremental: d.clickhouse && (() => this.#scheduled('clickhouse', false)),
      clickhouseFull: d.clickhouse && (() => this.#scheduled('clickhouse', true)),
      postgresBase: d.postgres && (() => this.#scheduled('postgres', false)),
      prune: d.prune && (() => this.#scheduledTask('prune', 'repository', d.prune!)),
      replicate: d.replicate && (() => this.#scheduledTask('replicate', 'replicas', d.replicate!)),
    }))
    this.#services = [
      ...(d.postgres?.walService ? [d.postgres.walService] : []),
      ...(d.replicateWal ? [walReplicationService({ clock: d.clock, log: d.log, pass: d.replicateWal, intervalMs: d.walReplicationIntervalMs ?? 30_000 })] : []),
    ]
    this.#status = new Status({ repo: d.repo, clock: d.clock, jobs: this.jobs, clickhouse: d.clickhouse, postgres: d.postgres, services: this.services, records: this.#records, replicationLag: d.replicationLag })
  }

  /** The configured stores. */
  get sources(): SourceName[] {
    return this.#configuredSources()
  }

  /** The long-running services (the WAL archive, the WAL copy to the secondaries). */
  get services(): Service[] {
    return this.#services
  }

  /** Starts the services and the schedules. Unreachable stores do not stop it: services retry, schedules fire again. */
  async start(): Promise<void> {
    for (const s of this.services) s.start()
    await this.scheduler.start()
    this.#d.log.info({ schedules: this.scheduler.nextRuns(), services: this.services.map((s) => s.name) }, 'schedules started')
  }

  /**
   * Stops scheduling, lets running jobs finish for `graceMs`, then aborts them and
   * waits up to `abortWaitMs` for them to end; stops the services last. Idempotent.
   */
  async shutdown(graceMs: number, abortWaitMs = 5_000): Promise<{ aborted: string[] }> {
    this.#stopping = true
    await this.scheduler.stop()
    const running = this.jobs.active().map((j) => j.id)
    if (running.length > 0) this.#d.log.info({ jobs: running, graceMs }, 'waiting for running jobs to finish')
    let aborted: string[] = []
    if (!(await this.jobs.idle(graceMs))) {
      aborted = this.jobs.active().map((j) => j.id)
      this.#d.log.warn({ jobs: aborted }, 'grace period over: aborting running jobs (nothing unfinished is committed)')
      this.jobs.abortAll('the daemon is stopping')
      // A call stuck in a driver may not see the signal; exiting is still safe: a manifest is only written after a last signal check.
      if (!(await this.jobs.idle(abortWaitMs))) this.#d.log.warn({ jobs: this.jobs.active().map((j) => j.id) }, `jobs still running ${abortWaitMs / 1000} s after the abort; exiting without them`)
    }
    for (const s of this.services) await s.stop()
    return { aborted }
  }

  /** Aborts everything at once (second signal). */
  abortNow(): void {
    this.jobs.abortAll('the daemon is exiting')
    for (const s of this.services) s.abort()
  }

  repositoryInfo(): Promise<Record<string, unknown>> {
    return this.#d.repo.info() as unknown as Promise<Record<string, unknown>>
  }

  readiness() {
    return this.#status.readiness()
  }

  async metrics(): Promise<string> {
    return renderMetrics(await this.#status.snapshot())
  }

  listBackups(q: { source?: SourceName; from?: Date; to?: Date }) {
    return listBackupSummaries(this.#d.repo, q)
  }

  getBackup(id: string) {
    return getBackup(this.#d.repo, id)
  }

  startBackup(source: SourceName, full: boolean, trigger: JobTrigger = 'api'): JobView {
    this.#refuseWhenStopping()
    return this.jobs.start(this.#backupSpec(source, full, trigger), this.#backupFn(source, full))
  }

  async restorePoints(q: { sources?: SourceName[]; from?: Date; to?: Date }): Promise<RestorePointsView> {
    const sources = q.sources ?? this.#configuredSources()
    const c = await this.#catalogs(sources)
    const inRange = (start: string, end: string) => (q.from === undefined || Date.parse(end) >= q.from.getTime()) && (q.to === undefined || Date.parse(start) <= q.to.getTime())
    const points = alignedPoints(c).filter((p) => ('at' in p ? inRange(p.at, p.at) : inRange(p.from, p.to)))
    const view: RestorePointsView = { sources, points }
    if (c.clickhouse) view.clickhouse = { backups: c.clickhouse.backups.map((b) => ({ id: b.id, at: b.endedAt })).filter((b) => inRange(b.at, b.at)) }
    if (c.postgres?.method === 'physical') view.postgres = { method: 'physical', windows: c.postgres.windows.filter((w) => inRange(w.from, w.to)).map((w) => ({ ...w })) }
    else if (c.postgres) view.postgres = { method: 'logical', dumps: c.postgres.dumps.filter((x) => inRange(x.at, x.at)).map((x) => ({ ...x })) }
    return view
  }

  async planRestore(r: RestoreRequest): Promise<Plan> {
    return planRestore(await this.#catalogs(r.sources), r.at)
  }

  async startRestore(r: RestoreRequest, trigger: JobTrigger = 'api'): Promise<JobView> {
    this.#refuseWhenStopping()
    // Refused before planning and checking targets; start() checks again, as a restore may have begun meanwhile.
    this.jobs.assertFree('restore')
    const plan = await this.planRestore(r)
    await checkTargets(plan, r.targets, this.#d)
    const d = this.#d
    const view = this.jobs.start(
      { kind: 'restore', store: 'restore', trigger, params: { at: r.at === 'latest' ? 'latest' : r.at.toISOString(), sources: r.sources, targets: publicTargets(r.targets), plan } },
      (ctx) => executeRestore(plan, r.targets, {
        clickhouse: d.clickhouse, postgres: d.postgres, preRestore: d.config.hooks.preRestore, postRestore: d.config.hooks.postRestore,
        hookTimeoutMs: d.config.hooks.timeoutSeconds * 1000, smokeTimeoutMs: d.smokeTimeoutMs ?? 600_000, clock: d.clock,
      }, { signal: ctx.signal, log: jobLogger(d.log, { jobId: ctx.id, store: 'restore' }), onProgress: ctx.progress }),
    )
    if (r.callbackUrl !== undefined) this.#callbacks.set(view.id, r.callbackUrl)
    return view
  }

  listJobs(q: { kind?: JobKind; state?: JobState }): JobView[] {
    return this.jobs.list(q)
  }

  getJob(id: string): JobView {
    return this.jobs.get(id)
  }

  cancelJob(id: string): JobView {
    return this.jobs.cancel(id)
  }

  #refuseWhenStopping(): void {
    if (this.#stopping) throw new TidemarkError('TM_ERR_SHUTTING_DOWN', 'the daemon is stopping and starts no new job')
  }

  #configuredSources(): SourceName[] {
    return (['clickhouse', 'postgres'] as const).filter((s) => this.#d[s] !== undefined)
  }

  async #catalogs(sources: readonly SourceName[]): Promise<Catalogs> {
    const c: Catalogs = {}
    for (const s of sources) {
      const src = this.#d[s]
      if (!src) throw new TidemarkError('TM_ERR_STORE_NOT_CONFIGURED', `${s} is not configured in this daemon (configured: ${this.#configuredSources().join(', ') || 'none'})`)
    }
    if (sources.includes('clickhouse')) c.clickhouse = await this.#d.clickhouse!.catalog()
    if (sources.includes('postgres')) c.postgres = await this.#d.postgres!.catalog()
    return c
  }

  #backupSpec(source: SourceName, full: boolean, trigger: JobTrigger) {
    if (!this.#d[source]) throw new TidemarkError('TM_ERR_STORE_NOT_CONFIGURED', `${source} is not configured in this daemon (configured: ${this.#configuredSources().join(', ') || 'none'})`)
    return { kind: 'backup' as const, store: source, trigger, params: source === 'clickhouse' ? { full } : {} }
  }

  #backupFn(source: SourceName, full: boolean) {
    const d = this.#d
    return async (ctx: { id: string; signal: AbortSignal; progress: (p: object) => void }): Promise<BackupOutcome> => {
      const log = jobLogger(d.log, { jobId: ctx.id, store: source })
      log.info({ full }, `${source} backup started`)
      const out = source === 'clickhouse' ? await d.clickhouse!.backup({ full, signal: ctx.signal, log, onProgress: ctx.progress }) : await d.postgres!.backup({ signal: ctx.signal, log, onProgress: ctx.progress })
      jobLogger(d.log, { jobId: ctx.id, store: source, backupId: out.id }).info({ bytes: out.bytes, durationMs: out.durationMs }, `${source} backup committed`)
      return out
    }
  }

  #scheduled(source: SourceName, full: boolean): void {
    if (this.#stopping) return
    const v = this.jobs.startOrSkip(this.#backupSpec(source, full, 'schedule'), this.#backupFn(source, full))
    if (v.state === 'skipped') this.#d.log.warn({ jobId: v.id, store: source }, v.error?.message ?? 'skipped')
  }

  #scheduledTask(kind: 'prune' | 'replicate', store: string, fn: (signal: AbortSignal) => Promise<unknown>): void {
    if (this.#stopping) return
    const v = this.jobs.startOrSkip({ kind, store, trigger: 'schedule' }, (ctx) => fn(ctx.signal))
    if (v.state === 'skipped') this.#d.log.warn({ jobId: v.id, store }, v.error?.message ?? 'skipped')
  }

  /** Copies a committed backup to the secondaries at once; when a copy is running, once more after it. */
  #replicateAfterBackup(): void {
    const fn = this.#d.replicate
    if (!fn || this.#stopping) return
    this.#replicateAgain = this.jobs.active().some((j) => j.kind === 'replicate')
    if (this.#replicateAgain) return
    // Started after the backup job's own bookkeeping: onFinish runs inside the registry.
    queueMicrotask(() => this.#scheduledTask('replicate', 'replicas', fn))
  }

  #finished(v: JobView): void {
    const log = jobLogger(this.#d.log, { jobId: v.id, store: v.store })
    if (v.state === 'failed') log.error({ kind: v.kind, error: v.error }, `${v.kind} job failed`)
    else if (v.state !== 'skipped') log.info({ kind: v.kind, state: v.state }, `${v.kind} job ${v.state}`)
    if (v.kind === 'backup') {
      const rec = this.#records.get(v.store) ?? { failures: 0 }
      if (v.state === 'succeeded') rec.last = v.result as BackupOutcome
      if (v.state === 'failed') rec.failures++
      this.#records.set(v.store, rec)
      this.#status.invalidate()
      if (v.state === 'succeeded') this.#replicateAfterBackup()
    }
    if (v.kind === 'replicate' && this.#replicateAgain) this.#replicateAfterBackup()
    const url = this.#callbacks.get(v.id)
    if (url !== undefined) {
      this.#callbacks.delete(v.id)
      void fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ job: v }), signal: AbortSignal.timeout(10_000) })
        .then((res) => res.body?.cancel())
        .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'the restore callback could not be delivered'))
    }
  }
}
