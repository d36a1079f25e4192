/**
 * `tidemark replicate [--to <name|url>]`: brings every configured secondary (or the
 * one named) up to date with the primary, and reports what was copied and the lag
 * left. A failing secondary does not stop the others; the command then exits 1 with
 * the first failure's code after printing the whole report.
 */
import type { ReplicationLag, ReplicationResult } from '../../engine/replicate.ts'
import { asTidemarkError, TidemarkError, type ErrorCode } from '../../errors.ts'
import type { Command } from '../command.ts'
import { REPO_OPTION } from '../options.ts'
import { printResult } from '../output.ts'

/** One secondary's outcome. */
export interface TargetReport {
  name: string
  url: string
  ok: boolean
  result?: ReplicationResult
  error?: { code: ErrorCode; message: string }
  lag: ReplicationLag
  durationMs: number
}

function line(r: TargetReport, bytes: (n: number) => string): string {
  const lag = r.lag.ok ? `lag ${r.lag.seconds} s, ${bytes(r.lag.bytes)} (${r.lag.backups} backups)` : `lag unknown (${r.lag.error.code})`
  if (!r.ok || !r.result) return `${r.name}  ${r.url}: FAILED ${r.error?.code} ${r.error?.message}\n  ${lag}`
  const x = r.result
  const server = x.serverSideCopies > 0 ? `, ${x.serverSideCopies} server-side` : ''
  const skipped = x.skippedByPolicy.length > 0 ? `; ${x.skippedByPolicy.length} backups skipped (its retention would prune them)` : ''
  return (
    `${r.name}  ${r.url}${x.created ? ' (initialised)' : ''}: ${x.manifestsCopied.length} backups, ${x.objectsCopied} objects (${bytes(x.bytesCopied)}) copied${server}, ` +
    `${x.objectsPresent} objects already there${skipped}; ${lag}; ${(r.durationMs / 1000).toFixed(1)} s`
  )
}

/** `tidemark replicate`. */
export const replicateCommand: Command = {
  name: ['replicate'],
  summary: 'copy new backups to the secondaries (cross-region copies); report the lag',
  usage: '[--to <name|url>] [--repo <url>] [--json]',
  options: {
    to: { type: 'string', arg: '<name|url>', description: 'one secondary: a configured name, or a URL (s3://bucket/prefix, file:///path) reached with the primary’s settings' },
    ...REPO_OPTION,
  },
  async run(ctx) {
    const config = await ctx.config()
    const { replicate, replicationLag } = await import('../../engine/replicate.ts')
    const { formatBytes, openTarget, primaryPlace, replicaPlaces, withRepositoryAt } = await import('../targets.ts')
    const { repoUrl } = await import('../repo.ts')
    const primary = primaryPlace(config, await repoUrl(ctx))
    const places = replicaPlaces(config, ctx.string('to'), ctx.cwd)
    const reports = await withRepositoryAt(config, primary, async (repo) => {
      const out: TargetReport[] = []
      for (const place of places) {
        const target = openTarget(primary, place)
        const started = Date.now()
        try {
          const result = await replicate(repo, target, { parallelism: place.parallelism, leaseTtlMs: config.repository.lease.ttlSeconds * 1000 }).then(
            (result) => ({ ok: true, result }) as const,
            (err: unknown) => ({ ok: false, error: asTidemarkError(err) }) as const,
          )
          const lag = await replicationLag(repo, target)
          const base = { name: place.name, url: place.url, lag, durationMs: Date.now() - started }
          out.push(result.ok ? { ...base, ok: true, result: result.result } : { ...base, ok: false, error: { code: result.error.code, message: result.error.message } })
        } finally {
          await target.close()
        }
      }
      return out
    })
    const report = { data: { targets: reports }, text: reports.map((r) => line(r, formatBytes)).join('\n') }
    const failed = reports.filter((r) => !r.ok)
    if (failed.length === 0) return report
    printResult(ctx.stdout, report, ctx.json)
    const first = failed[0]!.error!
    throw new TidemarkError(first.code, `replication failed for ${failed.map((f) => f.name).join(', ')}: ${first.message}`)
  },
}
