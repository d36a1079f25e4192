import t from 'tap'
import { startClickHouse } from '../harness/clickhouse.ts'
import { waitFor } from '../harness/proc.ts'
import { createHttpDriver } from '../../src/engine/clickhouse/http-driver.ts'
import { discover } from '../../src/engine/clickhouse/discovery.ts'
import { compareFingerprints } from '../../src/engine/clickhouse/fingerprint.ts'
import { partsStillActive, readPartitions, type PartitionSnapshot } from '../../src/engine/clickhouse/partitions.ts'
import { digestSql, exportSql, insertNativeSql, partitionPredicate } from '../../src/engine/clickhouse/export-sql.ts'
import type { TableInfo } from '../../src/engine/clickhouse/catalog.ts'

const ch = await startClickHouse(t)
const driver = createHttpDriver({ url: ch.url, user: ch.user, password: ch.password, requestTimeoutMs: 30_000 })
t.teardown(() => driver.close())

async function table(db: string, name: string): Promise<TableInfo> {
  const catalog = await discover(driver, { include: [`${db}.${name}`], exclude: [] })
  return catalog.tables.find((x) => x.name === name) as TableInfo
}

async function snapshot(db: string, name: string): Promise<Map<string, PartitionSnapshot>> {
  const info = await table(db, name)
  return new Map((await readPartitions(driver, db, name, info.columns)).map((p) => [p.partitionId, p]))
}

async function digest(db: string, name: string, partitionId: string): Promise<unknown> {
  return (await driver.queryRows(digestSql(await table(db, name), partitionPredicate({ partitionId }))))[0]
}

async function mutationsDone(db: string, name: string): Promise<void> {
  await waitFor('mutations to finish', async () => {
    const [r] = await driver.queryRows<{ n: string }>('SELECT count() AS n FROM system.mutations WHERE database = {db:String} AND table = {t:String} AND NOT is_done', { db, t: name })
    return r?.n === '0'
  }, 20_000, 50)
}

/** A table with three daily partitions whose parts interleave (block numbers are shared across partitions). */
async function makeTable(name: string, engine = 'MergeTree'): Promise<void> {
  await driver.command(`CREATE TABLE fp.${name} (d Date, k UInt64, s String) ENGINE = ${engine} PARTITION BY d ORDER BY k`)
  for (let i = 0; i < 3; i++) {
    for (const day of ['2024-01-01', '2024-01-02', '2024-01-03']) {
      await driver.command(`INSERT INTO fp.${name} SELECT toDate('${day}'), number + ${i * 1000}, toString(number) FROM numbers(${day.endsWith('1') ? 100 : 50})`)
    }
  }
}

const D1 = '20240101'
const D2 = '20240102'
const D3 = '20240103'

await driver.command('CREATE DATABASE fp')

t.test('OPTIMIZE FINAL on a plain MergeTree does not change any fingerprint', async (t) => {
  await makeTable('opt')
  const before = await snapshot('fp', 'opt')
  t.equal(before.get(D1)?.parts.length, 3, 'three parts per partition before')
  await driver.command('OPTIMIZE TABLE fp.opt FINAL')
  const after = await snapshot('fp', 'opt')
  t.equal(after.get(D1)?.parts.length, 1, 'merged into one part')
  for (const id of [D1, D2, D3]) t.equal(after.get(id)?.fingerprint, before.get(id)?.fingerprint, id)
  t.notOk(await partsStillActive(driver, 'fp', 'opt', before.get(D1)?.parts ?? []), 'the merged-away parts are no longer active')
  t.ok(await partsStillActive(driver, 'fp', 'opt', after.get(D1)?.parts ?? []))
})

t.test('insert changes exactly the partition it lands in', async (t) => {
  await makeTable('ins')
  const before = await snapshot('fp', 'ins')
  await driver.command("INSERT INTO fp.ins VALUES ('2024-01-02', 99999, 'new')")
  const after = await snapshot('fp', 'ins')
  t.equal(compareFingerprints(before.get(D2)?.fingerprint, after.get(D2)?.fingerprint as string), 'changed')
  t.equal(after.get(D1)?.fingerprint, before.get(D1)?.fingerprint)
  t.equal(after.get(D3)?.fingerprint, before.get(D3)?.fingerprint)
})

t.test('ALTER DELETE: the touched partition changes; the others keep their content', async (t) => {
  await makeTable('del')
  const before = await snapshot('fp', 'del')
  const digests = [await digest('fp', 'del', D1), await digest('fp', 'del', D3)]
  await driver.command("ALTER TABLE fp.del DELETE WHERE d = '2024-01-02' AND k < 10")
  await mutationsDone('fp', 'del')
  const after = await snapshot('fp', 'del')
  t.equal(compareFingerprints(before.get(D2)?.fingerprint, after.get(D2)?.fingerprint as string), 'changed', 'rows went down')
  // Servers version every part a mutation covers, touched or not: the fingerprint may say 'mutated', and the digest settles it.
  for (const [i, id] of [D1, D3].entries()) {
    const verdict = compareFingerprints(before.get(id)?.fingerprint, after.get(id)?.fingerprint as string)
    t.ok(verdict === 'same' || verdict === 'mutated', `${id}: ${verdict}`)
    t.same(await digest('fp', 'del', id), digests[i], `${id}: content digest unchanged`)
  }
})

t.test('ALTER UPDATE: fingerprint moves; the digest tells the touched partition from the others', async (t) => {
  await makeTable('upd')
  const before = await snapshot('fp', 'upd')
  const digests = new Map<string, unknown>()
  for (const id of [D1, D2, D3]) digests.set(id, await digest('fp', 'upd', id))
  await driver.command("ALTER TABLE fp.upd UPDATE s = 'changed' WHERE d = '2024-01-03' AND k = 5")
  await mutationsDone('fp', 'upd')
  const after = await snapshot('fp', 'upd')
  t.equal(compareFingerprints(before.get(D3)?.fingerprint, after.get(D3)?.fingerprint as string), 'mutated')
  t.notSame(await digest('fp', 'upd', D3), digests.get(D3), 'touched partition: digest differs')
  for (const id of [D1, D2]) t.same(await digest('fp', 'upd', id), digests.get(id), `${id}: digest unchanged`)
})

t.test('DROP PARTITION removes it; DETACH/ATTACH and REPLACE PARTITION change it', async (t) => {
  await makeTable('ddl')
  await driver.command('CREATE TABLE fp.ddl_src AS fp.ddl')
  await driver.command("INSERT INTO fp.ddl_src VALUES ('2024-01-03', 1, 'replacement')")
  const before = await snapshot('fp', 'ddl')
  const d2Digest = await digest('fp', 'ddl', D2)
  await driver.command(`ALTER TABLE fp.ddl DROP PARTITION '2024-01-01'`)
  await driver.command(`ALTER TABLE fp.ddl DETACH PARTITION '2024-01-02'`)
  t.notOk((await snapshot('fp', 'ddl')).has(D2), 'a detached partition is gone until attached')
  await driver.command(`ALTER TABLE fp.ddl ATTACH PARTITION '2024-01-02'`)
  await driver.command(`ALTER TABLE fp.ddl REPLACE PARTITION '2024-01-03' FROM fp.ddl_src`)
  const after = await snapshot('fp', 'ddl')
  t.notOk(after.has(D1), 'dropped partition has no fingerprint')
  // Attached parts get new block numbers: the fingerprint changes although the rows are the same (one needless re-export).
  t.equal(compareFingerprints(before.get(D2)?.fingerprint, after.get(D2)?.fingerprint as string), 'changed', 'DETACH+ATTACH: changed')
  t.same(await digest('fp', 'ddl', D2), d2Digest, 'DETACH+ATTACH: same rows')
  t.equal(compareFingerprints(before.get(D3)?.fingerprint, after.get(D3)?.fingerprint as string), 'changed', 'REPLACE: changed')
  t.equal(after.get(D3)?.rows, 1)
})

t.test('ADD COLUMN changes every partition', async (t) => {
  await makeTable('col')
  const before = await snapshot('fp', 'col')
  await driver.command("ALTER TABLE fp.col ADD COLUMN extra String DEFAULT 'x'")
  const after = await snapshot('fp', 'col')
  for (const id of [D1, D2, D3]) t.equal(compareFingerprints(before.get(id)?.fingerprint, after.get(id)?.fingerprint as string), 'changed', id)
})

t.test('ReplacingMergeTree: a deduplicating merge changes the fingerprint', async (t) => {
  await makeTable('rep', 'ReplacingMergeTree')
  await driver.command("INSERT INTO fp.rep SELECT toDate('2024-01-01'), number, 'dup' FROM numbers(10)")
  const before = await snapshot('fp', 'rep')
  await driver.command('OPTIMIZE TABLE fp.rep FINAL')
  const after = await snapshot('fp', 'rep')
  t.ok((after.get(D1)?.rows ?? 0) < (before.get(D1)?.rows ?? 0), 'duplicates collapsed')
  t.equal(compareFingerprints(before.get(D1)?.fingerprint, after.get(D1)?.fingerprint as string), 'changed')
})

t.test('the export predicate selects exactly one partition (any key type), and only its parts', async (t) => {
  await driver.command("CREATE TABLE fp.keys (s String, n Int32, d DateTime) ENGINE = MergeTree PARTITION BY (s, n % 3, toYYYYMM(d)) ORDER BY n SETTINGS index_granularity = 1")
  await driver.command("INSERT INTO fp.keys SELECT ['a''b', 'x\\\\y', ''][number % 3 + 1], number, toDateTime('2024-01-31 23:00:00') + number * 3600 FROM numbers(3000)")
  await driver.command("INSERT INTO fp.keys SELECT 'a''b', number, toDateTime('2024-01-31 23:00:00') FROM numbers(30)")
  const info = await table('fp', 'keys')
  const parts = await readPartitions(driver, 'fp', 'keys', info.columns)
  t.ok(parts.length >= 6, `${parts.length} partitions`)
  await driver.command('CREATE TABLE fp.keys_copy AS fp.keys')
  for (const p of parts) {
    for (const pred of [partitionPredicate({ partitionId: p.partitionId }), partitionPredicate({ partitionId: p.partitionId, parts: p.parts })]) {
      const [c] = await driver.queryRows<{ n: string }>(`SELECT count() AS n FROM fp.keys WHERE ${pred}`)
      t.equal(Number(c?.n), p.rows, `${p.partition}: count by ${pred.includes('_part IN') ? 'parts' : 'partition id'}`)
    }
    // Pruning: with the part list, no more rows than the partition holds are read (granularity 1: the estimate is exact).
    const pred = partitionPredicate({ partitionId: p.partitionId, parts: p.parts })
    await driver.queryRows(`SELECT count() FROM fp.keys WHERE ${pred}`, undefined, { settings: { max_rows_to_read: p.rows } })
    await driver.command('TRUNCATE TABLE fp.keys_copy')
    await driver.insertStream(insertNativeSql({ ...info, name: 'keys_copy' }), await driver.queryStream(exportSql(info, pred), 'Native'), { settings: { insert_deduplicate: 0 } })
    const [src] = await driver.queryRows(digestSql(info, pred))
    const [copy] = await driver.queryRows(digestSql({ ...info, name: 'keys_copy' }))
    t.same(copy, src, `${p.partition}: exported rows re-inserted equal the partition`)
  }
})
