/**
 * For daemon and API tests: a real repository in a temp directory, and a source
 * that commits real manifests into it. The source stands for no database: these
 * tests are about jobs, schedules, the API and restore orchestration; the engines
 * have their own tests against real servers.
 */
import { join } from 'node:path'
import { pino } from 'pino'
import { manualClock, type Clock } from '../../src/engine/clock.ts'
import type { BackupOutcome, ClickHouseSource, PostgresSource, PostgresTarget } from '../../src/engine/daemon/facade.ts'
import { Daemon, type DaemonDeps } from '../../src/engine/daemon/services.ts'
import type { ClickHouseCatalog, PhysicalPostgresCatalog } from '../../src/engine/planner.ts'
import { initRepository, newBackupId, type Repository } from '../../src/engine/repository/index.ts'
import { TidemarkError } from '../../src/errors.ts'
import { openSink } from '../../src/sinks/url.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'

interface Teardownable {
  teardown(fn: () => unknown): void
}

/** A fresh unencrypted repository on a temp directory, closed in teardown. */
export async function tempRepository(t: Teardownable, clock?: Clock): Promise<{ repo: Repository; dir: string }> {
  const dir = await tempDir('tidemark-daemon-')
  const repo = await initRepository(openSink(`file://${join(dir, 'repo')}`), { pipeline: { threads: 1 }, clock })
  t.teardown(async () => {
    await repo.close()
    await removeTempDir(dir)
  })
  return { repo, dir }
}

/** A gate a test opens to let a held backup finish. */
export function gate(): { wait: (signal: AbortSignal) => Promise<void>; open: () => void } {
  let open!: () => void
  const p = new Promise<void>((r) => (open = r))
  return {
    open,
    wait: (signal) => new Promise<void>((resolve, reject) => {
      signal.throwIfAborted()
      signal.addEventListener('abort', () => reject(signal.reason), { once: true })
      void p.then(resolve)
    }),
  }
}

/** Commits a minimal manifest of `source` ending at `end`. */
export async function commitTestBackup(repo: Repository, source: 'clickhouse' | 'postgres', start: Date, end: Date): Promise<BackupOutcome> {
  const id = newBackupId(source, start)
  await repo.commitManifest({ format: 'tidemark-repository', version: 1, id, source, method: 'test', startedAt: start.toISOString(), endedAt: end.toISOString(), objects: [] })
  return { id, startedAt: start.toISOString(), endedAt: end.toISOString(), bytes: 123, durationMs: end.getTime() - start.getTime() }
}

/** What a test source was asked to do. */
export interface Calls {
  restores: string[]
  checks: string[]
}

/** A ClickHouse-shaped source over the repository: backups wait for `hold` (when set), honour the signal, then commit. */
export function testClickHouse(repo: Repository, clock: Clock, o: { hold?: ReturnType<typeof gate>; restoreHold?: ReturnType<typeof gate>; calls?: Calls; restoreOk?: boolean } = {}): ClickHouseSource {
  return {
    backup: async ({ signal }) => {
      const start = clock.now()
      await o.hold?.wait(signal)
      signal.throwIfAborted()
      return commitTestBackup(repo, 'clickhouse', start, new Date(start.getTime() + 1000))
    },
    catalog: async (): Promise<ClickHouseCatalog> => {
      const ids = await repo.listManifestIds('clickhouse')
      const ms = await Promise.all(ids.map((id) => repo.readManifest('clickhouse', id)))
      return { backups: ms.map((m) => ({ id: m.id, startedAt: m.startedAt, endedAt: m.endedAt })) }
    },
    checkTarget: async (_id, { url }) => {
      o.calls?.checks.push(url)
      if (url.includes('occupied')) throw new TidemarkError('TM_ERR_RESTORE_TARGET_NOT_EMPTY', 'the ClickHouse target is not empty: db.runs holds 3 rows', { details: { conflicts: [{ table: 'db.runs', reason: 'holds 3 rows' }] } })
    },
    restore: async ({ backupId, signal }) => {
      await o.restoreHold?.wait(signal)
      signal.throwIfAborted()
      o.calls?.restores.push(`clickhouse ${backupId}`)
      return o.restoreOk === false ? { ok: false, details: { mismatched: ['db.runs'] } } : { ok: true, details: { backupId, tables: [{ table: 'db.runs', rows: 3, expectedRows: 3 }] } }
    },
    ping: async () => {},
  }
}

/** A PostgreSQL-shaped source with a fixed recovery window. */
export function testPostgres(window: { from: string; to: string }, calls?: Calls): PostgresSource {
  return {
    method: 'physical',
    backup: async () => { throw new TidemarkError('TM_ERR_POSTGRES_UNREACHABLE', 'no server in this test') },
    catalog: async (): Promise<PhysicalPostgresCatalog> => ({ method: 'physical', windows: [{ timeline: 1, ...window }], baseBackups: [{ id: '20261128T000000Z-pg-0001', timeline: 1, endedAt: window.from }] }),
    checkTarget: async (t: PostgresTarget) => {
      calls?.checks.push(`pg ${t.dataDir}`)
      if (t.dataDir === undefined) throw new TidemarkError('TM_ERR_USAGE', 'a physical PostgreSQL restore needs targets.postgres.dataDir')
    },
    restore: async ({ at }) => {
      calls?.restores.push(`postgres ${at.toISOString()}`)
      return { ok: true, details: { at: at.toISOString() } }
    },
    smoke: async () => ({ acceptsConnections: true }),
    ping: async () => { throw new TidemarkError('TM_ERR_POSTGRES_UNREACHABLE', 'connection refused') },
  }
}

/** Daemon configuration with every schedule off unless given. */
export function daemonConfig(over: Partial<DaemonDeps['config']> = {}): DaemonDeps['config'] {
  return {
    schedules: { clickhouse: { incremental: undefined, full: undefined }, postgres: { base: undefined }, prune: undefined, replicate: undefined },
    daemon: { shutdownGraceSeconds: 1, jobHistory: 50 },
    hooks: { preRestore: { command: [] }, postRestore: { command: [] }, timeoutSeconds: 10 },
    ...over,
  }
}

/** A daemon over a temp repository with a test ClickHouse source (and optionally PostgreSQL). */
export async function testDaemon(t: Teardownable, o: { hold?: ReturnType<typeof gate>; restoreHold?: ReturnType<typeof gate>; calls?: Calls; config?: Partial<DaemonDeps['config']>; postgres?: PostgresSource; clock?: ReturnType<typeof manualClock> } = {}) {
  const clock = o.clock ?? manualClock('2026-11-28T09:00:00Z')
  const { repo, dir } = await tempRepository(t, clock)
  const daemon = new Daemon({
    version: '0.0.0-test', repo, clock, log: pino({ level: 'silent' }), config: daemonConfig(o.config),
    clickhouse: testClickHouse(repo, clock, { hold: o.hold, restoreHold: o.restoreHold, calls: o.calls }), postgres: o.postgres,
  })
  t.teardown(() => daemon.shutdown(0, 1000))
  return { daemon, repo, dir, clock }
}
