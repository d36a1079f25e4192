import t from 'tap'
import { parseRenames, planRestore } from '../../src/engine/clickhouse/restore-plan.ts'
import { renameDatabaseDdl, renameDatabases } from '../../src/engine/clickhouse/ddl-rename.ts'
import { conflicts } from '../../src/engine/clickhouse/restore-preflight.ts'
import { judge } from '../../src/engine/clickhouse/restore-verify.ts'
import { undoSql } from '../../src/engine/clickhouse/restore.ts'
import { backupAt, type ChBackupSummary } from '../../src/engine/clickhouse/backup-catalog.ts'
import type { ChObject, ClickHouseManifest } from '../../src/engine/clickhouse/manifest.ts'
import type { TableInfo } from '../../src/engine/clickhouse/catalog.ts'

const table = (database: string, name: string, extra: Partial<TableInfo> = {}): TableInfo => ({
  database, name, engine: 'MergeTree', kind: 'table', ddl: `CREATE TABLE ${database}.${name} (x UInt8) ENGINE = MergeTree ORDER BY x`,
  mergeTree: true, partitionKey: '', hasData: true, dependsOn: [], columns: [{ name: 'x', type: 'UInt8', defaultKind: '', defaultExpression: '' }], ...extra,
})
const obj = (database: string, tbl: string, partitionId: string, rows: number, digest: string | null): ChObject => ({
  key: `k/${database}/${tbl}/${partitionId}`, size: 1, sha256: 's', rawSize: 10 * rows, codec: 'zstd', chunkSize: 1, chunks: 1,
  database, table: tbl, partitionId, rows, columns: ['x'], fingerprint: 'f', digest, tableIdentity: 'm1', writtenBy: 'b',
})

const manifest = {
  id: '20240101T000000Z-ch-0001', serverVersion: '18.16.1', endedAt: '2024-01-01T00:01:00.000Z',
  catalog: {
    databases: [{ name: 'ls', engine: 'Ordinary', ddl: 'CREATE DATABASE ls ENGINE = Ordinary' }, { name: 'other', engine: 'Ordinary', ddl: 'CREATE DATABASE other ENGINE = Ordinary' }],
    tables: [
      table('ls', 'runs'),
      table('ls', 'agg', { engine: 'AggregatingMergeTree' }),
      table('ls', 'mv', { kind: 'materialized-view', engine: 'MaterializedView', hasData: false, mergeTree: false, target: 'ls.agg', dependsOn: ['ls.agg', 'ls.runs'], ddl: 'CREATE MATERIALIZED VIEW ls.mv TO ls.agg (x UInt8) AS SELECT x FROM ls.runs', columns: [] }),
      table('ls', 'mi', { kind: 'materialized-view', engine: 'MaterializedView', hasData: false, mergeTree: false, target: 'ls..inner.mi', dependsOn: ['ls..inner.mi', 'ls.runs'], ddl: 'CREATE MATERIALIZED VIEW ls.mi (x UInt8) ENGINE = MergeTree ORDER BY x AS SELECT x FROM ls.runs', columns: [] }),
      table('ls', '.inner.mi', { innerOf: 'ls.mi' }),
      table('ls', 'v', { kind: 'view', engine: 'View', hasData: false, mergeTree: false, dependsOn: ['ls.runs'], ddl: 'CREATE VIEW ls.v (x UInt8) AS SELECT x FROM ls.runs', columns: [] }),
      table('other', 't', { engine: 'Log', mergeTree: false, ddl: 'CREATE TABLE other.t (x UInt8) ENGINE = Log' }),
    ],
  },
  objects: [obj('ls', 'runs', '1', 5, '10'), obj('ls', 'runs', '2', 7, '20'), obj('ls', '.inner.mi', 'all', 3, '1'), obj('other', 't', 'all', 2, null)],
} as unknown as ClickHouseManifest

t.test('everything: storage tables and data before views and MVs, inner data right after its MV', async (t) => {
  const plan = planRestore(manifest)
  t.same(plan.databases.map((d) => d.name), ['ls', 'other'])
  const steps = plan.steps.map((s) => (s.step === 'database' ? `db ${s.database}` : `${s.step} ${s.table}`))
  t.same(steps, [
    'db ls', 'db other',
    'create ls.agg', 'create ls.runs', 'create other.t',
    'data ls.agg', 'data ls.runs', 'data other.t',
    'create ls.mi', 'data ls..inner.mi', 'create ls.mv', 'create ls.v',
  ])
  t.same(plan.tables.get('ls.runs')?.expected, { rows: 12, digest: '30' })
  t.same(plan.tables.get('other.t')?.expected, { rows: 2, digest: null })
  t.same(plan.tables.get('ls.agg')?.expected, { rows: 0, digest: '0' }, 'a table without objects must end up empty')
})

t.test('--tables selects; an MV brings its inner table and an inner table its MV; a bare name is a database', async (t) => {
  const keys = (tables: string[]) => [...planRestore(manifest, { tables }).tables.keys()].sort()
  t.same(keys(['ls.runs']), ['ls.runs'])
  t.same(keys(['ls.mi']), ['ls..inner.mi', 'ls.mi'])
  t.same(keys(['ls..inner.mi']), ['ls..inner.mi', 'ls.mi'])
  t.same(keys(['other']), ['other.t'])
  t.same(keys(['ls.r*', 'other.t']), ['ls.runs', 'other.t'])
  t.same(planRestore(manifest, { tables: ['other.t'] }).databases.map((d) => d.name), ['other'], 'only the databases of the chosen tables')
  t.throws(() => planRestore(manifest, { tables: ['ls.runs', 'ls.nope'] }), { code: 'TM_ERR_RESTORE_UNKNOWN_TABLE', message: /"ls\.nope" names nothing in this backup; it holds ls\.runs, ls\.agg/ })
  t.throws(() => planRestore(manifest, { tables: ['nodb.*'] }), { code: 'TM_ERR_RESTORE_UNKNOWN_TABLE' })
})

t.test('--rename-db renames names, DDL, dependencies and inner tables', async (t) => {
  const plan = planRestore(manifest, { renames: new Map([['ls', 'copy']]) })
  t.same(plan.databases.map((d) => [d.name, d.ddl]), [['copy', 'CREATE DATABASE `copy` ENGINE = Ordinary'], ['other', 'CREATE DATABASE other ENGINE = Ordinary']])
  t.equal(plan.tables.get('copy.mv')?.info.ddl, 'CREATE MATERIALIZED VIEW `copy`.mv TO `copy`.agg (x UInt8) AS SELECT x FROM `copy`.runs')
  t.same(plan.tables.get('copy.mv')?.info.dependsOn, ['copy.agg', 'copy.runs'])
  t.equal(plan.tables.get('copy..inner.mi')?.info.innerOf, 'copy.mi')
  t.equal(plan.tables.get('copy..inner.mi')?.source, 'ls..inner.mi')
  t.equal(plan.tables.get('copy..inner.mi')?.objects.length, 1)
  t.ok(plan.steps.some((s) => s.step === 'data' && s.table === 'copy..inner.mi'))
})

t.test('renaming DDL text', async (t) => {
  const r = new Map([['ls', 'new db'], ['x', 'y']])
  const cases: [string, string][] = [
    ['CREATE TABLE ls.t (a UInt8) ENGINE = Log', 'CREATE TABLE `new db`.t (a UInt8) ENGINE = Log'],
    ['CREATE TABLE `ls`.`.inner.v` (a UInt8) ENGINE = Log', 'CREATE TABLE `new db`.`.inner.v` (a UInt8) ENGINE = Log'],
    ["CREATE VIEW ls.v AS SELECT 'ls.t', ls.t.a, 1.5 FROM ls.t JOIN other.u USING a -- ls.t", "CREATE VIEW `new db`.v AS SELECT 'ls.t', `new db`.t.a, 1.5 FROM `new db`.t JOIN other.u USING a -- ls.t"],
    ['CREATE TABLE ls.d AS ls.t ENGINE = Distributed(c, ls, t, rand())', 'CREATE TABLE `new db`.d AS `new db`.t ENGINE = Distributed(c, `new db`, t, rand())'],
    ["CREATE TABLE ls.d (a UInt8) ENGINE = Distributed(c, 'ls', 't')", "CREATE TABLE `new db`.d (a UInt8) ENGINE = Distributed(c, 'new db', 't')"],
    ['CREATE TABLE ls.b (a UInt8) ENGINE = Buffer(ls, t, 16, 10, 100, 10000, 1000000, 10000000, 100000000)', 'CREATE TABLE `new db`.b (a UInt8) ENGINE = Buffer(`new db`, t, 16, 10, 100, 10000, 1000000, 10000000, 100000000)'],
    ["CREATE DICTIONARY ls.dict (k UInt64, v String) PRIMARY KEY k SOURCE(CLICKHOUSE(DB 'ls' TABLE 't')) LAYOUT(FLAT()) LIFETIME(0)", "CREATE DICTIONARY `new db`.dict (k UInt64, v String) PRIMARY KEY k SOURCE(CLICKHOUSE(DB 'new db' TABLE 't')) LAYOUT(FLAT()) LIFETIME(0)"],
    ['CREATE TABLE other.t (ls UInt8, x String) ENGINE = Log', 'CREATE TABLE other.t (ls UInt8, x String) ENGINE = Log'],
  ]
  for (const [from, to] of cases) t.equal(renameDatabases(from, r), to, from)
  t.equal(renameDatabases('CREATE TABLE ls.t', new Map()), 'CREATE TABLE ls.t')
  t.equal(renameDatabaseDdl('CREATE DATABASE ls ENGINE = Ordinary', 'n'), 'CREATE DATABASE `n` ENGINE = Ordinary')
  t.equal(renameDatabaseDdl('CREATE DATABASE IF NOT EXISTS `ls`', 'n'), 'CREATE DATABASE IF NOT EXISTS `n`')
})

t.test('--rename-db pairs', async (t) => {
  t.same([...parseRenames(['a=b', ' c = d '])], [['a', 'b'], ['c', 'd']])
  t.throws(() => parseRenames(['a']), { code: 'TM_ERR_USAGE' })
  t.throws(() => parseRenames(['a=b', 'a=c']), { code: 'TM_ERR_USAGE' })
  t.throws(() => parseRenames(['a=c', 'b=c']), { code: 'TM_ERR_USAGE' })
})

t.test('conflicts: tables with rows, and existing MVs that would be fed the restored rows again', async (t) => {
  const plan = planRestore(manifest)
  const state = {
    databases: new Set(['ls']),
    existing: new Map([['ls.runs', { engine: 'MergeTree', rows: 0 }], ['ls.agg', { engine: 'AggregatingMergeTree', rows: 4 }]]),
    views: new Map([['ls.mv', ['ls.runs']], ['ls.other_mv', ['ls.unrelated']]]),
  }
  t.same(conflicts(plan, state).map((c) => c.table), ['ls.agg', 'ls.mv'])
  t.match(conflicts(plan, state)[1]?.reason, /would receive the restored rows a second time/)
  t.same(conflicts(plan, { ...state, existing: new Map([['ls.runs', { engine: 'MergeTree', rows: 0 }]]), views: new Map() }), [], 'existing empty tables are used as they are')
})

t.test('the table check', async (t) => {
  const p = { source: 'ls.t', info: table('ls', 't') }
  t.match(judge(p, { rows: 5, digest: '9' }, { rows: 5, digest: '9' }, true), { status: 'ok', digestCompared: true })
  t.match(judge(p, { rows: 5, digest: '9' }, { rows: 5, digest: '8' }, true), { status: 'mismatch' })
  t.match(judge(p, { rows: 5, digest: '9' }, { rows: 5, digest: '8' }, false), { status: 'ok', digestCompared: false }, 'another server version: rows only')
  t.match(judge(p, { rows: 5, digest: '9' }, { rows: 4, digest: '9' }, true), { status: 'mismatch' })
  t.match(judge({ ...p, info: table('ls', 't', { engine: 'ReplacingMergeTree' }) }, { rows: 5, digest: '9' }, { rows: 4, digest: '1' }, true), { status: 'merged' })
  t.match(judge({ ...p, info: table('ls', 't', { engine: 'ReplacingMergeTree' }) }, { rows: 5, digest: '9' }, { rows: 6, digest: '1' }, true), { status: 'mismatch' })
})

t.test('--at picks the latest restore point at or before the time', async (t) => {
  const b = (id: string, end: string) => ({ id, restorePoint: end }) as ChBackupSummary
  const list = [b('b2', '2024-01-02T00:00:00.000Z'), b('b1', '2024-01-01T00:00:00.000Z')]
  t.equal(backupAt(list, new Date('2024-01-01T12:00:00Z')).id, 'b1')
  t.equal(backupAt(list, new Date('2024-01-02T00:00:00Z')).id, 'b2', 'a restore point equal to the time counts')
  t.throws(() => backupAt(list, new Date('2023-12-31T00:00:00Z')), { code: 'TM_ERR_RESTORE_OUT_OF_WINDOW', message: /earliest restore point is 2024-01-01T00:00:00.000Z \(backup b1\)/ })
  t.throws(() => backupAt([], new Date()), { code: 'TM_ERR_RESTORE_NO_BACKUP' })
})

t.test('redoing a failed load: drop what it wrote, only in tables this restore created', async (t) => {
  const plan = planRestore(manifest, { renames: new Map([['ls', 'copy']]) })
  const runs = plan.tables.get('copy.runs')!
  const log = plan.tables.get('other.t')!
  t.equal(undoSql(runs, runs.objects[1]!, true), "ALTER TABLE `copy`.`runs` DROP PARTITION ID '2'")
  t.equal(undoSql(log, log.objects[0]!, true), 'TRUNCATE TABLE `other`.`t`')
  t.equal(undoSql(runs, runs.objects[1]!, false), undefined, 'a table that existed before is never cleaned up')
})
