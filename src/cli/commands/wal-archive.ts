/**
 * `tidemark wal-archive`: runs the continuous WAL archive in the foreground until
 * SIGTERM/SIGINT, then stops cleanly: a last heartbeat, pg_receivewal stopped, every
 * completed file stored and the open segment uploaded. A second signal exits at once
 * (files not yet stored stay in postgres.walDir and are stored at the next start).
 */
import type { Command } from '../command.ts'
import { REPO_OPTION } from '../options.ts'
import { waitForStop } from '../signals.ts'

/** `tidemark wal-archive`. */
export const walArchiveCommand: Command = {
  name: ['wal-archive'],
  summary: 'archive PostgreSQL WAL continuously (pg_receivewal into the repository) until SIGTERM',
  usage: '[--repo <url>] [--config <file>]',
  options: REPO_OPTION,
  async run(ctx) {
    const config = await ctx.config()
    const log = await ctx.logger()
    const common = await import('./postgres-common.ts')
    const s = common.physicalSettings(config, ctx.cwd)
    // Handlers first: a SIGTERM during the preflight still stops cleanly.
    const stop = waitForStop(log)
    let stopping = false
    void stop.stopped.then(() => (stopping = true))
    try {
      const pf = await common.physicalPreflight(s, ['pg_receivewal'], s.slot)
      for (const w of pf.warnings) log.warn(w)
      const { repoUrl, withRepository } = await import('../repo.ts')
      const { WalArchiver } = await import('../../engine/postgres/archiver.ts')
      await withRepository(config, await repoUrl(ctx), 'open', async (repo) => {
        if (stopping) return
        const archiver = new WalArchiver({
          repo,
          systemId: pf.systemId,
          segSize: pf.walSegSize,
          replicationUrl: s.replicationUrl,
          sqlUrl: s.url,
          dir: s.walDir,
          slot: s.slot,
          pgReceivewal: common.toolPath(pf, 'pg_receivewal'),
          psqlPath: common.toolPath(pf, 'psql'),
          intervalMs: s.intervalMs,
          logger: log.child({ job: 'wal-archive' }),
        })
        await archiver.start()
        const signal = await stop.stopped
        log.info({ signal }, 'stopping the WAL archive: storing what was received')
        await archiver.stop()
      })
    } finally {
      stop.dispose()
    }
  },
}
