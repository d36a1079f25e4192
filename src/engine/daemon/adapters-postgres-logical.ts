/**
 * The PostgreSQL logical engine adapted to the daemon's `PostgresSource`: the
 * scheduled base-backup job takes a `pg_dump` of the configured database, the
 * catalog lists dumps at their snapshot times (rounded up to the millisecond: no
 * commit in a dump is later), and a restore runs pg_restore of the dump at the
 * planned time into targets.postgres.url. No WAL archive.
 */
import { TidemarkError } from '../../errors.ts'
import type { LogicalPostgresCatalog } from '../planner.ts'
import { listDumps } from '../postgres/dump-catalog.ts'
import type { PostgresDumpManifest } from '../postgres/dump-manifest.ts'
import { checkDumpTarget, restoreDump } from '../postgres/dump-restore.ts'
import { runDump } from '../postgres/dump.ts'
import { parseInstant } from '../postgres/instant.ts'
import { logicalPreflight } from '../postgres/logical-preflight.ts'
import { psql } from '../postgres/psql.ts'
import type { Repository } from '../repository/index.ts'
import type { PostgresSource, PostgresTarget } from './facade.ts'

/** The logical method's settings (see cli/commands/postgres-common.ts logicalSettings). */
export interface LogicalAdapterOptions {
  repo: Repository
  url: string
  binDir: string | undefined
  /** pg_restore jobs for daemon restores (default 1: streamed, one transaction). */
  restoreJobs?: number
}

/** A dump's restore point as the planner sees it: its `at` rounded up to the millisecond. */
export function plannerAt(m: PostgresDumpManifest): string {
  const us = parseInstant(m.postgres.at)
  return new Date(Number((us + 999n) / 1000n)).toISOString()
}

/** The planner's view of the dumps (pure). */
export function logicalCatalog(dumps: readonly PostgresDumpManifest[]): LogicalPostgresCatalog {
  return { method: 'logical', dumps: dumps.map((m) => ({ id: m.id, at: plannerAt(m) })) }
}

function requireUrl(t: PostgresTarget): string {
  if (t.url === undefined) throw new TidemarkError('TM_ERR_USAGE', 'a logical PostgreSQL restore needs targets.postgres.url: the (empty) database to restore the dump into')
  return t.url
}

/** The PostgreSQL source over the logical engine. */
export function logicalPostgresSource(o: LogicalAdapterOptions): PostgresSource {
  const psqlPath = o.binDir === undefined ? undefined : `${o.binDir}/psql`
  return {
    method: 'logical',
    backup: async ({ signal, log }) => {
      const pf = await logicalPreflight(o.url, ['pg_dump'], o.binDir)
      const dump = pf.tools.pg_dump as NonNullable<typeof pf.tools.pg_dump>
      const r = await runDump({ repo: o.repo, url: o.url, pgDump: dump.path, pgDumpVersion: dump.version, psqlPath: pf.tools.psql?.path, signal, logger: log })
      const m = r.manifest
      return { id: r.id, startedAt: m.startedAt, endedAt: m.endedAt, bytes: r.storedBytes, durationMs: r.durationMs, details: { database: m.postgres.database, at: m.postgres.at } }
    },
    catalog: async () => logicalCatalog(await listDumps(o.repo)),
    checkTarget: async (t) => checkDumpTarget(requireUrl(t), psqlPath),
    restore: async ({ at, target, signal, log }) => {
      const url = requireUrl(target)
      const want = at.toISOString()
      const m = (await listDumps(o.repo)).find((d) => plannerAt(d) === want)
      if (!m) throw new TidemarkError('TM_ERR_NO_RESTORE_POINT', `no logical dump restores to ${want}; list the dumps with \`tidemark list --source postgres\``)
      const pf = await logicalPreflight(url, ['pg_restore'], o.binDir)
      const r = await restoreDump({ repo: o.repo, backupId: m.id, targetUrl: url, jobs: o.restoreJobs, pgRestore: (pf.tools.pg_restore as { path: string }).path, psqlPath: pf.tools.psql?.path, signal, logger: log })
      return { ok: true, details: { backupId: m.id, at: m.postgres.at, database: m.postgres.database, jobs: r.jobs, durationMs: r.durationMs } }
    },
    smoke: async (url, timeoutMs, signal) => {
      await psql(url, 'SELECT 1', { psqlPath, timeoutMs, signal })
      return { url: url.replace(/:\/\/([^:@/]+):[^@/]*@/, '://$1:***@'), acceptsConnections: true }
    },
    ping: async (signal) => void (await psql(o.url, 'SELECT 1', { psqlPath, timeoutMs: 10_000, signal })),
  }
}
