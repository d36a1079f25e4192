import t from 'tap'
import { startClickHouse } from '../harness/clickhouse.ts'
import { driverFor, tableDigests, testRepository } from './backup-helpers.ts'
import { backupClickHouse } from '../../src/engine/clickhouse/backup.ts'
import { restoreClickHouse } from '../../src/engine/clickhouse/restore.ts'
import { listAll } from '../../src/sinks/sink.ts'

const source = await startClickHouse(t)
const src = driverFor(t, source)
const { repo } = await testRepository(t)

await src.command('CREATE DATABASE ls')
await src.command('CREATE TABLE ls.runs (d Date, id UInt64, s String) ENGINE = MergeTree PARTITION BY d ORDER BY id')
await src.command("INSERT INTO ls.runs SELECT toDate('2024-01-01') + number % 20, number, concat(toString(number), '-', toString(number * 7), '-', toString(number * 13)) FROM numbers(40000)")

async function keys(prefix: string): Promise<string[]> {
  const out: string[] = []
  for await (const o of listAll(repo.sink, prefix)) out.push(o.key)
  return out
}

t.test('ClickHouse killed mid-backup: clear error, no manifest; the next backup reuses what was uploaded', async (t) => {
  let killed: Promise<void> | undefined
  const failed = backupClickHouse({
    driver: src, repo, url: source.url, parallelism: 1,
    onProgress: (p) => {
      if (p.unitsDone === 5 && !killed) killed = source.kill()
    },
  })
  await t.rejects(failed, { code: 'TM_ERR_CLICKHOUSE_UNREACHABLE', message: /^ClickHouse backup \S+ failed, nothing was committed; the \d+ partitions uploaded before the failure are recorded and the next backup reuses them: cannot reach ClickHouse/ })
  await killed
  t.same(await repo.listManifestIds('clickhouse'), [], 'no manifest')
  t.equal((await keys('journal/clickhouse/')).length, 1, 'a journal of the failed backup')
  t.same(await keys('locks/'), [], 'the lease was released')

  await source.restart()
  const m = await backupClickHouse({ driver: src, repo, url: source.url, parallelism: 2 })
  t.ok(m.stats.partitionsReused >= 5, `reused ${m.stats.partitionsReused} partitions uploaded by the failed backup`)
  t.equal(m.stats.partitionsReused + m.stats.partitionsExported, 20)
  t.equal((await keys('journal/clickhouse/')).length, 1, 'the failed backup’s journal stays for prune to remove; the new backup left none')

  // The reused objects are complete: a restore of the new backup is exact.
  const report = await restoreClickHouse({ driver: src, repo, manifest: m, parallelism: 2, selection: { renames: new Map([['ls', 'check_db']]) } })
  t.ok(report.ok)
  t.same((await tableDigests(src, ['check_db']))['check_db.runs'], (await tableDigests(src, ['ls']))['ls.runs'])
})

t.test('parts merged or dropped between reading them and exporting: the export reads the partition again', async (t) => {
  const { discover } = await import('../../src/engine/clickhouse/discovery.ts')
  const { readPartitions } = await import('../../src/engine/clickhouse/partitions.ts')
  const { partitionUnits } = await import('../../src/engine/clickhouse/backup-plan.ts')
  const { exportUnit } = await import('../../src/engine/clickhouse/export-unit.ts')
  await src.command('CREATE TABLE ls.m (d Date, k UInt64) ENGINE = MergeTree PARTITION BY d ORDER BY k')
  for (let i = 0; i < 3; i++) await src.command(`INSERT INTO ls.m SELECT toDate('2024-02-01') + number % 2, number + ${i * 1000} FROM numbers(100)`)
  const table = (await discover(src, { include: ['ls.m'], exclude: [] })).tables[0]!
  const stale = partitionUnits(table, 'm1', await readPartitions(src, 'ls', 'm', table.columns))
  t.equal(stale[0]?.parts?.length, 3)
  await src.command('OPTIMIZE TABLE ls.m FINAL')
  await src.command("ALTER TABLE ls.m DROP PARTITION '2024-02-02'")
  const ctx = { driver: src, repo, backupId: '20240101T000000Z-ch-0000', signal: new AbortController().signal, onBytes: () => undefined }
  const merged = await exportUnit(ctx, table, stale[0]!)
  t.match(merged, { rows: 150, fingerprint: stale[0]!.fingerprint }, 'all rows of the merged partition, same fingerprint')
  t.equal(await exportUnit(ctx, table, stale[1]!), undefined, 'a partition dropped meanwhile leaves the backup')
})
