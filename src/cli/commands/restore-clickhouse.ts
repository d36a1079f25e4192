/**
 * `tidemark restore clickhouse (--backup <id> | --at <time>)`: restores a
 * ClickHouse logical backup into the configured server or `--target-url`,
 * all of it or `--tables`, optionally into renamed databases, then checks
 * every table's rows and content digest. Exits 1 (TM_ERR_VERIFY_FAILED) after
 * printing the report when a table does not match. Takes no lease: it only
 * reads the repository.
 */
import type { RestoreReport } from '../../engine/clickhouse/restore.ts'
import { TidemarkError } from '../../errors.ts'
import type { Command, CommandContext } from '../command.ts'
import { REPO_OPTION } from '../options.ts'
import { printResult } from '../output.ts'
import { usageError } from '../parse.ts'

/** The text rendering: one line per table, then a summary. */
export function chRestoreText(r: RestoreReport, bytes: (n: number) => string): string {
  const lines = [`restored ClickHouse backup ${r.backupId} (restore point ${r.restorePoint})`]
  if (r.existing.length > 0) lines.push(`  used existing: ${r.existing.join(', ')}`)
  for (const c of r.tables) {
    const digest = c.digestCompared ? (c.digest === c.expectedDigest ? 'digest ok' : 'DIGEST DIFFERS') : 'digest not compared'
    const mark = c.status === 'ok' ? 'ok      ' : c.status === 'merged' ? 'merged  ' : 'MISMATCH'
    lines.push(`  ${mark}  ${c.table}  ${c.rows}/${c.expectedRows} rows, ${digest}${c.status === 'merged' ? ' (this engine merges rows in the background)' : ''}`)
  }
  lines.push(`${r.objectsLoaded} partitions, ${r.rowsLoaded} rows, ${bytes(r.rawBytesLoaded)} loaded in ${(r.durationMs / 1000).toFixed(1)} s: ${r.ok ? 'every table matches the backup' : 'some tables do NOT match the backup'}`)
  return lines.join('\n')
}

/** Every value of a string option that may be repeated and comma-separated. */
function listOption(ctx: CommandContext, name: string): string[] {
  const v = ctx.values[name]
  const all = Array.isArray(v) ? v : v === undefined ? [] : [v]
  return all.filter((x): x is string => typeof x === 'string').flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x !== '')
}

/** `--at`: an ISO 8601 time with an offset, or `latest`. */
function parseAt(text: string): Date {
  if (text.trim() === 'latest') return new Date(8.64e15)
  const ms = Date.parse(text)
  if (!/(Z|[+-]\d\d:?\d\d)$/i.test(text.trim()) || Number.isNaN(ms)) {
    throw new TidemarkError('TM_ERR_USAGE', `--at expects an ISO 8601 time with an offset (2026-11-28T09:40:00Z) or latest, got "${text}"`)
  }
  return new Date(ms)
}

/** `tidemark restore clickhouse`. */
export const restoreClickHouseCommand: Command = {
  name: ['restore', 'clickhouse'],
  summary: 'restore a ClickHouse backup (by id, or the latest one ending at or before a time) and check every table',
  usage: '(--backup <id> | --at <time|latest>) [--target-url <url>] [--tables <db.t,…>] [--rename-db <old=new>] [--allow-non-empty] [--target-data-path <dir>] [--repo <url>] [--json]',
  options: {
    backup: { type: 'string', arg: '<id>', description: 'the backup to restore (see `tidemark list --source clickhouse`)' },
    at: { type: 'string', arg: '<time|latest>', description: 'restore the latest backup whose restore point (end time) is at or before this ISO 8601 time' },
    'target-url': { type: 'string', arg: '<url>', description: 'server to restore into, http(s)://[user:password@]host:port (default: the configured one)' },
    tables: { type: 'string', multiple: true, arg: '<db.t,…>', description: 'only these tables (names or patterns as in the backup; a bare name means a whole database)' },
    'rename-db': { type: 'string', multiple: true, arg: '<old=new>', description: 'restore database old as new (repeatable)' },
    'allow-non-empty': { type: 'boolean', description: 'load into tables that already hold rows (adds to them)' },
    'target-data-path': { type: 'string', arg: '<dir>', description: 'parts backups: the target server\'s data path (its <path>) as mounted here; parts are written into its detached/ directories' },
    ...REPO_OPTION,
  },
  async run(ctx) {
    const id = ctx.string('backup')
    const at = ctx.string('at')
    if ((id === undefined) === (at === undefined)) throw usageError('give exactly one of --backup <id> or --at <time>', restoreClickHouseCommand)
    const when = at === undefined ? undefined : parseAt(at)
    const config = await ctx.config()
    const log = (await ctx.logger()).child({ job: 'restore-clickhouse' })
    let lastLog = Date.now()
    const { parseRenames } = await import('../../engine/clickhouse/restore-plan.ts')
    const renames = parseRenames(listOption(ctx, 'rename-db'))
    const { clickhouseAt, configuredClickHouse, perObjectPipeline, withClickHouse } = await import('../clickhouse.ts')
    const targetUrl = ctx.string('target-url')
    const settings = targetUrl === undefined ? configuredClickHouse(config) : clickhouseAt(config, targetUrl)
    const { repoUrl, withRepository } = await import('../repo.ts')
    const { formatBytes } = await import('../targets.ts')
    const { backupAt, listClickHouseBackups, readClickHouseManifest } = await import('../../engine/clickhouse/backup-catalog.ts')
    const { restoreClickHouse } = await import('../../engine/clickhouse/restore.ts')
    const report = await withRepository(perObjectPipeline(config, 'restore'), await repoUrl(ctx), 'open', async (repo) => {
      const chosen = id ?? backupAt(await listClickHouseBackups(repo), when as Date).id
      const { readPartsManifest, restoreClickHouseParts } = await import('../../engine/clickhouse/parts-restore.ts')
      const parts = await readPartsManifest(repo, chosen)
      if (parts) {
        return await withClickHouse(settings, (driver) =>
          restoreClickHouseParts({ driver, repo, manifest: parts, targetDataPath: ctx.string('target-data-path'), selection: { tables: listOption(ctx, 'tables'), renames }, allowNonEmpty: ctx.flag('allow-non-empty'), parallelism: config.clickhouse.parallelism }),
        )
      }
      const manifest = await readClickHouseManifest(repo, chosen)
      return await withClickHouse(settings, (driver) =>
        restoreClickHouse({
          driver, repo, manifest, selection: { tables: listOption(ctx, 'tables'), renames }, allowNonEmpty: ctx.flag('allow-non-empty'), parallelism: config.clickhouse.parallelism,
          onProgress: (p) => {
            if (Date.now() - lastLog < 5_000) return
            lastLog = Date.now()
            log.info({ progress: p }, `${p.unitsDone}/${p.unitsTotal} partitions, ${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)} loaded`)
          },
        }),
      )
    })
    const result = { data: report, text: chRestoreText(report, formatBytes) }
    if (report.ok) return result
    printResult(ctx.stdout, result, ctx.json)
    const bad = report.tables.filter((x) => x.status === 'mismatch').map((x) => x.table)
    throw new TidemarkError('TM_ERR_VERIFY_FAILED', `the restored data does not match backup ${report.backupId} in ${bad.join(', ')}: check the target and restore again`)
  },
}
