import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { initRepository, readAll } from '../../src/engine/repository/index.ts'
import { prefixToCopy, replicatePrefix } from '../../src/engine/replicate.ts'
import { createFsSink } from '../../src/sinks/fs.ts'
import { withFaults } from '../../src/sinks/faulty.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { keysOf, testPool } from './helpers.ts'

const pool = testPool()
t.teardown(() => pool.destroy())

t.test('what a prefix copy sends: absent, another size, or older at the target', async (t) => {
  const o = (key: string, size: number, ms: number) => ({ key, size, lastModified: new Date(ms) })
  const target = new Map([o('w/1', 10, 100), o('w/2', 10, 100), o('w/3', 10, 300)].map((x) => [x.key, x]))
  const got = prefixToCopy([o('w/1', 10, 50), o('w/2', 11, 50), o('w/3', 10, 400), o('w/4', 1, 1)], target)
  t.same(got.map((x) => x.key), ['w/2', 'w/3', 'w/4'])
})

t.test('WAL is copied continuously: each run sends what is new or rewritten, nothing twice', async (t) => {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  const primary = await initRepository(createFsSink(`${dir}/p`), { pipeline: { pool } })
  t.teardown(() => primary.close())
  const seg = (n: number) => `data/postgres/wal/00000001000000000000000${n}`
  for (const n of [1, 2]) await primary.sink.put(seg(n), Buffer.alloc(4096, n))
  await primary.sink.put(`${seg(3)}.partial`, Buffer.alloc(4096, 0))
  await primary.sink.put('data/clickhouse/x', Buffer.from('not WAL'))
  const puts: string[] = []
  const sink = withFaults(createFsSink(`${dir}/s`), { failWhen: (c) => void (c.op === 'put' && puts.push(c.key)) })
  const target = { name: 'dr', sink }

  const first = await replicatePrefix(primary, target, 'data/postgres/wal/')
  t.match(first, { objectsCopied: 3, bytesCopied: 3 * 4096, objectsPresent: 0 })
  t.equal(puts[0], 'config.json', 'the repository config is written first')
  // The objects are copied in parallel: their order is not fixed.
  t.same(puts.slice(1).sort(), [seg(1), seg(2), `${seg(3)}.partial`].sort())
  t.notOk((await keysOf(sink)).has('data/clickhouse/x'), 'only the prefix')

  await sleep(20) // a later modification time
  await primary.sink.put(`${seg(3)}.partial`, Buffer.alloc(4096, 3)) // the open segment, rewritten in place
  await primary.sink.put(seg(4), Buffer.alloc(4096, 4))
  puts.length = 0
  const second = await replicatePrefix(primary, target, 'data/postgres/wal/', { filter: (o) => o.key !== seg(4) })
  t.match(second, { objectsCopied: 1, objectsPresent: 2 })
  t.same(puts, [`${seg(3)}.partial`], 'the rewritten partial segment only (seg 4 filtered out)')
  t.same(await readAll(await sink.get(`${seg(3)}.partial`)), Buffer.alloc(4096, 3))
  puts.length = 0
  t.match(await replicatePrefix(primary, target, 'data/postgres/wal/'), { objectsCopied: 1, objectsPresent: 3 })
  t.same(puts, [seg(4)])
  await t.rejects(replicatePrefix(primary, target, 'manifests/'), { code: 'TM_ERR_USAGE' })
})

t.test('replicate() carries the WAL archive too, and the lag counts WAL still to copy', async (t) => {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  const primary = await initRepository(createFsSink(`${dir}/p`), { pipeline: { pool } })
  t.teardown(() => primary.close())
  const target = { name: 'dr', sink: createFsSink(`${dir}/s`) }
  const { replicate, replicationLag } = await import('../../src/engine/replicate.ts')
  await replicate(primary, target)
  const seg = 'data/postgres/wal/7300000000000000001/00000001/000000010000000000000001'
  await primary.sink.put(seg, Buffer.alloc(5000, 1))
  const later = new Date(Date.now() + 90_000)
  t.match(await replicationLag(primary, target, later), { ok: true, bytes: 5000, backups: 0, wal: { objects: 1, bytes: 5000 } })
  t.ok(((await replicationLag(primary, target, later)) as { seconds: number }).seconds >= 89, 'seconds since the oldest missing WAL object was written')
  const res = await replicate(primary, target)
  t.match(res, { objectsCopied: 0, wal: { objectsCopied: 1, bytesCopied: 5000 } })
  t.same(await readAll(await target.sink.get(seg)), Buffer.alloc(5000, 1))
  t.match(await replicationLag(primary, target), { ok: true, seconds: 0, bytes: 0, wal: { objects: 0 } })
})

t.test('the WAL copy does not refill what the secondary pruned: segments older than every base backup it holds stay behind', async (t) => {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  const primary = await initRepository(createFsSink(`${dir}/p`), { pipeline: { pool } })
  t.teardown(() => primary.close())
  const target = { name: 'dr', sink: createFsSink(`${dir}/s`) }
  const { replicateWal, replicationLag } = await import('../../src/engine/replicate.ts')
  const { walDataKey, walRefKey } = await import('../../src/engine/postgres/wal-format.ts')
  const sys = '7300000000000000001'
  const names = [1, 2, 3, 4].map((n) => `00000001000000000000000${n}`)
  for (const n of names) {
    await primary.sink.put(walDataKey(sys, n), Buffer.alloc(100, 1))
    await primary.sink.put(walRefKey(sys, n), Buffer.from('{}'))
  }
  t.match(await replicateWal(primary, target), { objectsCopied: 8 }, 'no base backup at the secondary: every segment is wanted')
  // The secondary's prune kept one base backup starting in segment 3 and removed segments 1 and 2.
  for (const n of names.slice(0, 2)) await target.sink.delete([walDataKey(sys, n), walRefKey(sys, n)])
  const id = '20261128T000000Z-pg-0001'
  await target.sink.put(`manifests/postgres/${id}.json`, Buffer.from(JSON.stringify({
    format: 'tidemark-repository', version: 1, id, source: 'postgres', method: 'postgres-base', startedAt: '2026-11-28T00:00:00Z', endedAt: '2026-11-28T00:00:01Z', objects: [],
    postgres: { systemId: sys, serverMajor: 15, walSegSize: 16 * 1024 * 1024, timeline: 1, startLsn: '0/3000028', stopLsn: '0/3000100', startWalFile: names[2], startTime: '', endTime: '', label: '', tarKey: '', tarBytes: 0, walFiles: [] },
  })))
  t.match(await replicateWal(primary, target), { objectsCopied: 0 }, 'the pruned segments are not copied again')
  t.notOk((await keysOf(target.sink)).has(walDataKey(sys, names[0]!)))
  t.match(await replicationLag(primary, target), { ok: true, wal: { objects: 0, bytes: 0 } }, 'and are not counted as lag')
})
