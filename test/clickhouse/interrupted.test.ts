import t from 'tap'
import { pino } from 'pino'
import { startClickHouse } from '../harness/clickhouse.ts'
import { driverFor, tableDigests, testRepository } from './backup-helpers.ts'
import { backupClickHouse } from '../../src/engine/clickhouse/backup.ts'
import { restoreClickHouse } from '../../src/engine/clickhouse/restore.ts'
import { listAll } from '../../src/sinks/sink.ts'
import type { ClickHouseDriver } from '../../src/engine/clickhouse/driver.ts'

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
  const ctx = { driver: src, repo, backupId: '20240101T000000Z-ch-0000', signal: new AbortController().signal, contentDigest: false, onBytes: () => undefined }
  const merged = await exportUnit(ctx, table, stale[0]!)
  t.match(merged, { rows: 150, fingerprint: stale[0]!.fingerprint }, 'all rows of the merged partition, same fingerprint')
  t.equal(await exportUnit(ctx, table, stale[1]!), undefined, 'a partition dropped meanwhile leaves the backup')
})

/**
 * ls.big: one partition of 1.5 M rows. The server commits the first 1 048 576 rows of a load
 * (min_insert_block_size_rows) as a part before the rest arrives, so a load cut after that
 * leaves rows behind.
 */
let big: Promise<void> | undefined
function bigTable(): Promise<void> {
  big ??= (async () => {
    await src.command('CREATE TABLE ls.big (d Date, id UInt64, s String) ENGINE = MergeTree PARTITION BY d ORDER BY id')
    await src.command("INSERT INTO ls.big SELECT toDate('2024-03-01'), number, toString(number) FROM numbers(1500000)")
  })()
  return big
}

/** A driver whose requests pass a proxy that resets the first connection once an INSERT on it has sent 24 MiB. */
async function resettingDriver(t: { teardown(fn: () => unknown): void }): Promise<{ driver: ClickHouseDriver; resets: () => number }> {
  const { createServer, connect } = await import('node:net')
  const { createHttpDriver } = await import('../../src/engine/clickhouse/http-driver.ts')
  let resets = 0
  const proxy = createServer((client) => {
    const upstream = connect(source.httpPort, '127.0.0.1')
    let insertBytes = -1
    client.on('data', (b: Buffer) => {
      if (insertBytes < 0 && b.includes('INSERT')) insertBytes = 0
      if (insertBytes >= 0) insertBytes += b.length
      if (resets === 0 && insertBytes > 24 * 1024 * 1024) {
        resets++
        upstream.destroy()
        client.resetAndDestroy()
        return
      }
      upstream.write(b)
    })
    upstream.on('data', (b: Buffer) => client.write(b))
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      a.on('error', () => b.destroy())
      a.on('close', () => b.destroy())
    }
  })
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => proxy.close(() => r())))
  const port = (proxy.address() as { port: number }).port
  const driver = createHttpDriver({ url: `http://127.0.0.1:${port}`, user: source.user, password: source.password, requestTimeoutMs: 30_000 })
  t.teardown(() => driver.close())
  return { driver, resets: () => resets }
}

t.test('a connection reset during a partition load: the partition is dropped and loaded again, no row twice', async (t) => {
  await bigTable()
  const { driver: viaProxy, resets } = await resettingDriver(t)
  const m = await backupClickHouse({ driver: src, repo, url: source.url, parallelism: 2, full: true })
  const report = await restoreClickHouse({ driver: viaProxy, repo, manifest: m, parallelism: 2, selection: { tables: ['ls.big'], renames: new Map([['ls', 'reset_db']]) } })
  t.equal(resets(), 1, 'one load was cut off mid-INSERT')
  t.ok(report.ok, 'the restore checks pass')
  const [got, want] = [await tableDigests(src, ['reset_db']), await tableDigests(src, ['ls'])]
  t.same(got['reset_db.big'], want['ls.big'], 'rows and digest equal the source: the cut partition was loaded exactly once')
})

t.test('a connection reset while loading a delta: the base is dropped with it and both are loaded again', async (t) => {
  await src.command('CREATE TABLE ls.grows (d Date, id UInt64, s String) ENGINE = MergeTree PARTITION BY d ORDER BY id')
  // A merge of the base part with the new one would make the partition whole again: no delta to test.
  await src.command('SYSTEM STOP MERGES ls.grows')
  await src.command("INSERT INTO ls.grows SELECT toDate('2024-04-01'), number, toString(number) FROM numbers(100000)")
  await backupClickHouse({ driver: src, repo, url: source.url, parallelism: 2 })
  await src.command("INSERT INTO ls.grows SELECT toDate('2024-04-01'), 10000000 + number, toString(number) FROM numbers(1500000)")
  const m = await backupClickHouse({ driver: src, repo, url: source.url, parallelism: 2 })
  const objects = m.objects.filter((o) => o.table === 'grows')
  t.match(objects, [{ rows: 100000 }, { rows: 1500000, afterBlock: /^\d+$/ }], 'a small base and a delta larger than the cut-off point')
  const { driver: viaProxy, resets } = await resettingDriver(t)
  const report = await restoreClickHouse({ driver: viaProxy, repo, manifest: m, parallelism: 2, selection: { tables: ['ls.grows'], renames: new Map([['ls', 'reset_delta']]) } })
  t.equal(resets(), 1, 'the delta load was cut off, after the base had been loaded')
  t.ok(report.ok, 'the restore checks pass')
  const [got, want] = [await tableDigests(src, ['reset_delta']), await tableDigests(src, ['ls'])]
  t.same(got['reset_delta.grows'], want['ls.grows'], 'base and delta each loaded exactly once')
})

t.test('the server restarted during a restore: the loads wait for it, and every table is exact', async (t) => {
  await bigTable()
  const m = await backupClickHouse({ driver: src, repo, url: source.url, parallelism: 2, full: true })
  let outage: Promise<void> | undefined
  const lines: string[] = []
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) })
  const report = await restoreClickHouse({
    driver: src, repo, manifest: m, parallelism: 2, logger,
    selection: { tables: ['ls.big', 'ls.runs'], renames: new Map([['ls', 'restart_db']]) },
    onProgress: (p) => {
      // Killed while the 1.5 M-row partition and others are still loading; back after a second.
      if (p.unitsDone === 3 && !outage) outage = source.kill().then(() => new Promise((r) => setTimeout(r, 1000))).then(() => source.restart())
    },
  })
  await outage
  t.ok(outage, 'the server was killed mid-restore')
  const waits = lines.filter((l) => l.includes('its rows are removed and it is loaded again')).length
  t.ok(waits >= 1, `loads waited for the server (${waits} warnings)`)
  t.ok(report.ok, 'the restore checks pass')
  const [got, want] = [await tableDigests(src, ['restart_db']), await tableDigests(src, ['ls'])]
  t.same(got['restart_db.big'], want['ls.big'], 'the big partition loaded exactly once')
  t.same(got['restart_db.runs'], want['ls.runs'], 'every partition of runs loaded exactly once')
})
