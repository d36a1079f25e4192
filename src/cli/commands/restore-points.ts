/**
 * `tidemark restore-points [--sources clickhouse,postgres] [--json]`: the recovery
 * windows of each selected store and the points at which all of them can be
 * restored together (the same planner as GET /v1/restore-points). Read-only.
 */
import type { RestorePointsView } from '../../engine/daemon/facade.ts'
import type { SourceName } from '../../engine/repository/index.ts'
import { TidemarkError } from '../../errors.ts'
import type { Command } from '../command.ts'
import { REPO_OPTION } from '../options.ts'

const KNOWN: readonly SourceName[] = ['clickhouse', 'postgres']

/** `--sources a,b` as a list; TM_ERR_USAGE for an unknown name. */
export function parseSources(text: string | undefined): SourceName[] | undefined {
  if (text === undefined) return undefined
  const list = [...new Set(text.split(',').map((s) => s.trim()).filter((s) => s !== ''))]
  const bad = list.filter((s) => !KNOWN.includes(s as SourceName))
  if (bad.length > 0 || list.length === 0) throw new TidemarkError('TM_ERR_USAGE', `--sources expects a comma-separated list of ${KNOWN.join(', ')}; got "${text}"`)
  return list as SourceName[]
}

/** The text rendering. */
export function pointsText(v: RestorePointsView): string {
  const lines = [`stores: ${v.sources.join(', ')}`]
  if (v.clickhouse) lines.push(`clickhouse backups (restore points): ${v.clickhouse.backups.length === 0 ? 'none' : ''}`, ...v.clickhouse.backups.map((b) => `  ${b.at}  ${b.id}`))
  if (v.postgres?.method === 'physical') lines.push(`postgres recovery windows: ${v.postgres.windows.length === 0 ? 'none' : ''}`, ...v.postgres.windows.map((w) => `  ${w.from} … ${w.to} (timeline ${w.timeline})`))
  lines.push(`aligned restore points: ${v.points.length === 0 ? 'none' : ''}`, ...v.points.map((p) => ('at' in p ? `  ${p.at}` : `  ${p.from} … ${p.to} (timeline ${p.timeline})`)))
  return lines.join('\n')
}

/** `tidemark restore-points`. */
export const restorePointsCommand: Command = {
  name: ['restore-points'],
  summary: 'list the times the selected stores can be restored to together',
  usage: '[--sources clickhouse,postgres] [--repo <url>] [--json]',
  options: {
    sources: { type: 'string', arg: '<list>', description: 'comma-separated stores (default: every configured one)' },
    ...REPO_OPTION,
  },
  async run(ctx) {
    const sources = parseSources(ctx.string('sources'))
    const config = await ctx.config()
    const log = await ctx.logger()
    const { repoUrl, withRepository } = await import('../repo.ts')
    const { wireDaemon } = await import('./daemon-common.ts')
    const url = await repoUrl(ctx)
    const view = await withRepository(config, url, 'open', async (repo) => (await wireDaemon(ctx, config, repo, log, '', { mode: 'cli', repoUrl: url })).restorePoints({ sources }))
    return { data: view, text: pointsText(view) }
  },
}
