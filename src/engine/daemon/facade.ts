/**
 * The daemon's two narrow seams.
 *
 * - Downwards, `ClickHouseSource` and `PostgresSource`: what the daemon needs from
 *   each engine (back up, list restore points, check and restore a target, ping).
 *   adapters-clickhouse.ts / adapters-postgres.ts adapt the engines to them; tests
 *   may pass their own.
 * - Upwards, `DaemonFacade`: everything the HTTP API may ask. `http/` imports only
 *   these types, never an engine module.
 */
import type { Logger } from '../../log.ts'
import type { Catalogs, ClickHouseCatalog, Plan, PostgresCatalog, RestorePoint } from '../planner.ts'
import type { SourceName } from '../repository/index.ts'
import type { JobKind, JobProgress, JobState, JobView } from './jobs.ts'

/** What a committed backup reports to the daemon (for metrics and the job result). */
export interface BackupOutcome {
  id: string
  startedAt: string
  endedAt: string
  /** Bytes written to the repository by this backup (stored, after compression). */
  bytes: number
  durationMs: number
  details?: Record<string, unknown>
}

/** Common job inputs. */
export interface RunOptions {
  signal: AbortSignal
  log: Logger
  onProgress?: (p: Partial<JobProgress>) => void
}

/** The outcome of one store's restore step, with what the smoke check needs. */
export interface StoreRestoreOutcome {
  /** Row counts matched the manifest (ClickHouse), or nothing to compare. */
  ok: boolean
  details: Record<string, unknown>
}

/** ClickHouse, as the daemon uses it. */
export interface ClickHouseSource {
  backup(o: RunOptions & { full: boolean }): Promise<BackupOutcome>
  catalog(): Promise<ClickHouseCatalog>
  /**
   * Reads only. Throws TM_ERR_RESTORE_TARGET_NOT_EMPTY (details: what is there) when the target holds what the
   * backup would write, TM_ERR_RESTORE_UNKNOWN_TABLE when a view would lack its tables, and for a parts backup
   * TM_ERR_USAGE without `dataPath` or TM_ERR_CLICKHOUSE_DATA_PATH when it cannot be written.
   */
  checkTarget(backupId: string, target: { url: string; dataPath?: string | undefined }, signal?: AbortSignal): Promise<void>
  /** Restores `backupId` into the server at `targetUrl` and checks every table's rows against the manifest. */
  restore(o: RunOptions & { backupId: string; targetUrl: string; targetDataPath?: string | undefined }): Promise<StoreRestoreOutcome>
  /** Rejects when the configured server does not answer. */
  ping(signal?: AbortSignal): Promise<void>
}

/** Where PostgreSQL is restored to: a data directory (physical), and/or a server URL to smoke-check (accepts connections, out of recovery). */
export interface PostgresTarget {
  dataDir?: string
  url?: string
}

/** PostgreSQL, as the daemon uses it. */
export interface PostgresSource {
  readonly method: 'physical' | 'logical'
  backup(o: RunOptions): Promise<BackupOutcome>
  catalog(): Promise<PostgresCatalog>
  checkTarget(target: PostgresTarget): Promise<void>
  restore(o: RunOptions & { at: Date; target: PostgresTarget }): Promise<StoreRestoreOutcome>
  /** Waits until `url` accepts connections and is out of recovery; rejects after `timeoutMs`. */
  smoke(url: string, timeoutMs: number, signal: AbortSignal): Promise<Record<string, unknown>>
  ping(signal?: AbortSignal): Promise<void>
  /** The continuous WAL archive, when the method has one. */
  readonly walService?: Service
}

/** A supervised long-running service (the WAL archive). */
export interface Service {
  readonly name: string
  start(): void
  /** Stops cleanly; resolves when stopped. */
  stop(): Promise<void>
  /** Stops at once, without the clean-stop work. */
  abort(): void
  status(): ServiceStatus
}

export interface ServiceStatus {
  state: 'stopped' | 'starting' | 'running' | 'retrying'
  restarts: number
  failures: number
  lastError?: { code: string; message: string }
  /** Seconds since the service last proved progress (the WAL archive: last heartbeat or partial upload); undefined before the first. */
  lagSeconds?: number
}

/** A backup as the API lists it. */
export interface BackupSummary {
  id: string
  source: SourceName
  method: string
  startedAt: string
  endedAt: string
  /** The time this backup restores to (ClickHouse: its end; PostgreSQL base: its end, then anywhere the WAL reaches). */
  restorePoint: string
  objects: number
  storedBytes: number
  rawBytes: number
}

/** Restore targets as requested. */
export interface RestoreTargets {
  postgres?: PostgresTarget
  /** `dataPath`: the target server's data path as mounted here, needed to restore a parts backup. */
  clickhouse?: { url: string; dataPath?: string }
}

/** A restore request, validated. */
export interface RestoreRequest {
  at: 'latest' | Date
  sources: SourceName[]
  targets: RestoreTargets
  callbackUrl?: string
}

/** The recovery windows and the aligned points. */
export interface RestorePointsView {
  sources: SourceName[]
  clickhouse?: { backups: { id: string; at: string }[] }
  postgres?: { method: 'physical'; windows: { timeline: number; from: string; to: string }[] } | { method: 'logical'; dumps: { id: string; at: string }[] }
  points: RestorePoint[]
}

/** Readiness of one dependency. */
export interface Check {
  ok: boolean
  error?: string
}

/** What the HTTP API may ask of the daemon. */
export interface DaemonFacade {
  readonly version: string
  /** The configured stores. */
  readonly sources: SourceName[]
  repositoryInfo(): Promise<Record<string, unknown>>
  readiness(): Promise<Record<string, Check>>
  /** The Prometheus text exposition. */
  metrics(): Promise<string>
  listBackups(q: { source?: SourceName; from?: Date; to?: Date }): Promise<BackupSummary[]>
  /** TM_ERR_MANIFEST_NOT_FOUND for an unknown id. */
  getBackup(id: string): Promise<BackupSummary & { manifest: Record<string, unknown> }>
  /** 202-style: the job started; TM_ERR_JOB_BUSY, TM_ERR_STORE_NOT_CONFIGURED. */
  startBackup(source: SourceName, full: boolean): JobView
  restorePoints(q: { sources?: SourceName[]; from?: Date; to?: Date }): Promise<RestorePointsView>
  /** The plan (nothing changes). */
  planRestore(r: RestoreRequest): Promise<Plan>
  /** Checks the targets, then starts the restore job; TM_ERR_JOB_BUSY while one runs, TM_ERR_RESTORE_TARGET_NOT_EMPTY. */
  startRestore(r: RestoreRequest): Promise<JobView>
  listJobs(q: { kind?: JobKind; state?: JobState }): JobView[]
  getJob(id: string): JobView
  cancelJob(id: string): JobView
}

export type { Catalogs, Plan, JobView }
