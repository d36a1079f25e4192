import t from 'tap'
import { startClickHouse } from '../harness/clickhouse.ts'
import { driverFor, mutationsDone, tableDigests, testRepository, tsv } from './backup-helpers.ts'
import { backupClickHouse } from '../../src/engine/clickhouse/backup.ts'
import { restoreClickHouse } from '../../src/engine/clickhouse/restore.ts'
import type { ClickHouseManifest } from '../../src/engine/clickhouse/manifest.ts'
import { MAX_DELTAS } from '../../src/engine/clickhouse/backup-plan.ts'

const [source, target] = await Promise.all([startClickHouse(t), startClickHouse(t)])
const src = driverFor(t, source)
const dst = driverFor(t, target)
const { repo } = await testRepository(t)

// Six daily partitions of three interleaved parts each, and a second table that never changes.
await src.command('CREATE DATABASE ls')
await src.command('CREATE TABLE ls.runs (d Date, id UInt64, s String) ENGINE = MergeTree PARTITION BY d ORDER BY id')
await src.command('CREATE TABLE ls.plain (id UInt64) ENGINE = MergeTree ORDER BY id')
for (let i = 0; i < 3; i++) {
  await src.command(`INSERT INTO ls.runs SELECT toDate('2024-01-01') + number % 6, number + ${i * 10_000}, toString(number) FROM numbers(600)`)
}
await src.command('INSERT INTO ls.plain SELECT number FROM numbers(50)')

const backup = (full = false) => backupClickHouse({ driver: src, repo, url: source.url, parallelism: 2, full })
const counts = (m: ClickHouseManifest) => [m.stats.partitionsTotal, m.stats.partitionsExported, m.stats.partitionsReused]
const partitionsOf = (m: ClickHouseManifest, table: string) => m.objects.filter((o) => o.table === table).map((o) => o.partitionId)

const first = await backup()
const firstState = await tableDigests(src, ['ls'])

t.test('first backup exports everything; an unchanged server exports nothing', async (t) => {
  t.same(counts(first), [7, 7, 0])
  const again = await backup()
  t.same(counts(again), [7, 0, 7])
  t.same(again.objects.map((o) => o.key), first.objects.map((o) => o.key), 'the same objects are referenced again')
})

t.test('insert into one partition of many: exactly that partition is exported', async (t) => {
  await src.command("INSERT INTO ls.runs VALUES ('2024-01-03', 777777, 'new')")
  const m = await backup()
  t.same(counts(m), [7, 1, 6])
  t.same(m.objects.filter((o) => o.writtenBy === m.id).map((o) => `${o.table}/${o.partitionId}`), ['runs/20240103'])
  const written = m.objects.filter((o) => o.writtenBy === m.id)
  t.match(written, [{ rows: 1, afterBlock: /^\d+$/ }], 'only the inserted row, as a delta')
  t.equal(m.stats.partitionsAppended, 1)
  t.same(m.objects.filter((o) => o.partitionId === '20240103').map((o) => o.writtenBy), [first.id, m.id], 'the partition is its first object plus the delta')
})

t.test('OPTIMIZE TABLE FINAL on a plain MergeTree: nothing is exported', async (t) => {
  await src.command('OPTIMIZE TABLE ls.runs FINAL')
  const parts = await tsv(src, "SELECT count() FROM system.parts WHERE database = 'ls' AND table = 'runs' AND active")
  t.equal(parts.trim(), '6', 'merged into one part per partition')
  const m = await backup()
  t.same(counts(m), [7, 0, 7], JSON.stringify(m.objects.filter((o) => o.writtenBy === m.id)))
})

t.test('ALTER DELETE touching one partition: exactly that partition is exported', async (t) => {
  await src.command("ALTER TABLE ls.runs DELETE WHERE d = '2024-01-05' AND id % 2 = 0")
  await mutationsDone(src, 'ls', 'runs')
  const m = await backup()
  t.same(counts(m), [7, 1, 6])
  t.equal(m.stats.partitionsReusedAfterDeletes, 5, 'the other partitions of runs were versioned by the mutation: reused, as system.mutations shows only a DELETE')
  t.equal(m.stats.partitionsReusedByDigest, 0)
  t.ok(m.objects.every((o) => o.digest === null), 'no content digest was recorded (clickhouse.contentDigest is off)')
  t.same(m.objects.filter((o) => o.writtenBy === m.id).map((o) => o.partitionId), ['20240105'])
  t.same(counts(await backup()), [7, 0, 7], 'the new fingerprints were recorded: no proof needed the next time')
})

t.test('ALTER UPDATE: without recorded digests every partition it versioned is exported; with them, exactly the touched one', async (t) => {
  await src.command("ALTER TABLE ls.runs UPDATE s = 'updated' WHERE d = '2024-01-04' AND id % 3 = 0")
  await mutationsDone(src, 'ls', 'runs')
  const m = await backup()
  t.same(counts(m), [7, 6, 1], 'an UPDATE is no proof: all six partitions of runs')

  const digested = await backupClickHouse({ driver: src, repo, url: source.url, parallelism: 2, full: true, contentDigest: true })
  t.ok(digested.objects.every((o) => /^\d+$/.test(o.digest ?? '')), 'every export recorded its digest')
  await src.command("ALTER TABLE ls.runs UPDATE s = 'again' WHERE d = '2024-01-03' AND id % 3 = 0")
  await mutationsDone(src, 'ls', 'runs')
  const d = await backupClickHouse({ driver: src, repo, url: source.url, parallelism: 2, contentDigest: true })
  t.same(counts(d), [7, 1, 6])
  t.equal(d.stats.partitionsReusedByDigest, 5, 'the partitions the UPDATE left as they were: reused after a digest')
  t.same(d.objects.filter((o) => o.writtenBy === d.id).map((o) => o.partitionId), ['20240103'])
  const restored = await restoreClickHouse({ driver: dst, repo, manifest: d, parallelism: 2, selection: { renames: new Map([['ls', 'upd']]) } })
  t.ok(restored.ok)
  // ls.plain may be reused from a backup of the same second taken without digests; every object of runs has one.
  t.match(restored.tables.find((x) => x.table === 'upd.runs'), { digestCompared: true, status: 'ok' }, 'with digests recorded, the restore compares content')
  const now = await tableDigests(src, ['ls'])
  t.same(await tableDigests(dst, ['upd']), { 'upd.runs': now['ls.runs'], 'upd.plain': now['ls.plain'] })
})

t.test('DROP PARTITION: gone from the manifest and from the restore; an older backup restores its own state', async (t) => {
  await src.command("ALTER TABLE ls.runs DROP PARTITION '2024-01-02'")
  const m = await backup()
  t.same(counts(m), [6, 0, 6])
  t.notOk(partitionsOf(m, 'runs').includes('20240102'))
  const latest = await restoreClickHouse({ driver: dst, repo, manifest: m, parallelism: 2, selection: { renames: new Map([['ls', 'latest']]) } })
  t.ok(latest.ok)
  t.equal((await tsv(dst, "SELECT count() FROM latest.runs WHERE d = '2024-01-02'")).trim(), '0')
  const now = await tableDigests(src, ['ls'])
  t.same(await tableDigests(dst, ['latest']), { 'latest.runs': now['ls.runs'], 'latest.plain': now['ls.plain'] })

  const old = await restoreClickHouse({ driver: dst, repo, manifest: first, parallelism: 2, selection: { renames: new Map([['ls', 'v1']]) } })
  t.ok(old.ok)
  t.same(await tableDigests(dst, ['v1']), { 'v1.runs': firstState['ls.runs'], 'v1.plain': firstState['ls.plain'] }, 'the first backup’s state, not the newest')
  t.not(firstState['ls.runs']?.digest, now['ls.runs']?.digest)
})

t.test('--full exports everything again into new objects', async (t) => {
  const m = await backup(true)
  t.same(counts(m), [6, 6, 0])
  t.equal(m.full, true)
  t.ok(m.objects.every((o) => o.writtenBy === m.id))
})

t.test('a table dropped and created again is exported in full even where its fingerprints repeat', async (t) => {
  await src.command('DROP TABLE ls.plain')
  await new Promise((r) => setTimeout(r, 1100)) // the metadata file's time has a one-second resolution
  await src.command('CREATE TABLE ls.plain (id UInt64) ENGINE = MergeTree ORDER BY id')
  await src.command('INSERT INTO ls.plain SELECT number + 1000 FROM numbers(50)')
  const m = await backup()
  const plain = m.objects.find((o) => o.table === 'plain')
  const old = first.objects.find((o) => o.table === 'plain')
  t.equal(plain?.fingerprint, old?.fingerprint, 'same block span and row count as the old table')
  t.equal(plain?.writtenBy, m.id, 'exported, not reused')
})

t.test('rows added again and again: one delta each, a restore equal to the source, whole again after MAX_DELTAS', async (t) => {
  await src.command('CREATE TABLE ls.grow (d Date, id UInt64, s String) ENGINE = MergeTree PARTITION BY d ORDER BY id')
  await src.command("INSERT INTO ls.grow SELECT '2024-02-01', number, toString(number) FROM numbers(100)")
  await src.command("INSERT INTO ls.grow SELECT '2024-02-02', number, 'other' FROM numbers(5)")
  const grow = (m: ClickHouseManifest) => m.objects.filter((o) => o.table === 'grow' && o.partitionId === '20240201')
  // Background merges across the last backup's boundary would make some rounds fall back to an earlier boundary (see backup-plan-pure).
  await src.command('SYSTEM STOP MERGES ls.grow')
  let m = await backup()
  t.equal(grow(m).length, 1)
  for (let i = 1; i <= MAX_DELTAS; i++) {
    await src.command(`INSERT INTO ls.grow SELECT '2024-02-01', ${i * 1000} + number, 'added' FROM numbers(${i})`)
    m = await backup()
    t.equal(m.stats.partitionsAppended, 1, `delta ${i}`)
    t.same(grow(m).map((o) => o.rows), [100, ...Array.from({ length: i }, (_, k) => k + 1)], `base and ${i} deltas, in order`)
    t.ok(grow(m).slice(1).every((o) => o.afterBlock !== undefined))
  }
  // A merge of old and new parts: the content is the same, so the objects are reused as they are.
  await src.command('SYSTEM START MERGES ls.grow')
  await src.command("OPTIMIZE TABLE ls.grow PARTITION '2024-02-01' FINAL")
  t.equal((await tsv(src, "SELECT count() FROM system.parts WHERE database = 'ls' AND table = 'grow' AND active AND partition_id = '20240201'")).trim(), '1')
  const merged = await backup()
  t.equal(merged.stats.partitionsExported, 0, 'nothing exported after the merge')
  t.same(grow(merged).map((o) => o.key), grow(m).map((o) => o.key))

  const r = await restoreClickHouse({ driver: dst, repo, manifest: merged, parallelism: 2, selection: { tables: ['ls.grow'], renames: new Map([['ls', 'deltas']]) } })
  t.ok(r.ok, JSON.stringify(r.tables))
  t.same(await tableDigests(dst, ['deltas']), { 'deltas.grow': (await tableDigests(src, ['ls']))['ls.grow'] }, 'base and deltas together are the source table')

  await src.command("INSERT INTO ls.grow VALUES ('2024-02-01', 999999, 'one more')")
  const whole = await backup()
  t.equal(whole.stats.partitionsAppended, 0, `after ${MAX_DELTAS} deltas: exported whole`)
  t.match(grow(whole), [{ rows: 100 + (MAX_DELTAS * (MAX_DELTAS + 1)) / 2 + 1, writtenBy: whole.id }])
  t.equal(grow(whole)[0]?.afterBlock, undefined)
})
