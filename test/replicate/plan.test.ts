import t from 'tap'
import { lagOf, planReplication } from '../../src/engine/replicate.ts'
import type { ManifestBase, ObjectRef } from '../../src/engine/repository/index.ts'

const ref = (key: string, size: number): ObjectRef => ({ key, size, sha256: '0'.repeat(64), rawSize: size, codec: 'zstd', chunkSize: 1024, chunks: 1 })
const man = (id: string, endedAt: string, refs: ObjectRef[]): ManifestBase => ({
  format: 'tidemark-repository', version: 1, id, source: 'clickhouse', method: 'test', startedAt: endedAt, endedAt, objects: refs,
})

t.test('the plan: distinct objects the target lacks, in the order the oldest manifests need them', async (t) => {
  const a = ref('data/clickhouse/a', 10)
  const b = ref('data/clickhouse/b', 20)
  const c = ref('data/clickhouse/c', 30)
  const d = ref('data/clickhouse/d', 40)
  const m2 = man('20261128T000000Z-ch-0002', '2026-11-28T00:10:00Z', [a, c, d])
  const m1 = man('20261127T000000Z-ch-0001', '2026-11-27T00:10:00Z', [a, b, c])
  // a is there; c is there with another size (a damaged copy): sent again.
  const plan = planReplication([m2, m1], new Map([[a.key, 10], [c.key, 29]]))
  t.same(plan.manifests.map((m) => m.id), [m1.id, m2.id])
  t.same(plan.objects.map((o) => o.key), [b.key, c.key, d.key])
  t.equal(plan.bytes, 90)
  t.same([plan.present, plan.presentBytes], [1, 10])
  t.same(lagOf(plan, new Date('2026-11-27T01:10:00Z')), { seconds: 3600, bytes: 90, backups: 2 }, 'lag counts from the oldest missing backup')
  t.same(lagOf(planReplication([], new Map()), new Date()), { seconds: 0, bytes: 0, backups: 0 })
})
