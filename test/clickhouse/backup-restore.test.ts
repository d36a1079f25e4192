import t from 'tap'
import { startClickHouse } from '../harness/clickhouse.ts'
import { driverFor, tableDigests, testRepository, tsv } from './backup-helpers.ts'
import { backupClickHouse } from '../../src/engine/clickhouse/backup.ts'
import { restoreClickHouse } from '../../src/engine/clickhouse/restore.ts'
import { probeCapabilities } from '../../src/engine/clickhouse/capabilities.ts'
import { createHttpDriver } from '../../src/engine/clickhouse/http-driver.ts'
import { backupAt, listClickHouseBackups, readClickHouseManifest } from '../../src/engine/clickhouse/backup-catalog.ts'
import { listAll } from '../../src/sinks/sink.ts'

const [source, target] = await Promise.all([startClickHouse(t), startClickHouse(t)])
const src = driverFor(t, source)
const dst = driverFor(t, target)
const caps = await probeCapabilities(src)
const { repo } = await testRepository(t)

const SCHEMA = [
  'CREATE DATABASE ls',
  'CREATE DATABASE other',
  `CREATE TABLE ls.types (d Date, id UInt32, n Nullable(String), a Array(Int32), e Enum8('a' = 1, 'b\\'' = -2), u UUID, dec Decimal(18, 4),
    dt DateTime, fs FixedString(4), lc LowCardinality(String), tu Tuple(Int32, String), bin String) ENGINE = MergeTree PARTITION BY d ORDER BY id`,
  'CREATE TABLE ls.runs (d Date, id UInt64, project String, tokens UInt32) ENGINE = MergeTree PARTITION BY d ORDER BY id',
  'CREATE TABLE ls.feedback (d Date, id UInt64, score Float64, ver UInt32) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMM(d) ORDER BY id',
  'CREATE TABLE ls.sums (project String, tokens UInt64) ENGINE = SummingMergeTree ORDER BY project',
  'CREATE TABLE ls.agg (d Date, project String, tokens AggregateFunction(sum, UInt32), n AggregateFunction(count)) ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(d) ORDER BY (d, project)',
  'CREATE MATERIALIZED VIEW ls.mv_agg TO ls.agg AS SELECT d, project, sumState(tokens) AS tokens, countState() AS n FROM ls.runs GROUP BY d, project',
  'CREATE MATERIALIZED VIEW ls.mv_inner ENGINE = SummingMergeTree ORDER BY project AS SELECT project, toUInt64(tokens) AS tokens FROM ls.runs',
  'CREATE VIEW ls.v AS SELECT project, count() AS n FROM ls.runs GROUP BY project',
  'CREATE TABLE ls.plain (id UInt64, s String) ENGINE = MergeTree ORDER BY id',
  'CREATE TABLE ls.lg (k String, v String) ENGINE = Log',
  'CREATE TABLE other.t (x UInt8) ENGINE = TinyLog',
]
const DATA = [
  `INSERT INTO ls.types SELECT toDate('2024-05-01') + number % 3, number, if(number % 4 = 0, NULL, concat('n', toString(number))), range(number % 4),
    if(number % 2 = 0, 'a', 'b\\''), toUUID('01234567-89ab-cdef-0123-456789abcdef'), toDecimal64(number, 4) / 7 - 3, toDateTime('2024-05-01 12:34:56') + number,
    toFixedString(if(number % 2 = 0, 'ab', 'abcd'), 4), concat('lc', toString(number % 5)), (toInt32(number) - 50, 'q''t\\\\'),
    concat(unhex('000102030405060708090A0B0C0D0E0F7F8081FEFF'), toString(number), '\\t\\n\\'"\`') FROM numbers(300)`,
  "INSERT INTO ls.runs SELECT toDate('2024-03-01') + number % 4, number, concat('p', toString(number % 3)), number % 100 FROM numbers(2000)",
  "INSERT INTO ls.runs SELECT toDate('2024-03-02'), 10000 + number, 'p9', 7 FROM numbers(10)",
  "INSERT INTO ls.feedback SELECT toDate('2024-03-01') + number % 40, number % 50, number / 7, number FROM numbers(300)",
  "INSERT INTO ls.sums VALUES ('a', 1), ('b', 2), ('a', 3)",
  "INSERT INTO ls.plain SELECT number, toString(number) FROM numbers(100)",
  "INSERT INTO ls.lg VALUES ('k1', 'v1'), ('k2', 'v2')",
  'INSERT INTO other.t VALUES (1), (2), (3)',
]
for (const sql of SCHEMA) await src.command(sql, { settings: caps.createSettings })
for (const sql of DATA) await src.command(sql)

const AGG = 'SELECT d, project, sumMerge(tokens), countMerge(n) FROM ls.agg GROUP BY d, project ORDER BY d, project'
const before = await tableDigests(src, ['ls', 'other'])
const aggBefore = await tsv(src, AGG)
// With content digests, so the restore below also compares every table's content.
const first = await backupClickHouse({ driver: src, repo, url: source.url, parallelism: 3, contentDigest: true })

t.test('a full backup records every unit, its DDL, and commits last', async (t) => {
  t.equal(first.stats.partitionsExported, first.stats.partitionsTotal)
  t.equal(first.stats.partitionsReused, 0)
  // types 3 + runs 4 + feedback 2 + sums 1 + agg 1 + inner 1 + plain 1 + lg 1 + other.t 1
  t.equal(first.stats.partitionsTotal, 15)
  t.equal(first.stats.rows, Object.values(before).reduce((n, x) => n + x.rows, 0), 'rows in objects = rows in tables')
  t.ok(first.stats.storedBytes > 0 && first.stats.rawBytes > first.stats.storedBytes / 10)
  t.equal(first.serverVersion, await src.serverVersion())
  t.ok(first.catalog.tables.find((x) => x.name === 'v')?.ddl.startsWith('CREATE VIEW'))
  for (const o of first.objects) t.match(o.key, /^data\/clickhouse\/[A-Za-z0-9_%-]+\/[A-Za-z0-9_%-]+\/[A-Za-z0-9_%-]+\/[ft]1-[a-z0-9-]+-\d{8}T\d{6}Z-ch-[0-9a-f]{4}\.native$/)
  t.ok(first.objects.some((o) => o.key.includes('/%2Einner%2Emv_inner/')), 'the inner table name is percent-encoded')
  const keys: string[] = []
  for await (const o of listAll(repo.sink, 'journal/')) keys.push(o.key)
  t.same(keys, [], 'no journal is left after the commit')
  const m = await readClickHouseManifest(repo, first.id)
  t.same(m.stats, first.stats)
})

t.test('full backup → restore into an empty server: every table matches, MV target not double counted', async (t) => {
  const report = await restoreClickHouse({ driver: dst, repo, manifest: first, parallelism: 3 })
  t.ok(report.ok, JSON.stringify(report.tables.filter((x) => x.status !== 'ok')))
  t.same(await tableDigests(dst, ['ls', 'other']), before, 'rows and content digest of every storage table')
  t.equal(await tsv(dst, AGG), aggBefore, 'aggregated target equals the original')
  t.equal(await tsv(dst, 'SELECT sum(tokens) FROM ls.mv_inner'), await tsv(src, 'SELECT sum(tokens) FROM ls.mv_inner'))
  t.equal(await tsv(dst, 'SELECT * FROM ls.v ORDER BY project'), await tsv(src, 'SELECT * FROM ls.v ORDER BY project'), 'the plain view works')
  t.equal(await tsv(dst, 'SELECT * FROM ls.types ORDER BY id'), await tsv(src, 'SELECT * FROM ls.types ORDER BY id'), 'every value of every type')
  t.equal(report.tables.length, 9, "every storage table checked")
  t.ok(report.tables.every((x) => x.digestCompared), 'same server version: digests compared')
  // The MVs exist again and work: a new row flows into both targets.
  await dst.command("INSERT INTO ls.runs VALUES ('2024-03-01', 99999, 'p0', 5)")
  t.equal((await tsv(dst, 'SELECT countMerge(n) FROM ls.agg')).trim(), String(2011))
})

t.test('restoring into a server that holds the tables is refused and changes nothing; --allow-non-empty adds', async (t) => {
  const snapshot = await tableDigests(dst, ['ls', 'other'])
  await t.rejects(restoreClickHouse({ driver: dst, repo, manifest: first, parallelism: 2 }), { code: 'TM_ERR_RESTORE_TARGET_NOT_EMPTY', message: /ls\.runs holds 2011 rows.*nothing was changed/ })
  await t.rejects(restoreClickHouse({ driver: dst, repo, manifest: first, parallelism: 2, selection: { tables: ['other.t'] } }), { code: 'TM_ERR_RESTORE_TARGET_NOT_EMPTY' })
  t.same(await tableDigests(dst, ['ls', 'other']), snapshot, 'target unchanged')
  const report = await restoreClickHouse({ driver: dst, repo, manifest: first, parallelism: 2, selection: { tables: ['other.t'] }, allowNonEmpty: true })
  t.ok(report.ok)
  t.same(report.existing, ['other.t'])
  t.equal((await tsv(dst, 'SELECT count() FROM other.t')).trim(), '6', 'rows added to the existing ones')
})

t.test('--tables and --rename-db: only the chosen tables, in the new database, MV chain intact', async (t) => {
  const report = await restoreClickHouse({
    driver: dst, repo, manifest: first, parallelism: 2,
    selection: { tables: ['ls.runs', 'ls.agg', 'ls.mv_agg', 'ls.mv_inner'], renames: new Map([['ls', 'ls_copy']]) },
  })
  t.ok(report.ok)
  t.same(report.databasesCreated, ['ls_copy'])
  t.same(report.created.sort(), ['ls_copy.agg', 'ls_copy.mv_agg', 'ls_copy.mv_inner', 'ls_copy.runs'])
  const names = (await tsv(dst, "SELECT name FROM system.tables WHERE database = 'ls_copy' ORDER BY name")).trim().split('\n')
  t.same(names, ['.inner.mv_inner', 'agg', 'mv_agg', 'mv_inner', 'runs'])
  t.equal(await tsv(dst, AGG.replace('ls.agg', 'ls_copy.agg')), aggBefore)
  const after = await tableDigests(dst, ['ls_copy'])
  t.same(after['ls_copy.runs'], before['ls.runs'])
  t.same(after['ls_copy..inner.mv_inner'], before['ls..inner.mv_inner'])
  // The renamed MV reads the renamed source, not the original.
  await dst.command("INSERT INTO ls_copy.runs VALUES ('2024-03-01', 88888, 'p0', 5)")
  t.equal((await tsv(dst, 'SELECT countMerge(n) FROM ls_copy.agg')).trim(), '2011')
  t.equal((await tsv(dst, 'SELECT countMerge(n) FROM ls.agg')).trim(), '2011', 'the original database is untouched')
})

t.test('bad input: each a clear error, repository and target unchanged', async (t) => {
  const tablesBefore = await tsv(dst, 'SELECT database, name FROM system.tables ORDER BY database, name')
  await t.rejects(restoreClickHouse({ driver: dst, repo, manifest: first, parallelism: 1, selection: { tables: ['ls.nope'], renames: new Map([['ls', 'x']]) } }), {
    code: 'TM_ERR_RESTORE_UNKNOWN_TABLE', message: /"ls\.nope" names nothing in this backup; it holds .*ls\.runs/,
  })
  // A view or materialized view without the tables it reads or writes, which the target lacks too.
  await t.rejects(restoreClickHouse({ driver: dst, repo, manifest: first, parallelism: 1, selection: { tables: ['ls.v', 'ls.mv_agg'], renames: new Map([['ls', 'views_only']]) } }), {
    code: 'TM_ERR_RESTORE_UNKNOWN_TABLE', message: /views_only\.mv_agg needs views_only\.agg, views_only\.runs; views_only\.v needs views_only\.runs\); nothing was changed/,
  })
  // The same views over tables the target has already: planned and restored.
  const viewsOk = await restoreClickHouse({ driver: dst, repo, manifest: first, parallelism: 1, selection: { tables: ['ls.v'], renames: new Map([['ls', 'ls_copy']]) } })
  t.same(viewsOk.created, ['ls_copy.v'], 'a view over a table the target has is restored')
  t.equal((await tsv(dst, 'SELECT count() FROM ls_copy.v')).trim(), (await tsv(dst, 'SELECT uniqExact(project) FROM ls_copy.runs')).trim())
  await dst.command('DROP TABLE ls_copy.v')
  await t.rejects(readClickHouseManifest(repo, '20200101T000000Z-ch-0000'), { code: 'TM_ERR_MANIFEST_NOT_FOUND', message: /no clickhouse backup with id/ })
  await t.rejects(readClickHouseManifest(repo, 'latest'), { code: 'TM_ERR_MANIFEST_NOT_FOUND', message: /not a backup id/ })
  const list = await listClickHouseBackups(repo)
  t.throws(() => backupAt(list, new Date('2000-01-01T00:00:00Z')), { code: 'TM_ERR_RESTORE_OUT_OF_WINDOW', message: /earliest restore point is/ })
  t.equal(backupAt(list, new Date(Date.parse(first.endedAt) + 1000)).id, first.id)
  const wrong = createHttpDriver({ url: target.url, user: target.user, password: 'wrong', requestTimeoutMs: 5_000 })
  t.teardown(() => wrong.close())
  await t.rejects(restoreClickHouse({ driver: wrong, repo, manifest: first, parallelism: 1, selection: { renames: new Map([['ls', 'y'], ['other', 'z']]) } }), { code: 'TM_ERR_CLICKHOUSE_AUTH' })
  const down = createHttpDriver({ url: 'http://127.0.0.1:9', user: 'u', password: 'p', requestTimeoutMs: 5_000 })
  t.teardown(() => down.close())
  await t.rejects(backupClickHouse({ driver: down, repo, url: 'http://127.0.0.1:9', parallelism: 1 }), { code: 'TM_ERR_CLICKHOUSE_UNREACHABLE', message: /failed, nothing was committed.*cannot reach ClickHouse/ })
  t.equal(await tsv(dst, 'SELECT database, name FROM system.tables ORDER BY database, name'), tablesBefore, 'target unchanged')
  t.same((await repo.listManifestIds('clickhouse')), [first.id], 'no manifest written by the failures')
})
