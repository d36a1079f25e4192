/**
 * `tidemark restore postgres --at <time|latest> --target-dir <dir>`: point-in-time
 * restore (physical method); `--backup <id> --target-url <url>` restores a logical
 * dump with pg_restore instead. Writes the chosen base backup into an empty directory
 * with recovery.signal and settings whose restore_command is
 * `<this tidemark> [--config <file>] wal-fetch --repo <url> --system-id <id> %f %p`;
 * starting PostgreSQL on the directory recovers to the target and promotes.
 *
 * The restored server runs wal-fetch as its own OS user and with its own
 * environment: give an encrypted repository's passphrase or key file, and S3
 * credentials, in the configuration file (readable by that user) or in the server's
 * environment. They are never written into the data directory.
 */
import { resolve } from 'node:path'
import type { RestoreReport } from '../../engine/postgres/restore.ts'
import { TidemarkError } from '../../errors.ts'
import type { Command, CommandContext, CommandResult } from '../command.ts'
import { REPO_OPTION } from '../options.ts'

/** What `--json` prints. */
export function restoreData(r: RestoreReport, fmt: (us: bigint) => string): Record<string, unknown> {
  return {
    backupId: r.plan.backupId,
    systemId: r.systemId,
    timeline: r.plan.timeline,
    target: r.plan.target === 'latest' ? 'latest' : fmt(r.plan.target),
    backupEndTime: r.manifest.postgres.endTime,
    provenUntil: r.plan.expectedEnd === undefined ? null : fmt(r.plan.expectedEnd),
    targetDir: r.targetDir,
    restoreCommand: r.restoreCommand,
  }
}

/** The --jobs value: a whole number from 1 to 64; TM_ERR_USAGE otherwise. */
export function parseJobs(text: string | undefined): number {
  if (text === undefined) return 1
  const n = Number(text)
  if (!/^\d+$/.test(text) || n < 1 || n > 64) throw new TidemarkError('TM_ERR_USAGE', `--jobs must be a whole number from 1 to 64, not "${text}"`)
  return n
}

/** `restore postgres --backup <id> --target-url <url>`: pg_restore of a logical dump. */
async function restoreDumpCommand(ctx: CommandContext, backupId: string): Promise<CommandResult> {
  const targetUrl = ctx.requireString('target-url')
  const jobs = parseJobs(ctx.string('jobs'))
  const config = await ctx.config()
  const log = await ctx.logger()
  const { logicalPreflight } = await import('../../engine/postgres/logical-preflight.ts')
  const pf = await logicalPreflight(targetUrl, ['pg_restore'], config.postgres.binDir)
  const { repoUrl, withRepository } = await import('../repo.ts')
  const { restoreDump } = await import('../../engine/postgres/dump-restore.ts')
  const r = await withRepository(config, await repoUrl(ctx), 'open', (repo) =>
    restoreDump({ repo, backupId, targetUrl, jobs, allowNonEmpty: ctx.flag('allow-non-empty'), pgRestore: (pf.tools.pg_restore as { path: string }).path, psqlPath: pf.tools.psql?.path, logger: log.child({ job: 'restore-postgres' }) }),
  )
  const p = r.manifest.postgres
  const data = { backupId, method: r.manifest.method, database: p.database, at: p.at, targetDatabase: pf.database, jobs: r.jobs, durationMs: r.durationMs }
  return { data, text: `restored dump ${backupId} (database ${p.database} as of ${p.at}) into database ${pf.database} in ${(r.durationMs / 1000).toFixed(1)} s` }
}

/** `tidemark restore postgres`. */
export const restorePostgresCommand: Command = {
  name: ['restore', 'postgres'],
  summary: 'restore PostgreSQL to a point in time into an empty data directory (start PostgreSQL on it to recover), or a logical dump into a database',
  usage: '--at <time|latest> --target-dir <dir> [--system-id <id>] | --backup <id> --target-url <url> [--jobs <n>] [--allow-non-empty]; [--repo <url>] [--json]',
  options: {
    at: { type: 'string', arg: '<time|latest>', description: 'ISO 8601 time with an offset (2026-11-28T09:40:00Z, to the microsecond), or latest: the end of the archive' },
    'target-dir': { type: 'string', arg: '<dir>', description: 'data directory to restore into: must be empty or not exist' },
    'system-id': { type: 'string', arg: '<id>', description: 'the PostgreSQL cluster, when the repository holds several' },
    backup: { type: 'string', arg: '<id>', description: 'a logical dump to restore (see `tidemark list --source postgres`)' },
    'target-url': { type: 'string', arg: '<url>', description: 'with --backup: the database to restore the dump into (must hold no tables unless --allow-non-empty)' },
    jobs: { type: 'string', arg: '<n>', description: 'with --backup: parallel pg_restore jobs (the dump goes to a private temporary file first)' },
    'allow-non-empty': { type: 'boolean', description: 'with --backup: restore into a database that already holds tables' },
    ...REPO_OPTION,
  },
  async run(ctx) {
    const backupId = ctx.string('backup')
    const logical = ['target-url', 'jobs', 'allow-non-empty'].filter((o) => ctx.values[o] !== undefined)
    const physical = ['at', 'target-dir', 'system-id'].filter((o) => ctx.values[o] !== undefined)
    if (backupId !== undefined && physical.length > 0) throw new TidemarkError('TM_ERR_USAGE', `--backup <id> restores a logical dump and cannot be combined with the point-in-time options (--${physical.join(', --')})`)
    if (backupId === undefined && logical.length > 0) throw new TidemarkError('TM_ERR_USAGE', `the logical-restore options (--${logical.join(', --')}) need --backup <id>`)
    if (backupId !== undefined) return restoreDumpCommand(ctx, backupId)
    const { formatMicros, parseTarget } = await import('../../engine/postgres/instant.ts')
    const target = parseTarget(ctx.requireString('at'))
    const targetDir = resolve(ctx.cwd, ctx.requireString('target-dir'))
    const config = await ctx.config()
    const log = await ctx.logger()
    const common = await import('./postgres-common.ts')
    const { repoUrl, withRepository } = await import('../repo.ts')
    const { restorePostgres, walFetchRestoreCommand } = await import('../../engine/postgres/restore.ts')
    const url = await repoUrl(ctx)
    const cfg = common.configFile(ctx)
    const program = [common.launcherPath(), ...(cfg === undefined ? [] : ['--config', cfg])]
    const report = await withRepository(config, url, 'open', (repo) =>
      restorePostgres({ repo, target, targetDir, systemId: ctx.string('system-id'), restoreCommand: (id) => walFetchRestoreCommand(program, url, id), logger: log.child({ job: 'restore-postgres' }) }),
    )
    const text = [`restored ${report.description}`, `into ${targetDir}`, 'start PostgreSQL on it (as the user that owns it) to recover; it promotes when the target is reached'].join('\n')
    return { data: restoreData(report, formatMicros), text }
  },
}
