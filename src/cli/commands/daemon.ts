/**
 * `tidemark daemon`: loads the configuration, opens the configured repository
 * (creating it on first start: the embedded default is a local directory), starts
 * the schedules, the WAL archive service and the HTTP API, and runs until
 * SIGTERM/SIGINT. Then: scheduling stops, running jobs get
 * daemon.shutdownGraceSeconds to finish and are aborted after it (nothing
 * unfinished is committed), the API closes, exit 0. A second signal exits at once.
 *
 * A store that is unreachable at start does not stop the daemon: /readyz and
 * /metrics report it, the WAL archive retries with backoff, schedules fire again.
 * The API refuses to start on a non-loopback address without any token.
 */
import { readFileSync } from 'node:fs'
import { redactConfig } from '../../config.ts'
import type { Command } from '../command.ts'
import { REPO_OPTION } from '../options.ts'
import { waitForStop } from '../signals.ts'

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version
}

/** `tidemark daemon`. */
export const daemonCommand: Command = {
  name: ['daemon'],
  summary: 'run the daemon until SIGTERM: schedules, WAL archive, HTTP API (opens or creates the configured repository)',
  usage: '[--repo <url>] [--config <file>]',
  options: REPO_OPTION,
  async run(ctx) {
    const config = await ctx.config()
    const log = await ctx.logger()
    const { checkExposure } = await import('../../http/auth.ts')
    const auth = { readToken: config.api.readToken, adminToken: config.api.adminToken, metricsAuth: config.api.metricsAuth }
    checkExposure(config.api.host, auth)
    // Handlers first: a SIGTERM while the repository opens still stops cleanly.
    const stop = waitForStop(log)
    try {
      log.info({ config: redactConfig(config) }, 'configuration loaded')
      const { openOrInit, repoUrl } = await import('../repo.ts')
      const url = await repoUrl(ctx)
      const { repo, created } = await openOrInit(config, url)
      try {
        const version = packageVersion()
        const { wireDaemon } = await import('./daemon-common.ts')
        const daemon = await wireDaemon(ctx, config, repo, log, version, { mode: 'daemon', repoUrl: url })
        const { build } = await import('../../http/app.ts')
        const app = build({ engine: daemon, auth, logger: log.child({ component: 'api' }), bodyLimitBytes: config.api.bodyLimitBytes })
        try {
          const address = await app.listen({ host: config.api.host, port: config.api.port })
          await daemon.start()
          const info = await repo.info()
          log.info({ repository: info.sink, repositoryId: info.id, created, encryption: info.encryption, api: address, sources: daemon.sources }, 'tidemark daemon up')
          const signal = await stop.stopped
          log.info({ signal, graceSeconds: config.daemon.shutdownGraceSeconds }, 'stopping')
          const { aborted } = await daemon.shutdown(config.daemon.shutdownGraceSeconds * 1000)
          if (aborted.length > 0) log.warn({ jobs: aborted }, 'jobs aborted at shutdown')
        } finally {
          await app.close()
        }
      } finally {
        await repo.close()
      }
      log.info('stopped')
    } finally {
      stop.dispose()
    }
  },
}
