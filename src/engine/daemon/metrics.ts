/**
 * The Prometheus text exposition (format 0.0.4), rendered from a snapshot of the
 * daemon's state. Pure: the daemon gathers the snapshot, this turns it into text.
 * Every family has HELP and TYPE; a value that is unknown (no backup yet) is left
 * out rather than faked, so alerts on absence work.
 */
import type { ServiceStatus } from './facade.ts'
import type { JobCounts } from './jobs.ts'

/** What one store's backups achieved. Times in seconds since the epoch. */
export interface StoreMetrics {
  store: string
  /** Reachable at the last check. */
  up: boolean
  lastSuccessAt?: number
  /** The newest time the store can be restored to (ClickHouse: last backup end; PostgreSQL: end of the recovery window). */
  restorableUntil?: number
  lastDurationSeconds?: number
  lastBytes?: number
  failures: number
}

export interface MetricsSnapshot {
  /** Seconds since the epoch. */
  now: number
  stores: StoreMetrics[]
  jobs: JobCounts
  running: { kind: string; store: string }[]
  services: { name: string; status: ServiceStatus }[]
  repository: { up: boolean; referencedBytes?: number }
  replication: { target: string; ok: boolean; seconds?: number; bytes?: number }[]
}

type Labels = Record<string, string>
type Sample = [Labels, number]

/** Escapes a label value as the text format requires. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function fmt(n: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (n === Infinity) return '+Inf'
  if (n === -Infinity) return '-Inf'
  return String(n)
}

function family(name: string, type: 'gauge' | 'counter', help: string, samples: Sample[]): string[] {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`]
  for (const [labels, v] of samples) {
    const l = Object.entries(labels).map(([k, x]) => `${k}="${escapeLabel(x)}"`).join(',')
    lines.push(`${name}${l ? `{${l}}` : ''} ${fmt(v)}`)
  }
  return lines
}

const defined = <T>(xs: readonly (T | undefined)[]): T[] => xs.filter((x): x is T => x !== undefined)

function storeFamilies(s: MetricsSnapshot): string[] {
  const per = (f: (m: StoreMetrics) => number | undefined): Sample[] => defined(s.stores.map((m) => (f(m) === undefined ? undefined : [{ store: m.store }, f(m) as number] as Sample)))
  return [
    ...family('tidemark_store_up', 'gauge', 'Whether the store answered at the last check (1) or not (0).', per((m) => (m.up ? 1 : 0))),
    ...family('tidemark_backup_last_success_timestamp_seconds', 'gauge', 'End time of the last successful backup, seconds since the epoch.', per((m) => m.lastSuccessAt)),
    ...family('tidemark_rpo_seconds', 'gauge', 'Achieved RPO: seconds between now and the newest time the store can be restored to.', per((m) => (m.restorableUntil === undefined ? undefined : Math.max(0, s.now - m.restorableUntil)))),
    ...family('tidemark_backup_last_duration_seconds', 'gauge', 'Duration of the last successful backup.', per((m) => m.lastDurationSeconds)),
    ...family('tidemark_backup_last_bytes', 'gauge', 'Bytes written to the repository by the last successful backup.', per((m) => m.lastBytes)),
    ...family('tidemark_backup_failures_total', 'counter', 'Backups that failed since the daemon started.', per((m) => m.failures)),
  ]
}

function jobFamilies(s: MetricsSnapshot): string[] {
  const finished: Sample[] = []
  const skipped: Sample[] = []
  for (const [key, n] of [...s.jobs].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const [kind = '', store = '', state = ''] = key.split('|')
    finished.push([{ kind, store, state }, n])
    if (state === 'skipped') skipped.push([{ kind, store }, n])
  }
  const running = new Map<string, number>()
  for (const r of s.running) running.set(`${r.kind}|${r.store}`, (running.get(`${r.kind}|${r.store}`) ?? 0) + 1)
  return [
    ...family('tidemark_jobs_total', 'counter', 'Finished jobs by kind, store and final state.', finished),
    ...family('tidemark_jobs_running', 'gauge', 'Jobs running now.', [...running].map(([k, n]) => [{ kind: k.split('|')[0] ?? '', store: k.split('|')[1] ?? '' }, n] as Sample)),
    ...family('tidemark_scheduled_runs_skipped_total', 'counter', 'Scheduled runs skipped because the previous run of the same store was still running.', skipped),
  ]
}

function serviceFamilies(s: MetricsSnapshot): string[] {
  const svc = (f: (st: ServiceStatus) => number | undefined): Sample[] => defined(s.services.map((x) => (f(x.status) === undefined ? undefined : [{ service: x.name }, f(x.status) as number] as Sample)))
  return [
    ...family('tidemark_service_up', 'gauge', 'Whether the long-running service (the WAL archive, the WAL copy to the secondaries) runs (1) or is starting or retrying (0).', svc((st) => (st.state === 'running' ? 1 : 0))),
    ...family('tidemark_service_restarts_total', 'counter', 'Failed starts of the service that were retried.', svc((st) => st.restarts)),
    ...family('tidemark_service_failures_total', 'counter', 'Failures the service reported (uploads, heartbeats, starts).', svc((st) => st.failures)),
    ...family('tidemark_wal_archive_lag_seconds', 'gauge', 'Seconds since the service last proved progress (the WAL archive: heartbeat or upload of the open segment; the WAL copy: a pass that reached every secondary).', svc((st) => st.lagSeconds)),
  ]
}

/** The exposition text for `s`. */
export function renderMetrics(s: MetricsSnapshot): string {
  const repo: Sample[] = s.repository.referencedBytes === undefined ? [] : [[{}, s.repository.referencedBytes]]
  const lines = [
    ...family('tidemark_repository_up', 'gauge', 'Whether the repository was readable at the last check.', [[{}, s.repository.up ? 1 : 0]]),
    ...family('tidemark_repository_referenced_bytes', 'gauge', 'Stored bytes of the distinct objects the committed backups reference.', repo),
    ...storeFamilies(s),
    ...jobFamilies(s),
    ...serviceFamilies(s),
    ...family('tidemark_replication_up', 'gauge', 'Whether the secondary could be surveyed.', s.replication.map((r) => [{ target: r.target }, r.ok ? 1 : 0] as Sample)),
    ...family('tidemark_replication_lag_seconds', 'gauge', 'Age of the oldest backup the secondary lacks (0 when up to date).', defined(s.replication.map((r) => (r.seconds === undefined ? undefined : [{ target: r.target }, r.seconds] as Sample)))),
    ...family('tidemark_replication_lag_bytes', 'gauge', 'Bytes still to copy to the secondary.', defined(s.replication.map((r) => (r.bytes === undefined ? undefined : [{ target: r.target }, r.bytes] as Sample)))),
  ]
  return `${lines.join('\n')}\n`
}
