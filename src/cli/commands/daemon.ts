/**
 * `tidemark daemon`: loads the configuration, opens the configured repository
 * (creating it on first start: the embedded default is a local directory) and runs
 * until SIGTERM/SIGINT, then closes everything and exits 0. Schedules and the HTTP
 * API plug in here as later issues add them.
 */
import { redactConfig } from '../../config.ts'
import type { Command } from '../command.ts'
import { REPO_OPTION } from '../options.ts'
import { waitForStop } from '../signals.ts'

/** `tidemark daemon`. */
export const daemonCommand: Command = {
  name: ['daemon'],
  summary: 'run the daemon until SIGTERM (opens or creates the configured repository)',
  usage: '[--repo <url>] [--config <file>]',
  options: REPO_OPTION,
  async run(ctx) {
    const config = await ctx.config()
    const log = await ctx.logger()
    // Handlers first: a SIGTERM while the repository opens still stops cleanly.
    const stop = waitForStop(log)
    try {
      log.info({ config: redactConfig(config) }, 'configuration loaded')
      const { openOrInit, repoUrl } = await import('../repo.ts')
      const { repo, created } = await openOrInit(config, await repoUrl(ctx))
      try {
        const info = await repo.info()
        log.info({ repository: info.sink, repositoryId: info.id, created, encryption: info.encryption }, 'tidemark daemon up')
        const signal = await stop.stopped
        log.info({ signal }, 'stopping')
      } finally {
        await repo.close()
      }
      log.info('stopped')
    } finally {
      stop.dispose()
    }
  },
}
