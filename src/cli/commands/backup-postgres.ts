/**
 * `tidemark backup postgres`: a base backup (physical method). Runs the preflight
 * first, streams pg_basebackup into the repository, waits for the backup's WAL to be
 * archived by `tidemark wal-archive`, then commits. With postgres.method logical, a
 * `pg_dump -Fc` of the database of postgres.url instead, on an exported snapshot
 * whose time is its restore point. SIGTERM/SIGINT abort either cleanly: the tool is
 * stopped and nothing is committed.
 */
import type { Config } from '../../config.ts'
import type { BaseBackupReport } from '../../engine/postgres/base-backup.ts'
import type { DumpReport } from '../../engine/postgres/dump.ts'
import type { Logger } from '../../log.ts'
import type { Command, CommandContext, CommandResult } from '../command.ts'
import { REPO_OPTION } from '../options.ts'
import { waitForStop } from '../signals.ts'

/** What `--json` prints. */
export function backupData(r: BaseBackupReport): Record<string, unknown> {
  const p = r.manifest.postgres
  return {
    id: r.id,
    method: r.manifest.method,
    systemId: p.systemId,
    timeline: p.timeline,
    startLsn: p.startLsn,
    stopLsn: p.stopLsn,
    startWalFile: p.startWalFile,
    startTime: p.startTime,
    endTime: p.endTime,
    tarBytes: p.tarBytes,
    storedBytes: r.storedBytes,
    walFiles: p.walFiles,
    walWaitMs: r.walWaitMs,
    durationMs: r.durationMs,
  }
}

/** The text rendering. */
export function backupText(r: BaseBackupReport): string {
  const p = r.manifest.postgres
  return [
    `base backup ${r.id} committed`,
    `  timeline ${p.timeline}, WAL ${p.startLsn} to ${p.stopLsn} (${p.walFiles.length} files)`,
    `  started ${p.startTime}, consistent from ${p.endTime}`,
    `  ${p.tarBytes} bytes streamed, ${r.storedBytes} stored, in ${(r.durationMs / 1000).toFixed(1)} s (${(r.walWaitMs / 1000).toFixed(1)} s waiting for WAL)`,
  ].join('\n')
}

/** What `--json` prints for a logical dump. */
export function dumpBackupData(r: DumpReport): Record<string, unknown> {
  const p = r.manifest.postgres
  return { id: r.id, method: r.manifest.method, database: p.database, at: p.at, notBefore: p.notBefore, serverMajor: p.serverMajor, dumpBytes: p.dumpBytes, storedBytes: r.storedBytes, durationMs: r.durationMs }
}

/** Takes a logical dump (postgres.method logical). */
async function logicalBackup(ctx: CommandContext, config: Config, log: Logger, signal: AbortSignal): Promise<CommandResult> {
  const common = await import('./postgres-common.ts')
  const s = common.logicalSettings(config)
  const { logicalPreflight } = await import('../../engine/postgres/logical-preflight.ts')
  const pf = await logicalPreflight(s.url, ['pg_dump'], s.binDir)
  const { repoUrl, withRepository } = await import('../repo.ts')
  const { runDump } = await import('../../engine/postgres/dump.ts')
  const dump = pf.tools.pg_dump as NonNullable<typeof pf.tools.pg_dump>
  const r = await withRepository(config, await repoUrl(ctx), 'open', (repo) =>
    runDump({ repo, url: s.url, pgDump: dump.path, pgDumpVersion: dump.version, psqlPath: pf.tools.psql?.path, signal, logger: log.child({ job: 'backup-postgres' }) }),
  )
  const p = r.manifest.postgres
  return { data: dumpBackupData(r), text: `logical dump ${r.id} of database ${p.database} committed\n  restore point ${p.at}\n  ${p.dumpBytes} bytes dumped, ${r.storedBytes} stored, in ${(r.durationMs / 1000).toFixed(1)} s` }
}

/** `tidemark backup postgres`. */
export const backupPostgresCommand: Command = {
  name: ['backup', 'postgres'],
  summary: 'take a PostgreSQL base backup (physical method: needs `tidemark wal-archive` running for the server), or a dump (logical method)',
  usage: '[--repo <url>] [--json]',
  options: REPO_OPTION,
  async run(ctx) {
    const config = await ctx.config()
    const log = await ctx.logger()
    const stop = waitForStop(log)
    const ac = new AbortController()
    void stop.stopped.then((sig) => ac.abort(new Error(`stopped by ${sig}`)))
    try {
      if (config.postgres.method === 'logical') return await logicalBackup(ctx, config, log, ac.signal)
      const common = await import('./postgres-common.ts')
      const s = common.physicalSettings(config, ctx.cwd)
      const pf = await common.physicalPreflight(s, ['pg_basebackup'])
      for (const w of pf.warnings) log.warn(w)
      const { repoUrl, withRepository } = await import('../repo.ts')
      const { runBaseBackup } = await import('../../engine/postgres/base-backup.ts')
      const report = await withRepository(config, await repoUrl(ctx), 'open', (repo) =>
        runBaseBackup({
          repo,
          systemId: pf.systemId,
          serverMajor: pf.serverMajor,
          segSize: pf.walSegSize,
          replicationUrl: s.replicationUrl,
          sqlUrl: s.url,
          pgBasebackup: common.toolPath(pf, 'pg_basebackup'),
          psqlPath: common.toolPath(pf, 'psql'),
          walTimeoutMs: s.walTimeoutMs,
          signal: ac.signal,
          logger: log.child({ job: 'backup-postgres' }),
        }),
      )
      return { data: backupData(report), text: backupText(report) }
    } finally {
      stop.dispose()
    }
  },
}
