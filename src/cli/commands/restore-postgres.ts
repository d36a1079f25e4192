/**
 * `tidemark restore postgres --at <time|latest> --target-dir <dir>`: point-in-time
 * restore (physical method). Writes the chosen base backup into an empty directory
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
import type { Command } from '../command.ts'
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

/** `tidemark restore postgres`. */
export const restorePostgresCommand: Command = {
  name: ['restore', 'postgres'],
  summary: 'restore PostgreSQL to a point in time into an empty data directory (start PostgreSQL on it to recover)',
  usage: '--at <time|latest> --target-dir <dir> [--system-id <id>] [--repo <url>] [--json]',
  options: {
    at: { type: 'string', arg: '<time|latest>', description: 'ISO 8601 time with an offset (2026-11-28T09:40:00Z, to the microsecond), or latest: the end of the archive' },
    'target-dir': { type: 'string', arg: '<dir>', description: 'data directory to restore into: must be empty or not exist' },
    'system-id': { type: 'string', arg: '<id>', description: 'the PostgreSQL cluster, when the repository holds several' },
    ...REPO_OPTION,
  },
  async run(ctx) {
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
