import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { access, open, readFile, readdir, rm, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { startClickHouse } from '../harness/clickhouse.ts'
import { driverFor, faultyTestRepository, tableDigests, testRepository, tsv } from './backup-helpers.ts'
import { backupClickHouseParts } from '../../src/engine/clickhouse/parts-backup.ts'
import { restoreClickHouseParts } from '../../src/engine/clickhouse/parts-restore.ts'
import { chooseMethod } from '../../src/engine/clickhouse/parts-method.ts'
import { isPartObject, type ClickHousePartsManifest } from '../../src/engine/clickhouse/parts-manifest.ts'
import { listClickHouseBackups } from '../../src/engine/clickhouse/backup-catalog.ts'
import { probeCapabilities } from '../../src/engine/clickhouse/capabilities.ts'
import type { CallOptions } from '../../src/engine/clickhouse/driver.ts'
import { TidemarkError } from '../../src/errors.ts'

const [source, target] = await Promise.all([startClickHouse(t), startClickHouse(t)])
const src = driverFor(t, source)
const dst = driverFor(t, target)
const srcPath = join(source.dataDir, 'data')
const dstPath = join(target.dataDir, 'data')
const caps = await probeCapabilities(src)
const { repo, root: repoRoot } = await testRepository(t)

const SCHEMA = [
  'CREATE DATABASE ls',
  'CREATE TABLE ls.runs (d Date, id UInt64, project String, tokens UInt32) ENGINE = MergeTree PARTITION BY d ORDER BY id',
  'CREATE TABLE ls.feedback (d Date, id UInt64, score Float64, ver UInt32) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMM(d) ORDER BY id',
  'CREATE TABLE ls.sums (project String, tokens UInt64) ENGINE = SummingMergeTree ORDER BY project',
  'CREATE TABLE ls.agg (d Date, project String, tokens AggregateFunction(sum, UInt32), n AggregateFunction(count)) ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(d) ORDER BY (d, project)',
  'CREATE MATERIALIZED VIEW ls.mv_agg TO ls.agg AS SELECT d, project, sumState(tokens) AS tokens, countState() AS n FROM ls.runs GROUP BY d, project',
  'CREATE MATERIALIZED VIEW ls.mv_inner ENGINE = SummingMergeTree ORDER BY project AS SELECT project, toUInt64(tokens) AS tokens FROM ls.runs',
  'CREATE VIEW ls.v AS SELECT project, count() AS n FROM ls.runs GROUP BY project',
  'CREATE TABLE ls.`odd name-1` (id UInt64, s String) ENGINE = MergeTree ORDER BY id',
  'CREATE TABLE ls.lg (k String, v String) ENGINE = Log',
]
const DATA = [
  "INSERT INTO ls.runs SELECT toDate('2024-03-01') + number % 4, number, concat('p', toString(number % 3)), number % 100 FROM numbers(2000)",
  "INSERT INTO ls.runs SELECT toDate('2024-03-02'), 10000 + number, 'p9', 7 FROM numbers(10)",
  "INSERT INTO ls.feedback SELECT toDate('2024-03-01') + number % 40, number % 50, number / 7, number FROM numbers(300)",
  "INSERT INTO ls.sums VALUES ('a', 1), ('b', 2), ('a', 3)",
  'INSERT INTO ls.`odd name-1` SELECT number, toString(number) FROM numbers(100)',
  "INSERT INTO ls.lg VALUES ('k1', 'v1'), ('k2', 'v2')",
]
for (const sql of SCHEMA) await src.command(sql, { settings: caps.createSettings })
for (const sql of DATA) await src.command(sql)

const AGG = 'SELECT d, project, sumMerge(tokens), countMerge(n) FROM ls.agg GROUP BY d, project ORDER BY d, project'
const activeParts = async () => Number((await tsv(src, "SELECT count() FROM system.parts WHERE active AND database = 'ls'")).trim())
const shadowEntries = async () => (await readdir(join(srcPath, 'shadow')).catch(() => [] as string[])).filter((n) => n !== 'increment.txt')
const backup = (full = false) => backupClickHouseParts({ driver: src, repo, url: source.url, parallelism: 2, dataPath: srcPath, full })
const uploaded = (m: ClickHousePartsManifest) => m.objects.filter((o) => isPartObject(o) && o.writtenBy === m.id)

const before = await tableDigests(src, ['ls'])
const aggBefore = await tsv(src, AGG)
const first = await backup()

t.test('a full parts backup stores every active part once and exports the Log table logically', async (t) => {
  t.equal(first.method, 'clickhouse-parts')
  t.same(first.parts, { partsTotal: await activeParts(), partsUploaded: await activeParts(), partsReused: 0, logicalTables: 1 })
  t.equal(first.stats.rows, Object.values(before).reduce((n, x) => n + x.rows, 0), 'rows of the objects = rows of the tables')
  t.ok(first.objects.some((o) => !isPartObject(o) && o.table === 'lg'), 'the Log table is a logical object')
  t.same(await shadowEntries(), [], 'the shadow directory was removed')
  t.same((await listClickHouseBackups(repo)).map((b) => b.method), ['clickhouse-parts'], 'listed like a logical backup')
})

t.test('restore into a fresh server: same rows and digests, materialized views not fed twice', async (t) => {
  const r = await restoreClickHouseParts({ driver: dst, repo, manifest: first, parallelism: 3, targetDataPath: dstPath })
  t.ok(r.ok, JSON.stringify(r.tables))
  t.same(await tableDigests(dst, ['ls']), before)
  t.equal(await tsv(dst, AGG), aggBefore, 'the MV target holds what the source holds')
  t.equal(Object.values(r.partsAttached).flat().length, first.parts.partsTotal)
  t.same(await tsv(dst, 'SELECT * FROM ls.v ORDER BY project'), await tsv(src, 'SELECT * FROM ls.v ORDER BY project'), 'the view works')
})

t.test('incremental: a new part is uploaded, the others referenced', async (t) => {
  await src.command('INSERT INTO ls.`odd name-1` VALUES (1000, \'new\')')
  const m = await backup()
  t.same(m.parts, { partsTotal: first.parts.partsTotal + 1, partsUploaded: 1, partsReused: first.parts.partsTotal, logicalTables: 1 })
  t.same(uploaded(m).map((o) => o.table), ['odd name-1'])
  t.same(await shadowEntries(), [])
})

t.test('a merge between two backups: the merged part is uploaded, parts of other partitions are not', async (t) => {
  await src.command("INSERT INTO ls.runs SELECT toDate('2024-03-02'), 20000 + number, 'p8', 1 FROM numbers(5)")
  const mid = await backup()
  t.equal(uploaded(mid).filter((o) => o.table === 'runs').length, 1, 'the inserted part')
  await src.command("OPTIMIZE TABLE ls.runs PARTITION '2024-03-02' FINAL")
  const m = await backup()
  const runs = uploaded(m).filter((o) => o.table === 'runs')
  t.equal(runs.length, 1, 'only the merged part of runs')
  t.equal(runs[0]?.partitionId, '20240302')
  t.equal(uploaded(m).length, 1, 'nothing else uploaded')
  t.equal(m.parts.partsReused, m.parts.partsTotal - 1)
})

t.test('an incremental freezes only the partitions that changed, and restores whole', async (t) => {
  // The real driver, with the statements it is sent written down.
  const sent: string[] = []
  const recording = new Proxy(src, {
    get(target, key) {
      const v = Reflect.get(target, key) as unknown
      if (key === 'command') return (sql: string, o?: CallOptions) => (sent.push(sql), target.command(sql, o))
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
  await src.command("INSERT INTO ls.runs SELECT toDate('2024-03-03'), 30000 + number, 'p7', 2 FROM numbers(5)")
  const m = await backupClickHouseParts({ driver: recording, repo, url: source.url, parallelism: 2, dataPath: srcPath })
  // The insert into runs also fed the two materialized views' tables, each in its only partition: those are frozen whole.
  const freezes = sent.filter((q) => /FREEZE/.test(q)).map((q) => q.replace(/ WITH NAME .*/, '')).sort()
  t.same(freezes, ['ALTER TABLE `ls`.`.inner.mv_inner` FREEZE', 'ALTER TABLE `ls`.`agg` FREEZE', "ALTER TABLE `ls`.`runs` FREEZE PARTITION ID '20240303'"], 'no freeze of the tables and partitions that did not change')
  t.same(uploaded(m).map((o) => `${o.table} ${o.partitionId}`).sort(), ['.inner.mv_inner all', 'agg 202403', 'runs 20240303'], 'only the new parts uploaded')
  t.equal(m.parts.partsTotal, await activeParts(), 'every active part is in the manifest')
  t.same(await shadowEntries(), [])
  await dst.command('DROP DATABASE IF EXISTS ls')
  const r = await restoreClickHouseParts({ driver: dst, repo, manifest: m, parallelism: 3, targetDataPath: dstPath })
  t.ok(r.ok, JSON.stringify(r.tables))
  t.same(await tableDigests(dst, ['ls']), await tableDigests(src, ['ls']), 'the restore equals the source')
})

t.test('a sink failing in the middle: no manifest, the shadow directory removed', async (t) => {
  const { repo: frepo, sink } = await faultyTestRepository(t)
  let partPuts = 0 // three parts are stored, then every put of a part fails
  sink.failWhen((c) => (c.op === 'put' && c.key.includes('/parts/') && ++partPuts > 3 ? 'permanent' : undefined))
  await t.rejects(backupClickHouseParts({ driver: src, repo: frepo, url: source.url, parallelism: 2, dataPath: srcPath }), /nothing was committed/)
  t.same(await frepo.listManifestIds('clickhouse'), [])
  t.same(await shadowEntries(), [])

  // The journal recorded the parts stored before the failure: the next backup reuses the ones that exist.
  const journaled = [...(await frepo.knownObjects('clickhouse')).values()].filter((k) => k.ref.key.includes('/parts/'))
  t.ok(journaled.length >= 2 && journaled.every((k) => !k.committed), `${journaled.length} parts known from the journal only`)
  await frepo.sink.delete([(journaled[0] as (typeof journaled)[0]).ref.key])
  sink.failWhen(() => undefined)
  const m = await backupClickHouseParts({ driver: src, repo: frepo, url: source.url, parallelism: 2, dataPath: srcPath })
  t.equal(m.parts.partsReused, journaled.length - 1, 'journaled parts reused; the one deleted meanwhile is uploaded again')
  t.equal(m.parts.partsUploaded, m.parts.partsTotal - (journaled.length - 1))
})

t.test('bad data paths', async (t) => {
  await t.rejects(backupClickHouseParts({ driver: src, repo, url: source.url, parallelism: 2, dataPath: join(srcPath, 'nope') }), { code: 'TM_ERR_CLICKHOUSE_DATA_PATH' })
  await t.rejects(backupClickHouseParts({ driver: src, repo, url: source.url, parallelism: 2, dataPath: dstPath }), { code: 'TM_ERR_CLICKHOUSE_DATA_PATH', message: /does not belong/ })
  t.same(await readdir(join(dstPath, 'shadow')).catch(() => []), [], 'nothing left in the other server\'s shadow directory')
  t.equal((await chooseMethod(src, 'auto', dstPath)).method, 'logical', 'auto: another server\'s path means logical')
  t.equal((await shadowEntries()).length, 2, 'the freezes wrote to the real server\'s disk, as the error says')
  for (const n of await shadowEntries()) await rm(join(srcPath, 'shadow', n), { recursive: true })
  t.equal((await chooseMethod(src, 'auto', srcPath)).method, 'parts', 'auto: its own path means parts')
  t.equal((await chooseMethod(src, 'auto', undefined)).method, 'logical')
  await t.rejects(chooseMethod(src, 'parts', undefined), { code: 'TM_ERR_CLICKHOUSE_DATA_PATH' })
  await t.rejects(restoreClickHouseParts({ driver: dst, repo, manifest: first, parallelism: 2, targetDataPath: undefined }), { code: 'TM_ERR_CLICKHOUSE_DATA_PATH', message: /logical backup/ })
  // The target creates the tables in renamed databases; the parts go to the source's disk, which has no such table.
  await t.rejects(restoreClickHouseParts({ driver: dst, repo, manifest: first, parallelism: 2, targetDataPath: srcPath, selection: { renames: new Map([['ls', 'elsewhere']]) } }),
    { code: 'TM_ERR_CLICKHOUSE_DATA_PATH', message: /no part was attached/ })
})

t.test('a part the server cannot read: a clear error naming what was attached, nothing left in detached/', async (t) => {
  let n = 0
  const err = await restoreClickHouseParts({
    driver: dst, repo, manifest: first, parallelism: 1, targetDataPath: dstPath, selection: { tables: ['ls.runs'], renames: new Map([['ls', 'broken']]) },
    beforeAttach: async (dir) => {
      if (++n === 2) await truncate(join(dir, 'id.bin'), 3)
    },
  }).then(() => undefined, (e: unknown) => e as { code: string; message: string; details: { partsAttached: Record<string, string[]> } })
  t.match(err, { code: 'TM_ERR_CLICKHOUSE_ATTACH', message: /broken\.runs: / })
  // Two parts at once (parallelism 1): the one beside the damaged part may have been attached too; every attached part is named.
  const named = err?.details.partsAttached['broken.runs'] ?? []
  t.ok(named.length >= 1, 'the part attached before the failure is named')
  const active = (await tsv(dst, "SELECT name FROM system.parts WHERE active AND database = 'broken' AND table = 'runs'")).trim().split('\n').filter(Boolean)
  t.equal(active.length, named.length, 'the parts named are the parts attached')
  for (const part of named) t.match(err?.message, part, `${part} is named in the message`)
  const detached = await readdir(join(dstPath, 'data', 'broken', 'runs', 'detached'))
  t.same(detached, [], 'the refused part was removed from detached/')
  await t.rejects(access(join(dstPath, 'shadow', first.id)))
})

t.test('detached/ not writable (immutable, which stops root too): a clear error, nothing attached', async (t) => {
  const chattr = (flag: string, dir: string) => promisify(execFile)('chattr', [flag, dir])
  await dst.command('CREATE DATABASE ro')
  await dst.command('CREATE TABLE ro.sums (project String, tokens UInt64) ENGINE = SummingMergeTree ORDER BY project')
  const detached = join(dstPath, 'data', 'ro', 'sums', 'detached')
  await chattr('+i', detached)
  t.teardown(() => chattr('-i', detached))
  await t.rejects(
    restoreClickHouseParts({ driver: dst, repo, manifest: first, parallelism: 1, targetDataPath: dstPath, selection: { tables: ['ls.sums'], renames: new Map([['ls', 'ro']]) } }),
    { code: 'TM_ERR_CLICKHOUSE_DATA_PATH', message: /no part was attached.*EPERM.*write access/ },
  )
  t.equal((await tsv(dst, 'SELECT count() FROM ro.sums')).trim(), '0')
})

t.test('a stored part with a damaged byte: the restore fails on the integrity check before attaching it', async (t) => {
  const part = first.objects.find((o) => isPartObject(o) && o.table === 'feedback')
  if (!part) throw new Error('no part of feedback')
  const fh = await open(join(repoRoot, part.key), 'r+')
  const b = Buffer.alloc(1)
  await fh.read(b, 0, 1, Math.floor(part.size / 2))
  await fh.write(Buffer.from([b[0] as number ^ 0xff]), 0, 1, Math.floor(part.size / 2))
  await fh.close()
  const err = await restoreClickHouseParts({ driver: dst, repo, manifest: first, parallelism: 1, targetDataPath: dstPath, selection: { tables: ['ls.feedback'], renames: new Map([['ls', 'damaged']]) } })
    .then(() => undefined, (e: unknown) => e as { code: string; message: string; details: { partsAttached: Record<string, string[]> } })
  t.match(err, { code: /TM_ERR_(INTEGRITY|REPO_CORRUPT|DECRYPT)/, message: new RegExp(`part ${part.part} of damaged\\.feedback failed`) })
  // Two parts at once (parallelism 1): the part beside the damaged one may have been attached; the damaged one never.
  const named = err?.details.partsAttached['damaged.feedback'] ?? []
  t.notOk(named.includes(part.part as string), 'the damaged part was not attached')
  const active = (await tsv(dst, "SELECT name FROM system.parts WHERE active AND database = 'damaged' AND table = 'feedback'")).trim().split('\n').filter(Boolean)
  t.equal(active.length, named.length, 'the parts named are the parts attached')
  t.same(await readdir(join(dstPath, 'data', 'damaged', 'feedback', 'detached')), [])
})

t.test('a server without FREEZE WITH NAME: the numbered shadow directory is used, then removed', async (t) => {
  // The server refuses the statement as servers before FREEZE WITH NAME do; the plain FREEZE that follows is real.
  const refused: string[] = []
  const oldServer = new Proxy(src, {
    get(target, prop) {
      if (prop === 'command') {
        return async (sql: string, opts?: CallOptions) => {
          if (/FREEZE.* WITH NAME /.test(sql)) {
            refused.push(sql)
            throw new TidemarkError('TM_ERR_CLICKHOUSE_QUERY', `Code: 62, e.displayText() = DB::Exception: Syntax error: failed at position 30: WITH NAME 'x'. Expected end of query`)
          }
          return target.command(sql, opts)
        }
      }
      const v = Reflect.get(target, prop) as unknown
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
  const { repo: own } = await testRepository(t)
  const increment = async () => Number(await readFile(join(srcPath, 'shadow', 'increment.txt'), 'utf8').catch(() => '0'))
  const numberBefore = await increment()
  const m = await backupClickHouseParts({ driver: oldServer, repo: own, url: source.url, parallelism: 2, dataPath: srcPath, full: true })
  t.ok(refused.length > 0, 'FREEZE WITH NAME was tried first')
  t.ok((await increment()) > numberBefore, 'numbered freezes were made')
  t.equal(m.parts.partsUploaded, await activeParts(), 'every active part, from the numbered shadow directories')
  t.same(await shadowEntries(), [], 'and those directories were removed')
  const r = await restoreClickHouseParts({ driver: dst, repo: own, manifest: m, parallelism: 2, targetDataPath: dstPath, selection: { renames: new Map([['ls', 'numbered']]) } })
  t.ok(r.ok, JSON.stringify(r.tables))
  const restored = Object.fromEntries(Object.entries(await tableDigests(dst, ['numbered'])).map(([k, v]) => [k.replace(/^numbered\./, 'ls.'), v]))
  t.same(restored, await tableDigests(src, ['ls']))

  // An incremental: each changed partition is a numbered freeze of its own (one at a time, as each reads the number the server wrote).
  await src.command("INSERT INTO ls.runs SELECT toDate('2024-03-01') + (number % 2) * 3, 50000 + number, 'p8', 3 FROM numbers(6)")
  const numberBeforeIncr = await increment()
  const refusedBefore = refused.length
  const incr = await backupClickHouseParts({ driver: oldServer, repo: own, url: source.url, parallelism: 2, dataPath: srcPath })
  t.ok(refused.length > refusedBefore, 'FREEZE … WITH NAME was tried first')
  t.equal((await increment()) - numberBeforeIncr, 4, 'two partitions of runs and the two materialized views\' tables, one numbered freeze each')
  t.same(uploaded(incr).map((o) => `${o.table} ${o.partitionId}`).sort(), ['.inner.mv_inner all', 'agg 202403', 'runs 20240301', 'runs 20240304'], 'only the new parts uploaded')
  t.same(await shadowEntries(), [], 'every numbered directory was removed')
  const r2 = await restoreClickHouseParts({ driver: dst, repo: own, manifest: incr, parallelism: 2, targetDataPath: dstPath, selection: { renames: new Map([['ls', 'numbered2']]) } })
  t.ok(r2.ok, JSON.stringify(r2.tables))
  const restored2 = Object.fromEntries(Object.entries(await tableDigests(dst, ['numbered2'])).map(([k, v]) => [k.replace(/^numbered2\./, 'ls.'), v]))
  t.same(restored2, await tableDigests(src, ['ls']))
})

t.test('the server killed during a backup: no manifest, the shadow directory removed', async (t) => {
  const { repo: krepo, sink } = await faultyTestRepository(t)
  let killed: Promise<void> | undefined
  // Parts are read from disk, so the backup only notices when it next asks the server: the Log table's export, which runs last.
  sink.failWhen((c) => {
    if (c.op === 'put' && c.key.includes('/parts/') && killed === undefined) killed = source.kill()
    return undefined
  })
  await t.rejects(backupClickHouseParts({ driver: src, repo: krepo, url: source.url, parallelism: 1, dataPath: srcPath }), { code: /TM_ERR_CLICKHOUSE_(UNREACHABLE|QUERY)/, message: /nothing was committed/ })
  await killed
  t.same(await krepo.listManifestIds('clickhouse'), [])
  t.same(await shadowEntries(), [])
})

