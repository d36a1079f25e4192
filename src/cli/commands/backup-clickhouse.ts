/**
 * `tidemark backup clickhouse [--full]`: an incremental logical backup of the
 * configured ClickHouse server (only partitions whose fingerprint changed are
 * exported). Takes the writer lease. SIGTERM/SIGINT abort it: nothing is
 * committed, and what was uploaded is reused by the next backup.
 */
import type { ClickHouseManifest } from '../../engine/clickhouse/manifest.ts'
import { TidemarkError } from '../../errors.ts'
import type { Command } from '../command.ts'
import { REPO_OPTION } from '../options.ts'
import { waitForStop } from '../signals.ts'

/** What `--json` prints. */
export function chBackupData(m: ClickHouseManifest): Record<string, unknown> {
  return { id: m.id, method: m.method, full: m.full, startedAt: m.startedAt, endedAt: m.endedAt, restorePoint: m.endedAt, serverVersion: m.serverVersion, stats: m.stats }
}

/** The text rendering; `bytes` formats sizes. */
export function chBackupText(m: ClickHouseManifest, bytes: (n: number) => string): string {
  const s = m.stats
  const proofs = [
    s.partitionsReusedByDigest > 0 ? `${s.partitionsReusedByDigest} after a content digest` : '',
    (s.partitionsReusedAfterDeletes ?? 0) > 0 ? `${s.partitionsReusedAfterDeletes} after DELETE mutations that removed nothing` : '',
  ].filter(Boolean)
  const byDigest = proofs.length > 0 ? ` (${proofs.join(', ')})` : ''
  // Older manifests have no partitionsAppended.
  const deltas = (s.partitionsAppended ?? 0) > 0 ? ` (${s.partitionsAppended} as a delta of the rows added)` : ''
  return [
    `ClickHouse backup ${m.id} committed (${m.full ? 'full' : 'incremental'}, server ${m.serverVersion})`,
    `  partitions: ${s.partitionsTotal} total, ${s.partitionsExported} exported${deltas}, ${s.partitionsReused} reused${byDigest}`,
    `  rows: ${s.rows}; raw ${bytes(s.rawBytes)}, stored ${bytes(s.storedBytes)}; written now: raw ${bytes(s.exportedRawBytes)}, stored ${bytes(s.exportedStoredBytes)}`,
    `  duration ${(s.durationMs / 1000).toFixed(1)} s; restore point ${m.endedAt}`,
  ].join('\n')
}

/** `tidemark backup clickhouse`. */
export const backupClickHouseCommand: Command = {
  name: ['backup', 'clickhouse'],
  summary: 'take an incremental backup of ClickHouse with clickhouse.method (logical: changed partitions exported; parts: new parts stored; --full: all again)',
  usage: '[--full] [--repo <url>] [--json]',
  options: {
    full: { type: 'boolean', description: 'export every partition again (new objects), reuse nothing' },
    ...REPO_OPTION,
  },
  async run(ctx) {
    const config = await ctx.config()
    const log = (await ctx.logger()).child({ job: 'backup-clickhouse' })
    const { configuredClickHouse, perObjectPipeline, withClickHouse } = await import('../clickhouse.ts')
    const settings = configuredClickHouse(config)
    const { repoUrl, withRepository } = await import('../repo.ts')
    const { formatBytes } = await import('../targets.ts')
    const { backupWithMethod } = await import('../../engine/clickhouse/parts-method.ts')
    const stop = waitForStop(log)
    const ac = new AbortController()
    void stop.stopped.then((sig) => ac.abort(new TidemarkError('TM_ERR_ABORTED', `stopped by ${sig}`)))
    let lastLog = Date.now()
    try {
      const manifest = await withRepository(perObjectPipeline(config, 'backup'), await repoUrl(ctx), 'open', (repo) =>
        withClickHouse(settings, (driver) =>
          backupWithMethod({
            method: config.clickhouse.method, dataPath: config.clickhouse.dataPath, onChoice: (c) => log[config.clickhouse.method === 'logical' ? 'debug' : 'info']({ method: c.method }, `backup method ${c.method}: ${c.reason}`),
            driver, repo, url: settings.url, filter: config.clickhouse.databases, parallelism: config.clickhouse.parallelism, contentDigest: config.clickhouse.contentDigest, full: ctx.flag('full'), signal: ac.signal,
            onProgress: (p) => {
              if (Date.now() - lastLog < 5_000) return
              lastLog = Date.now()
              log.info({ progress: p }, `${p.unitsDone}/${p.unitsTotal} partitions, ${formatBytes(p.bytesDone)} of ~${formatBytes(p.bytesTotal)} exported`)
            },
          }),
        ),
      )
      // A parts manifest has every field these renderings read; its `method` says which ran.
      return { data: chBackupData(manifest as ClickHouseManifest), text: chBackupText(manifest as ClickHouseManifest, formatBytes) }
    } finally {
      stop.dispose()
    }
  },
}
