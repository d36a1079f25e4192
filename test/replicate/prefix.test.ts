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
  t.same(puts, ['config.json', seg(1), seg(2), `${seg(3)}.partial`].sort((a, b) => (a === 'config.json' ? -1 : b === 'config.json' ? 1 : a < b ? -1 : 1)))
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
