import t from 'tap'
import { planBackup, resolveCheck, reusedEntry, tableUnit, type BackupUnit } from '../../src/engine/clickhouse/backup-plan.ts'
import { assembleManifest, backupStats } from '../../src/engine/clickhouse/backup-manifest.ts'
import { combineDigests, isChObject, type ChObject } from '../../src/engine/clickhouse/manifest.ts'
import { encodeSegment, objectKey } from '../../src/engine/clickhouse/object-keys.ts'
import { newestIds } from '../../src/engine/clickhouse/previous.ts'
import { identityOf } from '../../src/engine/clickhouse/table-identity.ts'
import { checkKey } from '../../src/sinks/sink.ts'
import type { TableInfo } from '../../src/engine/clickhouse/catalog.ts'

const fp = (b: string, rows: number, m = 0) => `f1-b${b}-r${rows}-m${m}-c0123456789abcdef`
const unit = (partitionId: string, fingerprint: string, extra: Partial<BackupUnit> = {}): BackupUnit => ({
  database: 'ls', table: 'runs', partitionId, partition: partitionId, kind: 'partition', tableIdentity: 'm1', fingerprint, rows: 10, bytes: 100, parts: ['p'], ...extra,
})
const obj = (partitionId: string, fingerprint: string, writtenBy: string, extra: Partial<ChObject> = {}): ChObject => ({
  key: `data/clickhouse/ls/runs/${partitionId}/${fingerprint}-${writtenBy}.native`, size: 5, sha256: 'x', rawSize: 50, codec: 'zstd', chunkSize: 1, chunks: 1,
  database: 'ls', table: 'runs', partitionId, rows: 10, columns: ['a'], fingerprint, digest: '42', tableIdentity: 'm1', writtenBy, ...extra,
})
const B1 = '20240101T000000Z-ch-0001'
const B2 = '20240102T000000Z-ch-0002'

// Each case: units now, objects of earlier backups, options → the action per unit (and which object is reused).
const cases: { what: string; units: BackupUnit[]; previous: ChObject[]; full?: boolean; expect: string[] }[] = [
  { what: 'nothing earlier: export', units: [unit('1', fp('1-1', 10))], previous: [], expect: ['export new'] },
  { what: 'same fingerprint: reuse', units: [unit('1', fp('1-1', 10))], previous: [obj('1', fp('1-1', 10), B1)], expect: [`reuse ${B1}`] },
  { what: '--full: export even when unchanged', units: [unit('1', fp('1-1', 10))], previous: [obj('1', fp('1-1', 10), B1)], full: true, expect: ['export full'] },
  { what: 'insert moved the block span: export', units: [unit('1', fp('1-5', 11))], previous: [obj('1', fp('1-1', 10), B1)], expect: ['export changed'] },
  { what: 'only the mutation version moved: check the digest', units: [unit('1', fp('1-1', 10, 7))], previous: [obj('1', fp('1-1', 10), B1)], expect: ['check 1'] },
  { what: 'mutation but the old object has no digest: export', units: [unit('1', fp('1-1', 10, 7))], previous: [obj('1', fp('1-1', 10), B1, { digest: null })], expect: ['export changed'] },
  { what: 'another incarnation of the table (dropped and created again): export', units: [unit('1', fp('1-1', 10), { tableIdentity: 'm2' })], previous: [obj('1', fp('1-1', 10), B1)], expect: ['export new'] },
  { what: 'another partition or table does not count', units: [unit('2', fp('1-1', 10))], previous: [obj('1', fp('1-1', 10), B1), obj('2', fp('1-1', 10), B1, { table: 'other' })], expect: ['export new'] },
  { what: 'several earlier objects with the fingerprint: the newest', units: [unit('1', fp('1-1', 10))], previous: [obj('1', fp('1-1', 10), B1), obj('1', fp('1-1', 10), B2)], expect: [`reuse ${B2}`] },
  {
    what: 'partitions decided one by one',
    units: [unit('1', fp('1-1', 10)), unit('2', fp('2-9', 3)), unit('3', fp('3-3', 10, 9))],
    previous: [obj('1', fp('1-1', 10), B1), obj('2', fp('2-2', 3), B1), obj('3', fp('3-3', 10), B1)],
    expect: [`reuse ${B1}`, 'export changed', 'check 1'],
  },
]

for (const c of cases) {
  t.test(c.what, async (t) => {
    const plan = planBackup(c.units, c.previous, { full: c.full ?? false })
    t.same(plan.map((p) => (p.action === 'reuse' ? `reuse ${p.object.writtenBy}` : p.action === 'check' ? `check ${p.candidates.length}` : `export ${p.reason}`)), c.expect)
  })
}

t.test('a check reuses only an object with the same rows and digest, and records the new fingerprint', async (t) => {
  const u = unit('1', fp('1-1', 10, 7))
  const [check] = planBackup([u], [obj('1', fp('1-1', 10), B1, { digest: '42' }), obj('1', fp('1-1', 10, 3), B2, { digest: '43' })], { full: false })
  if (check?.action !== 'check') throw new Error('expected a check')
  t.equal(check.candidates.length, 2)
  const same = resolveCheck(check, { rows: 10, digest: '42' })
  t.match(same, { action: 'reuse', byDigest: true, object: { writtenBy: B1 } })
  if (same.action === 'reuse') t.equal(reusedEntry(same.object, u).fingerprint, u.fingerprint)
  t.match(resolveCheck(check, { rows: 10, digest: '44' }), { action: 'export', reason: 'changed' })
  t.match(resolveCheck(check, { rows: 9, digest: '42' }), { action: 'export' }, 'rows must match too')
  t.match(resolveCheck(check, undefined), { action: 'export' }, 'no proof that the digest covers the parts: export')
})

t.test('non-MergeTree tables: one unit, the digest is part of the fingerprint, an empty one has none', async (t) => {
  const lg = { database: 'ls', name: 'lg', columns: [{ name: 'k', type: 'String', defaultKind: '', defaultExpression: '' }] } as TableInfo
  const a = tableUnit(lg, 'm1', { rows: 2, digest: '123' })
  t.match(a, { partitionId: 'all', kind: 'table', rows: 2, digest: '123', fingerprint: /^t1-r2-c[0-9a-f]{16}-d123$/ })
  t.not(tableUnit(lg, 'm1', { rows: 2, digest: '124' })?.fingerprint, a?.fingerprint)
  t.equal(tableUnit(lg, 'm1', { rows: 0, digest: '0' }), undefined)
  const plan = planBackup([a as BackupUnit], [obj('all', a?.fingerprint as string, B1, { table: 'lg' })], { full: false })
  t.equal(plan[0]?.action, 'reuse')
})

t.test('object keys: unique per backup, safe for every name, valid Sink keys', async (t) => {
  t.equal(objectKey('ls', 'runs', '20240101', 'f1-b1-2-r3-m0-cabc', B1), `data/clickhouse/ls/runs/20240101/f1-b1-2-r3-m0-cabc-${B1}.native`)
  t.not(objectKey('ls', 'runs', '1', 'f', B1), objectKey('ls', 'runs', '1', 'f', B2))
  for (const name of ['.', '..', '.inner.mv', 'a/b', 'a%2Fb', 'été', 'sp ace', '`q`', '']) {
    const k = objectKey(name, name, name, 'f', B1)
    t.doesNotThrow(() => checkKey(k), name)
  }
  t.equal(encodeSegment('.inner.mv'), '%2Einner%2Emv')
  t.not(encodeSegment('a/b'), encodeSegment('a%2Fb'), 'injective: a literal % is encoded too')
  t.equal(encodeSegment('é'), '%C3%A9')
})

t.test('digests add up modulo 2^64; an unknown one makes the sum unknown', async (t) => {
  const max = (2n ** 64n - 1n).toString()
  t.same(combineDigests([{ rows: 1, digest: max }, { rows: 2, digest: '2' }]), { rows: 3, digest: '1' })
  t.same(combineDigests([{ rows: 1, digest: '5' }, { rows: 2, digest: null }]), { rows: 3, digest: null })
  t.same(combineDigests([]), { rows: 0, digest: '0' })
})

t.test('table identity, newest ids, stats and manifest assembly', async (t) => {
  t.equal(identityOf({ uuid: '00000000-0000-0000-0000-000000000000', mtime: '17' }), 'm17')
  t.equal(identityOf({ uuid: '5f1c2d3e-0000-4000-8000-000000000001', mtime: '17' }), 'u5f1c2d3e-0000-4000-8000-000000000001')
  t.same(newestIds(['20240101T000000Z-ch-ffff', '20240101T000001Z-ch-0002', '20240101T000001Z-ch-0001'].sort()), ['20240101T000001Z-ch-0001', '20240101T000001Z-ch-0002'])
  t.same(newestIds([]), [])
  const a = obj('2', fp('2-2', 10), B2, { rawSize: 100, size: 10 })
  const b = obj('1', fp('1-1', 5), B1, { rows: 5, rawSize: 50, size: 5 })
  t.same(backupStats([{ object: a, how: 'exported' }, { object: b, how: 'reused-by-digest' }], 9), {
    partitionsTotal: 2, partitionsExported: 1, partitionsReused: 1, partitionsReusedByDigest: 1, rows: 15, rawBytes: 150, storedBytes: 15, exportedRawBytes: 100, exportedStoredBytes: 10, durationMs: 9,
  })
  const m = assembleManifest(
    { id: B2, startedAt: new Date('2024-01-02T00:00:00Z'), endedAt: new Date('2024-01-02T00:00:05Z'), full: false, endpoint: 'h:1', catalog: { serverVersion: '18.16.1', databases: [], tables: [] } },
    [{ object: a, how: 'exported' }, { object: b, how: 'reused' }],
  )
  t.match(m, { source: 'clickhouse', method: 'clickhouse-logical', serverVersion: '18.16.1', endedAt: '2024-01-02T00:00:05.000Z', stats: { durationMs: 5000 } })
  t.same(m.objects.map((o) => o.partitionId), ['1', '2'], 'objects in unit order')
  t.ok(m.objects.every(isChObject))
  t.notOk(isChObject({ key: 'k', size: 1, sha256: 'x', rawSize: 1, codec: 'zstd', chunkSize: 1, chunks: 1 }))
})
