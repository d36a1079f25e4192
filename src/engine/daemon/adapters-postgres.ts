/**
 * The PostgreSQL physical engine adapted to the daemon's `PostgresSource`: base
 * backups (preflight, pg_basebackup, wait for WAL, commit), the catalog in the
 * planner's form (recovery windows at millisecond precision, rounded inwards), the
 * restore into an empty data directory, the smoke check of a started server, and
 * the WAL archive as a supervised service.
 */
import { TidemarkError } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import type { Clock } from '../clock.ts'
import type { PhysicalPostgresCatalog } from '../planner.ts'
import { WalArchiver } from '../postgres/archiver.ts'
import { runBaseBackup } from '../postgres/base-backup.ts'
import { readCatalog, type SystemCatalog } from '../postgres/catalog.ts'
import { microsOf, type Micros } from '../postgres/instant.ts'
import { preflight, type PreflightResult } from '../postgres/preflight.ts'
import { psql } from '../postgres/psql.ts'
import { checkTargetDir, restorePostgres } from '../postgres/restore.ts'
import type { Repository } from '../repository/index.ts'
import type { PostgresSource, PostgresTarget } from './facade.ts'
import { supervise } from './supervisor.ts'

/** The physical method's settings (see cli/commands/postgres-common.ts physicalSettings). */
export interface PostgresAdapterOptions {
  repo: Repository
  clock: Clock
  log: Logger
  url: string
  replicationUrl: string
  binDir: string | undefined
  slot: string
  walDir: string
  intervalMs: number
  walTimeoutMs: number
  /** The restore_command written into a restored data directory, for a cluster. */
  restoreCommand: (systemId: string) => string
  /** Start the WAL archive service (default true). */
  archive?: boolean
}

const isoCeil = (us: Micros): string => new Date(Number((us + 999n) / 1000n)).toISOString()
const isoFloor = (us: Micros): string => new Date(Number(us / 1000n)).toISOString()

/** The planner's view of one cluster's catalog (pure): windows rounded inwards to milliseconds. */
export function physicalCatalog(c: SystemCatalog | undefined): PhysicalPostgresCatalog {
  if (!c) return { method: 'physical', windows: [], baseBackups: [] }
  const windows = c.timeWindows.map((w) => ({ timeline: w.timeline, from: isoCeil(w.from), to: isoFloor(w.to) })).filter((w) => w.from <= w.to)
  const baseBackups = c.windows.filter((w) => w.restorable).map((w) => ({ id: w.backupId, timeline: w.timeline, endedAt: isoCeil(w.from) }))
  return { method: 'physical', windows, baseBackups }
}

/** The cluster to plan with: the one holding the newest base backup. */
function newestSystem(all: SystemCatalog[]): SystemCatalog | undefined {
  const newest = (c: SystemCatalog) => c.backups.at(-1)?.endedAt ?? ''
  return [...all].filter((c) => c.backups.length > 0).sort((a, b) => (newest(a) < newest(b) ? 1 : -1))[0]
}

const sleep = (ms: number, signal: AbortSignal) => new Promise<void>((resolve) => {
  const t = setTimeout(resolve, ms)
  signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true })
})

function tool(pf: PreflightResult, name: 'pg_basebackup' | 'pg_receivewal' | 'psql'): string {
  const t = pf.tools[name]
  if (!t) throw new TidemarkError('TM_ERR_POSTGRES_TOOL_MISSING', `${name} was not located by the preflight`)
  return t.path
}

/** The PostgreSQL source over the physical engine. */
export function postgresSource(o: PostgresAdapterOptions): PostgresSource {
  const psqlPath = o.binDir === undefined ? undefined : `${o.binDir}/psql`
  const walService = o.archive === false ? undefined : supervise({
    name: 'wal-archive', clock: o.clock, log: o.log,
    create: async (report) => {
      const pf = await preflight({ url: o.replicationUrl, binDir: o.binDir, tools: ['pg_receivewal'], slot: o.slot })
      const archiver = new WalArchiver({
        repo: o.repo, systemId: pf.systemId, segSize: pf.walSegSize, replicationUrl: o.replicationUrl, sqlUrl: o.url, dir: o.walDir, slot: o.slot,
        pgReceivewal: tool(pf, 'pg_receivewal'), psqlPath: tool(pf, 'psql'), intervalMs: o.intervalMs, logger: o.log.child({ service: 'wal-archive' }),
      })
      archiver.on('heartbeat', () => report.progress())
      archiver.on('partial', () => report.progress())
      archiver.on('failure', (err) => report.failure(err))
      await archiver.start()
      return { stop: () => archiver.stop(), abort: () => archiver.abort() }
    },
  })
  return {
    method: 'physical',
    walService,
    backup: async ({ signal, log }) => {
      const pf = await preflight({ url: o.replicationUrl, binDir: o.binDir, tools: ['pg_basebackup'] })
      for (const w of pf.warnings) log.warn(w)
      const r = await runBaseBackup({
        repo: o.repo, systemId: pf.systemId, serverMajor: pf.serverMajor, segSize: pf.walSegSize, replicationUrl: o.replicationUrl, sqlUrl: o.url,
        pgBasebackup: tool(pf, 'pg_basebackup'), psqlPath: tool(pf, 'psql'), walTimeoutMs: o.walTimeoutMs, signal, logger: log,
      })
      const m = r.manifest
      return { id: r.id, startedAt: m.startedAt, endedAt: m.endedAt, bytes: r.storedBytes, durationMs: r.durationMs, details: { timeline: m.postgres.timeline, startLsn: m.postgres.startLsn, stopLsn: m.postgres.stopLsn, walWaitMs: r.walWaitMs } }
    },
    catalog: async () => physicalCatalog(newestSystem(await readCatalog(o.repo))),
    checkTarget: async (t: PostgresTarget) => {
      if (t.dataDir === undefined) throw new TidemarkError('TM_ERR_USAGE', 'a physical PostgreSQL restore needs targets.postgres.dataDir (an empty or new data directory); targets.postgres.url only names the server to smoke-check once it is started on that directory')
      await checkTargetDir(t.dataDir)
    },
    restore: async ({ at, target, signal, log }) => {
      const r = await restorePostgres({ repo: o.repo, target: microsOf(at), targetDir: target.dataDir as string, restoreCommand: o.restoreCommand, signal, logger: log })
      return { ok: true, details: { backupId: r.plan.backupId, systemId: r.systemId, timeline: r.plan.timeline, targetDir: r.targetDir, description: r.description } }
    },
    smoke: async (url, timeoutMs, signal) => {
      const deadline = Date.now() + timeoutMs
      let last: unknown
      while (Date.now() < deadline && !signal.aborted) {
        try {
          const out = await psql(url, 'SELECT pg_is_in_recovery()', { psqlPath, timeoutMs: 10_000, signal })
          if (out.trim() === 'f') return { url: redact(url), acceptsConnections: true, inRecovery: false }
          last = new Error('the server is still in recovery')
        } catch (err) {
          last = err
        }
        await sleep(500, signal)
      }
      signal.throwIfAborted()
      throw new TidemarkError('TM_ERR_SMOKE_CHECK_FAILED', `the restored PostgreSQL at ${redact(url)} did not accept connections out of recovery within ${Math.round(timeoutMs / 1000)} s: ${(last as Error)?.message ?? 'no answer'}`)
    },
    ping: async (signal) => void (await psql(o.url, 'SELECT 1', { psqlPath, timeoutMs: 10_000, signal })),
  }
}

function redact(url: string): string {
  return url.replace(/:\/\/([^:@/]+):[^@/]*@/, '://$1:***@')
}
