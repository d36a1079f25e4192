/**
 * `tidemark restore --at <time|latest> [--sources …] [targets…] [--dry-run]`: a
 * time-aligned restore of the selected stores, planned and executed exactly as
 * POST /v1/restores does (hooks, PostgreSQL, ClickHouse, smoke checks, report with
 * each step's duration). SIGTERM/SIGINT cancel it.
 */
import { resolve } from 'node:path'
import type { RestoreReport } from '../../engine/daemon/restore-exec.ts'
import type { RestoreTargets } from '../../engine/daemon/facade.ts'
import { TidemarkError } from '../../errors.ts'
import type { Command, CommandContext } from '../command.ts'
import { REPO_OPTION } from '../options.ts'
import { waitForStop } from '../signals.ts'
import { parseSources } from './restore-points.ts'

function targetsOf(ctx: CommandContext): RestoreTargets {
  const dir = ctx.string('pg-target-dir')
  const pgUrl = ctx.string('pg-target-url')
  const chUrl = ctx.string('ch-target-url')
  const t: RestoreTargets = {}
  if (dir !== undefined || pgUrl !== undefined) t.postgres = { ...(dir === undefined ? {} : { dataDir: resolve(ctx.cwd, dir) }), ...(pgUrl === undefined ? {} : { url: pgUrl }) }
  if (chUrl !== undefined) t.clickhouse = { url: chUrl }
  return t
}

/** The report as text: the plan, then each step and its duration, then the total (the measured RTO). */
export function reportText(r: RestoreReport): string {
  return [
    `restored to ${r.plan.point} (requested ${r.plan.requested})`,
    ...r.steps.map((s) => `  ${s.step.padEnd(18)} ${(s.durationMs / 1000).toFixed(1).padStart(8)} s  ${s.ok ? 'ok' : `FAILED ${s.error?.code}`}`),
    `  ${'total (RTO)'.padEnd(18)} ${(r.totalMs / 1000).toFixed(1).padStart(8)} s`,
  ].join('\n')
}

/** `tidemark restore`. */
export const restoreCommand: Command = {
  name: ['restore'],
  summary: 'restore the selected stores to one point in time (pre/post hooks, smoke checks, timed report)',
  usage: '--at <time|latest> [--sources clickhouse,postgres] [--pg-target-dir <dir>] [--pg-target-url <url>] [--ch-target-url <url>] [--dry-run] [--repo <url>] [--json]',
  options: {
    at: { type: 'string', arg: '<time|latest>', description: 'ISO 8601 with an offset (2026-11-28T09:40:00Z), or latest' },
    sources: { type: 'string', arg: '<list>', description: 'comma-separated stores (default: every configured one)' },
    'pg-target-dir': { type: 'string', arg: '<dir>', description: 'PostgreSQL: empty or new data directory to restore into' },
    'pg-target-url': { type: 'string', arg: '<url>', description: 'PostgreSQL: the server started on that directory, smoke-checked after the post-restore hook' },
    'ch-target-url': { type: 'string', arg: '<url>', description: 'ClickHouse: empty server to restore into, http(s)://[user:password@]host:port' },
    'dry-run': { type: 'boolean', description: 'print the plan; change nothing' },
    ...REPO_OPTION,
  },
  async run(ctx) {
    const { parseTimeOrLatest } = await import('../../engine/daemon/times.ts')
    const at = parseTimeOrLatest(ctx.requireString('at'), '--at')
    const sources = parseSources(ctx.string('sources'))
    const config = await ctx.config()
    const log = await ctx.logger()
    const { repoUrl, withRepository } = await import('../repo.ts')
    const { wireDaemon } = await import('./daemon-common.ts')
    const url = await repoUrl(ctx)
    const stop = waitForStop(log)
    try {
      return await withRepository(config, url, 'open', async (repo) => {
        const daemon = await wireDaemon(ctx, config, repo, log, '', { mode: 'cli', repoUrl: url })
        const request = { at, sources: sources ?? daemon.sources, targets: targetsOf(ctx) }
        if (ctx.flag('dry-run')) {
          const plan = await daemon.planRestore(request)
          return { data: { plan }, text: JSON.stringify(plan, null, 2) }
        }
        const job = await daemon.startRestore(request, 'cli')
        void stop.stopped.then((sig) => daemon.jobs.cancel(job.id, `stopped by ${sig}`))
        await daemon.jobs.idle()
        const done = daemon.jobs.get(job.id)
        if (done.state !== 'succeeded') throw new TidemarkError(done.error?.code ?? 'TM_ERR_INTERNAL', done.error?.message ?? `restore ${done.state}`, { details: done.error?.details })
        const report = done.result as RestoreReport
        return { data: report, text: reportText(report) }
      })
    } finally {
      stop.dispose()
    }
  },
}
