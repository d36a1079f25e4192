/**
 * What /readyz and /metrics report: reachability of the repository and the stores
 * (checked with a timeout, the result kept a few seconds so scrapes stay cheap),
 * each store's backup figures (from the jobs of this process, and from the catalog
 * for what was committed before it started), the services and replication lag.
 */
import { asTidemarkError } from '../../errors.ts'
import type { Clock } from '../clock.ts'
import type { Repository } from '../repository/index.ts'
import { referencedBytes } from './backups-index.ts'
import type { BackupOutcome, Check, ClickHouseSource, PostgresSource, Service } from './facade.ts'
import type { JobRegistry } from './jobs.ts'
import type { MetricsSnapshot, StoreMetrics } from './metrics.ts'

/** Per-store figures of this process's backup jobs. */
export interface StoreRecord {
  last?: BackupOutcome
  failures: number
}

export interface StatusDeps {
  repo: Repository
  clock: Clock
  jobs: JobRegistry
  clickhouse?: ClickHouseSource
  postgres?: PostgresSource
  services: Service[]
  records: Map<string, StoreRecord>
  replicationLag?: () => Promise<MetricsSnapshot['replication']>
}

const CHECK_TIMEOUT_MS = 5_000
const CACHE_MS = 5_000
const CATALOG_CACHE_MS = 30_000

async function probe(fn: (signal: AbortSignal) => Promise<unknown>): Promise<Check> {
  const signal = AbortSignal.timeout(CHECK_TIMEOUT_MS)
  try {
    await Promise.race([fn(signal), new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS / 1000} s`)), { once: true }))])
    return { ok: true }
  } catch (err) {
    const e = asTidemarkError(err)
    return { ok: false, error: `${e.code}: ${e.message}` }
  }
}

/** Readiness and metrics over the daemon's parts. */
export class Status {
  readonly #d: StatusDeps
  #checks: { at: number; value: Promise<Record<string, Check>> } | undefined
  #ends: { at: number; value: Promise<Record<string, { lastEnd?: number; restorableUntil?: number }>> } | undefined
  #size: { at: number; value: Promise<number | undefined> } | undefined

  constructor(d: StatusDeps) {
    this.#d = d
  }

  /** Forgets cached catalog figures (after a backup commits). */
  invalidate(): void {
    this.#ends = undefined
    this.#size = undefined
  }

  /** Each dependency's reachability (kept CACHE_MS). */
  readiness(): Promise<Record<string, Check>> {
    const now = Date.now()
    if (this.#checks && now - this.#checks.at < CACHE_MS) return this.#checks.value
    const d = this.#d
    const value = (async () => {
      const out: Record<string, Check> = {}
      const tasks: [string, Promise<Check>][] = [['repository', probe(() => d.repo.listManifestIds('clickhouse'))]]
      if (d.clickhouse) tasks.push(['clickhouse', probe((s) => d.clickhouse!.ping(s))])
      if (d.postgres) tasks.push(['postgres', probe((s) => d.postgres!.ping(s))])
      for (const [name, p] of tasks) out[name] = await p
      for (const s of d.services) {
        const st = s.status()
        out[s.name] = st.state === 'running' ? { ok: true } : { ok: false, error: `${st.state}${st.lastError ? `: ${st.lastError.code}: ${st.lastError.message}` : ''}` }
      }
      return out
    })()
    this.#checks = { at: now, value }
    return value
  }

  /** The metrics snapshot. */
  async snapshot(): Promise<MetricsSnapshot> {
    const d = this.#d
    const checks = await this.readiness()
    const ends = await this.#catalogEnds()
    const stores: StoreMetrics[] = []
    for (const store of ['clickhouse', 'postgres'] as const) {
      if (!d[store]) continue
      const rec = d.records.get(store) ?? { failures: 0 }
      const e = ends[store] ?? {}
      const lastEnd = rec.last ? Date.parse(rec.last.endedAt) / 1000 : e.lastEnd
      stores.push({
        store, up: checks[store]?.ok ?? false, failures: rec.failures,
        ...(lastEnd === undefined ? {} : { lastSuccessAt: lastEnd }),
        ...(e.restorableUntil === undefined ? {} : { restorableUntil: e.restorableUntil }),
        ...(rec.last ? { lastDurationSeconds: rec.last.durationMs / 1000, lastBytes: rec.last.bytes } : {}),
      })
    }
    const size = await this.#referenced()
    return {
      now: d.clock.now().getTime() / 1000,
      stores,
      jobs: d.jobs.counts(),
      running: d.jobs.active().map((j) => ({ kind: j.kind, store: j.store })),
      services: d.services.map((s) => ({ name: s.name, status: s.status() })),
      repository: { up: checks.repository?.ok ?? false, ...(size === undefined ? {} : { referencedBytes: size }) },
      replication: d.replicationLag ? await d.replicationLag().catch(() => []) : [],
    }
  }

  /** Newest backup end and restorable time per store, from the catalogs (kept CATALOG_CACHE_MS). */
  #catalogEnds(): Promise<Record<string, { lastEnd?: number; restorableUntil?: number }>> {
    const now = Date.now()
    if (this.#ends && now - this.#ends.at < CATALOG_CACHE_MS) return this.#ends.value
    const d = this.#d
    const max = (xs: string[]) => (xs.length === 0 ? undefined : Math.max(...xs.map((x) => Date.parse(x) / 1000)))
    const value = (async () => {
      const out: Record<string, { lastEnd?: number; restorableUntil?: number }> = {}
      const ch = d.clickhouse ? await d.clickhouse.catalog().catch(() => undefined) : undefined
      if (ch) {
        const end = max(ch.backups.map((b) => b.endedAt))
        out.clickhouse = { lastEnd: end, restorableUntil: end }
      }
      const pg = d.postgres ? await d.postgres.catalog().catch(() => undefined) : undefined
      if (pg?.method === 'physical') out.postgres = { lastEnd: max(pg.baseBackups.map((b) => b.endedAt)), restorableUntil: max(pg.windows.map((w) => w.to)) }
      else if (pg?.method === 'logical') out.postgres = { lastEnd: max(pg.dumps.map((x) => x.at)), restorableUntil: max(pg.dumps.map((x) => x.at)) }
      return out
    })()
    this.#ends = { at: now, value }
    return value
  }

  #referenced(): Promise<number | undefined> {
    const now = Date.now()
    if (this.#size && now - this.#size.at < CATALOG_CACHE_MS) return this.#size.value
    const value = referencedBytes(this.#d.repo).catch(() => undefined)
    this.#size = { at: now, value }
    return value
  }
}
