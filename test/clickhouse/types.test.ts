import t from 'tap'
import { startClickHouse } from '../harness/clickhouse.ts'
import { createHttpDriver } from '../../src/engine/clickhouse/http-driver.ts'
import { probeCapabilities } from '../../src/engine/clickhouse/capabilities.ts'
import { discover } from '../../src/engine/clickhouse/discovery.ts'
import { readPartitions } from '../../src/engine/clickhouse/partitions.ts'
import { digestSql, exportSql, insertNativeSql, partitionPredicate } from '../../src/engine/clickhouse/export-sql.ts'
import type { TableInfo } from '../../src/engine/clickhouse/catalog.ts'

const [source, target] = await Promise.all([startClickHouse(t), startClickHouse(t)])
const src = createHttpDriver({ url: source.url, user: source.user, password: source.password, requestTimeoutMs: 30_000 })
const dst = createHttpDriver({ url: target.url, user: target.user, password: target.password, requestTimeoutMs: 30_000 })
t.teardown(() => Promise.all([src.close(), dst.close()]))
const caps = await probeCapabilities(src)

t.test('capabilities match what the server really does', async (t) => {
  t.equal(caps.version, await src.serverVersion())
  t.equal(caps.createTableQuery, true)
  t.not(caps.lowCardinality, 'absent', 'LowCardinality exists on every server tidemark supports')
  const lc = 'CREATE TABLE default.lc_probe (s LowCardinality(String)) ENGINE = Log'
  if (caps.lowCardinality === 'experimental') await t.rejects(src.command(lc), { code: 'TM_ERR_CLICKHOUSE_QUERY' }, 'needs the experimental switch')
  await src.command('DROP TABLE IF EXISTS default.lc_probe')
  await src.command(lc, { settings: caps.createSettings })
  await src.command('CREATE TABLE default.prune (p UInt8, x UInt8) ENGINE = MergeTree PARTITION BY p ORDER BY x SETTINGS index_granularity = 1')
  await src.command('INSERT INTO default.prune SELECT number % 2, number FROM numbers(10)')
  const pruned = src.queryRows("SELECT count() FROM default.prune WHERE _partition_id = '1'", undefined, { settings: { max_rows_to_read: 5 } })
  if (caps.partitionIdPrunes) await t.resolves(pruned)
  else await t.rejects(pruned, { code: 'TM_ERR_CLICKHOUSE_QUERY', message: /Code: 158/ }, '_partition_id alone reads every part on this server')
})

const TYPES = `(
  d Date, id UInt32, n Nullable(String), a Array(Int32), an Array(Nullable(Int8)), e Enum8('a' = 1, 'b\\'' = -2),
  u UUID, dec Decimal(18, 4), dt DateTime, fs FixedString(4), lc LowCardinality(String), tu Tuple(Int32, String),
  bin String, f Float64)`
const ROWS = `INSERT INTO types.all SELECT
  toDate('2024-05-01') + number % 3, number,
  if(number % 4 = 0, NULL, concat('n', toString(number))),
  range(number % 4), [NULL, toInt8(number % 100)], if(number % 2 = 0, 'a', 'b\\''),
  toUUID('01234567-89ab-cdef-0123-456789abcdef'), toDecimal64(number, 4) / 7 - 3, toDateTime('2024-05-01 12:34:56') + number,
  toFixedString(if(number % 2 = 0, 'ab', 'abcd'), 4), concat('lc', toString(number % 5)), (toInt32(number) - 50, 'q''t\\\\'),
  concat(unhex('000102030405060708090A0B0C0D0E0F7F8081FEFF'), toString(number), '\\t\\n\\'"\`'), number / 3
FROM numbers(300)`

t.test('every listed type round-trips byte-exactly through Native, partition by partition', async (t) => {
  for (const d of [src, dst]) {
    await d.command('CREATE DATABASE types')
    await d.command(`CREATE TABLE types.all ${TYPES} ENGINE = MergeTree PARTITION BY d ORDER BY id`, { settings: caps.createSettings })
  }
  await src.command(ROWS)
  const catalog = await discover(src, { include: ['types'], exclude: [] })
  const info = catalog.tables.find((x) => x.name === 'all') as TableInfo
  const partitions = await readPartitions(src, 'types', 'all', info.columns)
  t.equal(partitions.length, 3)
  for (const p of partitions) {
    const pred = partitionPredicate({ partitionId: p.partitionId, parts: p.parts })
    await dst.insertStream(insertNativeSql(info), await src.queryStream(exportSql(info, pred), 'Native'), { settings: { insert_deduplicate: 0 } })
    t.same((await dst.queryRows(digestSql(info, partitionPredicate({ partitionId: p.partitionId }))))[0], (await src.queryRows(digestSql(info, pred)))[0], `partition ${p.partition}: digest`)
  }
  const dump = async (d: typeof src) => {
    const chunks: Buffer[] = []
    for await (const c of await d.queryStream('SELECT * FROM types.all ORDER BY id', 'TabSeparated')) chunks.push(c as Buffer)
    return Buffer.concat(chunks)
  }
  const [a, b] = [await dump(src), await dump(dst)]
  t.ok(a.length > 10_000)
  t.ok(a.equals(b), 'every value identical (TabSeparated dump of both servers)')
  t.ok(a.includes(Buffer.from([0x80, 0x81, 0xfe, 0xff])), 'bytes that are not UTF-8 survived')
})

t.test('the digest notices a one-value change in any column', async (t) => {
  const info = (await discover(src, { include: ['types.all'], exclude: [] })).tables[0] as TableInfo
  const base = (await dst.queryRows(digestSql(info)))[0]
  const changes: Record<string, string> = {
    n: "'x'", a: '[9]', an: '[3]', e: "'a'", u: "toUUID('00000000-0000-0000-0000-000000000001')", dec: '1', dt: 'toDateTime(0)',
    fs: "'zz'", lc: "'other'", tu: "(1, 'x')", bin: "'x'", f: '0.5',
  }
  await dst.command('CREATE TABLE types.probe AS types.all', { settings: caps.createSettings })
  for (const [column, value] of Object.entries(changes)) {
    // Row id = 1 gets a different value in one column; every other value is copied as it is.
    const select = info.columns.map((c) => (c.name === column ? `CAST(${value} AS ${c.type}) AS ${c.name}` : c.name)).join(', ')
    await dst.command('TRUNCATE TABLE types.probe')
    await dst.command('INSERT INTO types.probe SELECT * FROM types.all WHERE id != 1')
    await dst.command(`INSERT INTO types.probe SELECT ${select} FROM types.all WHERE id = 1`)
    const [same] = await dst.queryRows<{ n: string }>(`SELECT count() AS n FROM types.probe WHERE id != 1`)
    t.equal(same?.n, '299')
    t.notSame((await dst.queryRows(digestSql({ ...info, name: 'probe' })))[0], base, `${column} = ${value}`)
  }
})
