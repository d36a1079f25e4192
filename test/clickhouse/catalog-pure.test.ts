import t from 'tap'
import { dictionarySource, engineArgs, engineDestination, materializedViewTarget, viewSources } from '../../src/engine/clickhouse/ddl-parse.ts'
import { compileFilter } from '../../src/engine/clickhouse/filters.ts'
import { kindOfEngine } from '../../src/engine/clickhouse/engines.ts'
import { restoreOrder, type RestoreStep } from '../../src/engine/clickhouse/restore-order.ts'
import type { TableInfo, TableKind } from '../../src/engine/clickhouse/catalog.ts'

t.test('view sources and MV targets from DDL', async (t) => {
  t.same(
    viewSources("CREATE VIEW db.v (k UInt32) AS SELECT k FROM db.a AS x INNER JOIN `o d`.`b.c` USING k WHERE k IN other AND s != 'FROM fake' AND k IN (SELECT k FROM numbers(3)) -- FROM commented", 'db'),
    ['db.a', 'o d.b.c', 'db.other'],
  )
  t.same(viewSources('CREATE VIEW db.v AS SELECT 1', 'db'), [])
  t.same(viewSources('CREATE VIEW db.v AS WITH x AS (SELECT 1) SELECT * FROM (SELECT * FROM t)', 'db'), ['db.t'], 'unqualified → own database; subqueries looked into')
  t.equal(materializedViewTarget('CREATE MATERIALIZED VIEW db.mv TO db2.agg (d Date) AS SELECT d FROM db.src', 'db'), 'db2.agg')
  t.equal(materializedViewTarget('CREATE MATERIALIZED VIEW db.mv TO agg AS SELECT 1', 'db'), 'db.agg')
  t.equal(materializedViewTarget("CREATE MATERIALIZED VIEW db.mv (k UInt32) ENGINE = MergeTree ORDER BY k TTL d TO DISK 'x' AS SELECT k FROM db.src", 'db'), undefined)
})

t.test('engine arguments and destinations', async (t) => {
  t.same(engineArgs("Distributed(tidemark_local, 'db', `t`, rand())"), ['tidemark_local', 'db', 't', 'rand()'])
  t.same(engineArgs('Log'), [])
  t.equal(engineDestination('Distributed', 'Distributed(c, currentDatabase(), src, rand())', 'own'), 'own.src')
  t.equal(engineDestination('Buffer', 'Buffer(db, dest, 16, 10, 100, 10000, 1000000, 10000000, 100000000)', 'own'), 'db.dest')
  t.equal(engineDestination('MergeTree', 'MergeTree ORDER BY k', 'own'), undefined)
  t.equal(dictionarySource("CREATE DICTIONARY db.d (k UInt64, v String) PRIMARY KEY k SOURCE(CLICKHOUSE(HOST 'localhost' PORT 9000 USER 'default' TABLE 'src' DB 'other')) LIFETIME(0) LAYOUT(FLAT())", 'db'), 'other.src')
})

t.test('engine kinds', async (t) => {
  const kinds: [string, TableKind][] = [['MergeTree', 'table'], ['ReplicatedReplacingMergeTree', 'table'], ['SharedMergeTree', 'table'], ['Log', 'table'], ['TinyLog', 'table'], ['Memory', 'table'],
    ['View', 'view'], ['MaterializedView', 'materialized-view'], ['Dictionary', 'dictionary'], ['Distributed', 'distributed'], ['Null', 'external'], ['Kafka', 'external'], ['Buffer', 'external'], ['Set', 'external']]
  for (const [engine, kind] of kinds) t.equal(kindOfEngine(engine), kind, engine)
})

t.test('include/exclude patterns', async (t) => {
  const all = compileFilter({ include: [], exclude: [] })
  t.ok(all.database('default'))
  t.notOk(all.database('system'))
  t.notOk(all.database('INFORMATION_SCHEMA'))
  t.notOk(all.table('information_schema', 'tables'))
  const f = compileFilter({ include: ['langsmith*', 'default.runs', 'default.feed?ack'], exclude: ['langsmith_tmp', '*.scratch_*'] })
  t.ok(f.database('langsmith'))
  t.ok(f.database('default'), 'a table pattern keeps its database')
  t.notOk(f.database('langsmith_tmp'))
  t.notOk(f.database('other'))
  t.ok(f.table('langsmith', 'anything'))
  t.ok(f.table('default', 'runs'))
  t.ok(f.table('default', 'feedback'))
  t.notOk(f.table('default', 'runs2'))
  t.notOk(f.table('langsmith', 'scratch_1'))
  t.notOk(f.table('langsmith_tmp', 'x'))
  t.notOk(compileFilter({ include: ['a.b'], exclude: [] }).table('axb', 'b'), 'dots are literal, not regex wildcards')
})

const tbl = (key: string, kind: TableKind, extra: Partial<TableInfo> = {}): TableInfo => {
  const [database, name] = key.split('/') as [string, string]
  return { database, name, engine: kind, kind, ddl: '', mergeTree: kind === 'table', partitionKey: '', hasData: kind === 'table', dependsOn: [], columns: [], ...extra }
}
const render = (steps: RestoreStep[]) => steps.map((s) => (s.step === 'database' ? `db ${s.database}` : `${s.step} ${s.table}`))

t.test('restoreOrder: databases, storage, data, then views in dependency order, Distributed last', async (t) => {
  const steps = restoreOrder({
    databases: [{ name: 'b', engine: 'Ordinary', ddl: '' }, { name: 'a', engine: 'Ordinary', ddl: '' }],
    tables: [
      tbl('a/dist', 'distributed', { dependsOn: ['a.src'] }),
      tbl('a/v2', 'view', { dependsOn: ['a.v1'] }),
      tbl('a/v1', 'view', { dependsOn: ['a.mv_inner'] }),
      tbl('a/mv_inner', 'materialized-view', { dependsOn: ['a.src', 'a..inner.mv_inner'], target: 'a..inner.mv_inner' }),
      tbl('a/.inner.mv_inner', 'table', { innerOf: 'a.mv_inner' }),
      tbl('a/mv_to', 'materialized-view', { dependsOn: ['a.src', 'b.agg'], target: 'b.agg' }),
      tbl('a/chained', 'materialized-view', { dependsOn: ['a..inner.mv_inner', 'b.agg2'], target: 'b.agg2' }),
      tbl('b/agg2', 'table'),
      tbl('b/agg', 'table'),
      tbl('a/src', 'table'),
      tbl('a/nul', 'external'),
      tbl('a/fromnull', 'materialized-view', { dependsOn: ['a.nul', 'a.src'], target: 'a.src' }),
      tbl('a/lg', 'table', { mergeTree: false }),
    ],
  })
  t.same(render(steps), [
    'db a', 'db b',
    'create a.lg', 'create a.src', 'create b.agg', 'create b.agg2',
    'data a.lg', 'data a.src', 'data b.agg', 'data b.agg2',
    'create a.mv_inner', 'data a..inner.mv_inner',
    'create a.chained', 'create a.mv_to', 'create a.nul', 'create a.fromnull', 'create a.v1', 'create a.v2',
    'create a.dist',
  ])
})

t.test('restoreOrder survives a dependency cycle', async (t) => {
  const steps = restoreOrder({ databases: [], tables: [tbl('d/x', 'view', { dependsOn: ['d.y'] }), tbl('d/y', 'view', { dependsOn: ['d.x'] })] })
  t.same(render(steps), ['create d.x', 'create d.y'])
})
