import t from 'tap'
import { startClickHouse } from '../harness/clickhouse.ts'
import { LOCAL_CLUSTER } from '../harness/clickhouse-config.ts'
import { createHttpDriver } from '../../src/engine/clickhouse/http-driver.ts'
import { discover } from '../../src/engine/clickhouse/discovery.ts'
import { restoreOrder } from '../../src/engine/clickhouse/restore-order.ts'
import { digestSql, exportSql, insertNativeSql } from '../../src/engine/clickhouse/export-sql.ts'
import { tableKey, type TableInfo } from '../../src/engine/clickhouse/catalog.ts'
import type { ClickHouseDriver } from '../../src/engine/clickhouse/driver.ts'

const SCHEMA = [
  'CREATE DATABASE ls',
  'CREATE DATABASE ls_scratch',
  'CREATE DATABASE other',
  'CREATE TABLE ls.runs (d Date, id UInt64, project String, tokens UInt32) ENGINE = MergeTree PARTITION BY toYYYYMMDD(d) ORDER BY id',
  'CREATE TABLE ls.feedback (d Date, id UInt64, score Float64, ver UInt32) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMM(d) ORDER BY id',
  'CREATE TABLE ls.sums (project String, tokens UInt64) ENGINE = SummingMergeTree ORDER BY project',
  'CREATE TABLE ls.agg (d Date, project String, tokens AggregateFunction(sum, UInt32), n AggregateFunction(count)) ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(d) ORDER BY (d, project)',
  'CREATE MATERIALIZED VIEW ls.mv_agg TO ls.agg AS SELECT d, project, sumState(tokens) AS tokens, countState() AS n FROM ls.runs GROUP BY d, project',
  'CREATE MATERIALIZED VIEW ls.mv_inner ENGINE = SummingMergeTree ORDER BY project AS SELECT project, toUInt64(tokens) AS tokens FROM ls.runs',
  "CREATE VIEW ls.v AS SELECT project, count() AS n FROM ls.runs WHERE project != 'FROM ls.fake' GROUP BY project",
  'CREATE TABLE ls.lg (k String, v String) ENGINE = Log',
  `CREATE TABLE ls.dist AS ls.runs ENGINE = Distributed(${LOCAL_CLUSTER}, ls, runs, rand())`,
  'CREATE TABLE ls_scratch.tmp (x UInt8) ENGINE = Log',
  'CREATE TABLE other.t (x UInt8) ENGINE = Log',
]

const DATA = [
  "INSERT INTO ls.runs SELECT toDate('2024-03-01') + number % 4, number, concat('p', toString(number % 3)), number % 100 FROM numbers(2000)",
  "INSERT INTO ls.runs SELECT toDate('2024-03-02'), 10000 + number, 'p9', 7 FROM numbers(10)",
  "INSERT INTO ls.feedback SELECT toDate('2024-03-01') + number % 40, number % 50, number / 7, number FROM numbers(300)",
  "INSERT INTO ls.sums VALUES ('a', 1), ('b', 2), ('a', 3)",
  "INSERT INTO ls.lg VALUES ('k1', 'v1'), ('k2', 'v2')",
]

const ch = await startClickHouse(t)
const driver = createHttpDriver({ url: ch.url, user: ch.user, password: ch.password, requestTimeoutMs: 30_000 })
t.teardown(() => driver.close())
for (const sql of [...SCHEMA, ...DATA]) await driver.command(sql)

const catalog = await discover(driver, { include: ['ls*', 'other.t'], exclude: ['ls_scratch'] })
const byName = new Map(catalog.tables.map((x) => [tableKey(x.database, x.name), x]))
const get = (key: string) => byName.get(key) as TableInfo

t.test('databases and tables selected by patterns; system databases never', async (t) => {
  t.same(catalog.databases.map((d) => d.name), ['ls', 'other'])
  t.match(catalog.databases[0]?.ddl, /^CREATE DATABASE ls/)
  t.same([...byName.keys()].sort(), ['ls..inner.mv_inner', 'ls.agg', 'ls.dist', 'ls.feedback', 'ls.lg', 'ls.mv_agg', 'ls.mv_inner', 'ls.runs', 'ls.sums', 'ls.v', 'other.t'])
  t.match(catalog.serverVersion, /^\d+\./)
  const all = await discover(driver)
  t.ok(all.databases.some((d) => d.name === 'default'), 'no patterns: every user database')
  t.notOk(all.databases.some((d) => d.name === 'system'))
})

t.test('engines, kinds, partition keys, DDL, columns', async (t) => {
  const shape = (k: string) => {
    const x = get(k)
    return [x.engine, x.kind, x.mergeTree, x.partitionKey, x.hasData]
  }
  t.same(shape('ls.runs'), ['MergeTree', 'table', true, 'toYYYYMMDD(d)', true])
  t.same(shape('ls.feedback'), ['ReplacingMergeTree', 'table', true, 'toYYYYMM(d)', true])
  t.same(shape('ls.sums'), ['SummingMergeTree', 'table', true, '', true], 'not partitioned')
  t.same(shape('ls.agg'), ['AggregatingMergeTree', 'table', true, 'toYYYYMM(d)', true])
  t.same(shape('ls.lg'), ['Log', 'table', false, '', true])
  t.same(shape('ls.v'), ['View', 'view', false, '', false])
  t.same(shape('ls.mv_agg'), ['MaterializedView', 'materialized-view', false, '', false])
  t.same(shape('ls.dist'), ['Distributed', 'distributed', false, '', false])
  t.same(shape('ls..inner.mv_inner'), ['SummingMergeTree', 'table', true, '', true])
  t.match(get('ls.runs').ddl, /^CREATE TABLE ls\.runs .*ENGINE = MergeTree PARTITION BY toYYYYMMDD\(d\)/)
  t.same(get('ls.runs').columns.map((c) => `${c.name} ${c.type}`), ['d Date', 'id UInt64', 'project String', 'tokens UInt32'])
})

t.test('dependencies: MV sources and targets, inner tables, view sources, Distributed destination', async (t) => {
  t.equal(get('ls.mv_agg').target, 'ls.agg')
  t.same(get('ls.mv_agg').dependsOn, ['ls.agg', 'ls.runs'])
  t.equal(get('ls.mv_inner').target, 'ls..inner.mv_inner')
  t.same(get('ls.mv_inner').dependsOn, ['ls..inner.mv_inner', 'ls.runs'])
  t.equal(get('ls..inner.mv_inner').innerOf, 'ls.mv_inner')
  t.same(get('ls.v').dependsOn, ['ls.runs'], 'a name inside a string literal is not a dependency')
  t.same(get('ls.dist').dependsOn, ['ls.runs'])
  t.same(get('ls.runs').dependsOn, [])
})

async function copyTable(from: ClickHouseDriver, to: ClickHouseDriver, table: TableInfo): Promise<void> {
  const body = await from.queryStream(exportSql(table), 'Native')
  await to.insertStream(insertNativeSql(table), body, { settings: { insert_deduplicate: 0 } })
}

t.test('restoreOrder replayed on a second server rebuilds everything without double counting', async (t) => {
  const target = await startClickHouse(t)
  const td = createHttpDriver({ url: target.url, user: target.user, password: target.password, requestTimeoutMs: 30_000 })
  t.teardown(() => td.close())
  const steps = restoreOrder(catalog)
  const position = (s: string) => steps.findIndex((x) => (x.step === 'database' ? `db ${x.database}` : `${x.step} ${x.table}`) === s)
  t.ok(position('data ls.runs') < position('create ls.mv_agg'), 'the MV exists only after its source is loaded')
  t.ok(position('create ls.mv_inner') < position('data ls..inner.mv_inner'), 'the inner table is loaded after its MV creates it')
  t.equal(position('create ls.dist'), steps.length - 1, 'Distributed last')
  for (const step of steps) {
    if (step.step === 'database') await td.command((catalog.databases.find((d) => d.name === step.database) as { ddl: string }).ddl)
    else if (step.step === 'create') await td.command(get(step.table).ddl)
    else await copyTable(driver, td, get(step.table))
  }
  for (const table of catalog.tables.filter((x) => x.hasData)) {
    const [a] = await driver.queryRows(digestSql(table))
    const [b] = await td.queryRows(digestSql(table))
    t.same(b, a, `${table.database}.${table.name}: same rows and digest`)
  }
  const aggSql = 'SELECT project, sumMerge(tokens) AS tokens, countMerge(n) AS n FROM ls.agg GROUP BY project ORDER BY project'
  t.same(await td.queryRows(aggSql), await driver.queryRows(aggSql), 'aggregated target equals the original')
  t.same(await td.queryRows('SELECT count() AS n FROM ls.dist'), [{ n: '2010' }], 'the Distributed table reads the restored rows')
})
