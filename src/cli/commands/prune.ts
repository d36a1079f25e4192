/**
 * `tidemark prune [--dry-run]`: applies the retention policy of the repository
 * (a secondary's own when it is one) and removes unreferenced data older than the
 * safety margin. The dry run lists exactly what would be deleted and how many bytes.
 */
import type { PruneReport } from '../../engine/prune.ts'
import type { Command } from '../command.ts'
import { REPO_OPTION } from '../options.ts'
import { SECONDARY_OPTION } from './verify.ts'

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`

/** The report as text: the summary line, then every deletion and every kept backup with its reasons. */
export function formatPrune(r: PruneReport, where: string, marginHours: number, bytes: (n: number) => string): string {
  const p = r.plan
  const verb = r.dryRun ? 'would delete' : 'deleted'
  const objects = r.deleted?.objects ?? p.objects.length
  const size = r.deleted?.bytes ?? p.bytes
  const lines = [
    `${r.dryRun ? 'dry run: ' : ''}${where}: ${verb} ${plural(p.manifests.length, 'backup')}, ${plural(objects, 'object')} (${bytes(size)}), ${plural(p.journals.length, 'stale journal')}, ${plural(p.locks.length, 'expired lock')}`,
    ...p.manifests.map((m) => `  backup ${m.id} (${m.source}): ${m.reason}`),
    ...p.objects.map((o) => `  object ${o.key} ${bytes(o.size)}`),
    ...p.journals.map((j) => `  journal ${j.key}`),
    ...p.locks.map((l) => `  lock ${l}`),
    `kept ${plural(p.keep.length, 'backup')}:`,
    ...p.keep.map((k) => `  ${k.id} (${k.source}): ${k.reasons.join(', ')}`),
  ]
  if (p.young.objects > 0) lines.push(`spared ${plural(p.young.objects, 'unreferenced object')} (${bytes(p.young.bytes)}) younger than the safety margin (${marginHours} h)`)
  if ((r.deleted?.protectedByNewBackups ?? 0) > 0) lines.push(`spared ${plural(r.deleted!.protectedByNewBackups, 'object')} referenced by backups committed during the prune`)
  return lines.join('\n')
}

/** `tidemark prune`. */
export const pruneCommand: Command = {
  name: ['prune'],
  summary: 'delete backups the retention policy no longer keeps, then unreferenced data (takes the writer lease)',
  usage: '[--dry-run] [--repo <url> | --secondary <name>] [--json]',
  options: {
    'dry-run': { type: 'boolean', description: 'show exactly what would be deleted and how many bytes; delete nothing' },
    ...REPO_OPTION,
    ...SECONDARY_OPTION,
  },
  async run(ctx) {
    const config = await ctx.config()
    const { prune } = await import('../../engine/prune.ts')
    const { chosenPlace, formatBytes, withRepositoryAt } = await import('../targets.ts')
    const place = await chosenPlace(ctx)
    const report = await withRepositoryAt(config, place, (repo) => prune(repo, { policy: place.retention, dryRun: ctx.flag('dry-run') }))
    return { data: { repository: place.url, policy: place.retention, ...report }, text: formatPrune(report, place.secondary && place.name !== place.url ? `${place.name} ${place.url}` : place.url, place.retention.safetyMarginHours, formatBytes) }
  },
}
