import t from 'tap'
import { planPrune, WAL_PREFIX, type PruneInput } from '../../src/engine/prune.ts'
import type { ManifestBase, ObjectRef } from '../../src/engine/repository/index.ts'

const NOW = new Date('2026-11-28T12:00:00.000Z')
const HOUR = 3_600_000
const ref = (key: string, size = 100): ObjectRef => ({ key, size, sha256: '0'.repeat(64), rawSize: size, codec: 'zstd', chunkSize: 1024, chunks: 1 })
const man = (id: string, keys: string[]): ManifestBase => ({
  format: 'tidemark-repository', version: 1, id, source: 'clickhouse', method: 'test', startedAt: NOW.toISOString(), endedAt: NOW.toISOString(), objects: keys.map((k) => ref(k)),
})
const obj = (key: string, agoMs: number, size = 100) => ({ key, size, lastModified: new Date(NOW.getTime() - agoMs) })

function input(p: Partial<PruneInput>): PruneInput {
  return { manifests: [], decision: { keep: [], remove: [] }, data: [], journals: [], locks: [], now: NOW, safetyMarginMs: HOUR, ...p }
}

t.test('the margin: an unreferenced object exactly as old as the margin is spared; one millisecond older goes', async (t) => {
  const plan = planPrune(input({ data: [obj('data/clickhouse/edge', HOUR), obj('data/clickhouse/old', HOUR + 1, 7)] }))
  t.same(plan.objects, [{ key: 'data/clickhouse/old', size: 7 }])
  t.same(plan.young, { objects: 1, bytes: 100 })
  t.equal(plan.bytes, 7)
})

t.test('referenced by a remaining manifest or a live journal: kept; by a removed manifest or a stale journal: swept', async (t) => {
  const plan = planPrune(input({
    manifests: [man('m1', ['data/clickhouse/a', 'data/clickhouse/b']), man('m2', ['data/clickhouse/a', 'data/clickhouse/c'])],
    decision: { keep: [{ id: 'm2', source: 'clickhouse', reasons: ['last 1 of 1'] }], remove: [{ id: 'm1', source: 'clickhouse', reason: 'no rule keeps it' }] },
    data: ['a', 'b', 'c', 'j', 's'].map((n) => obj(`data/clickhouse/${n}`, 10 * HOUR)),
    journals: [
      { info: obj('journal/clickhouse/live.json', 0), refs: ['data/clickhouse/j'] },
      { info: obj('journal/clickhouse/stale.json', 2 * HOUR), refs: ['data/clickhouse/s'] },
    ],
    locks: [{ key: 'locks/old.json', expiresAt: new Date(NOW.getTime() - HOUR - 1).toISOString() }, { key: 'locks/recent.json', expiresAt: new Date(NOW.getTime() - 1).toISOString() }],
  }))
  t.same(plan.manifests, [{ id: 'm1', source: 'clickhouse', key: 'manifests/clickhouse/m1.json', reason: 'no rule keeps it' }])
  t.same(plan.objects.map((o) => o.key), ['data/clickhouse/b', 'data/clickhouse/s'])
  t.same(plan.journals.map((j) => j.key), ['journal/clickhouse/stale.json'])
  t.same(plan.locks, ['locks/old.json'], 'a lock expired less than the margin ago stays')
})

t.test('continuous prefixes are swept only by their own rule', async (t) => {
  const wal = [`${WAL_PREFIX}1`, `${WAL_PREFIX}2`]
  const data = wal.map((k) => obj(k, 10 * HOUR))
  t.same(planPrune(input({ data })).objects, [])
  t.same(planPrune(input({ data, continuousRemovable: new Set([wal[0]!]) })).objects.map((o) => o.key), [wal[0]])
  t.same(planPrune(input({ data, continuous: [] })).objects.map((o) => o.key), wal, 'with no continuous prefix, WAL is ordinary data')
})
