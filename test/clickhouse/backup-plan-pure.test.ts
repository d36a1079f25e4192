import t from 'tap'
import { MAX_DELTAS, planBackup, resolveCheck, reusedEntry, tableUnit, type BackupUnit, type PlannedUnit } from '../../src/engine/clickhouse/backup-plan.ts'
import type { PartRow } from '../../src/engine/clickhouse/fingerprint.ts'
import { assembleManifest, backupStats } from '../../src/engine/clickhouse/backup-manifest.ts'
import { combineDigests, isChObject, type ChObject } from '../../src/engine/clickhouse/manifest.ts'
import { encodeSegment, objectKey } from '../../src/engine/clickhouse/object-keys.ts'
import type { EarlierSet } from '../../src/engine/clickhouse/previous.ts'
import { newestIds } from '../../src/engine/repository/index.ts'
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
/** Earlier objects as previousObjects gives them: newest first, each its own set unless grouped. */
const sets = (objects: ChObject[], fromJournal = false): EarlierSet[] =>
  [...objects].sort((a, b) => (a.writtenBy < b.writtenBy ? 1 : -1)).map((o) => ({ objects: [o], fingerprint: o.fingerprint, fromJournal }))
const part = (name: string, rows: number): PartRow => {
  const [, lo, hi] = name.split('_')
  return { name, rows, minBlock: lo as string, maxBlock: hi as string, dataVersion: lo as string }
}
const show = (p: PlannedUnit) =>
  p.action === 'reuse' ? `reuse ${p.set.objects.map((o) => o.writtenBy).join('+')}` : p.action === 'check' ? `check ${p.candidates.length}` : p.action === 'append' ? `append ${p.added.parts.join(',')} after ${p.added.afterBlock}` : `export ${p.reason}`

// Each case: units now, objects of earlier backups, options → the action per unit (and which object is reused).
const cases: { what: string; units: BackupUnit[]; previous: ChObject[]; journal?: boolean; full?: boolean; expect: string[] }[] = [
  { what: 'nothing earlier: export', units: [unit('1', fp('1-1', 10))], previous: [], expect: ['export new'] },
  { what: 'same fingerprint: reuse', units: [unit('1', fp('1-1', 10))], previous: [obj('1', fp('1-1', 10), B1)], expect: [`reuse ${B1}`] },
  { what: '--full: export even when unchanged', units: [unit('1', fp('1-1', 10))], previous: [obj('1', fp('1-1', 10), B1)], full: true, expect: ['export full'] },
  { what: 'insert moved the block span: export', units: [unit('1', fp('1-5', 11))], previous: [obj('1', fp('1-1', 10), B1)], expect: ['export changed'] },
  { what: 'only the mutation version moved: check the digest', units: [unit('1', fp('1-1', 10, 7))], previous: [obj('1', fp('1-1', 10), B1)], expect: ['check 1'] },
  { what: 'mutation, the old object has no digest: still a check (the mutation log may prove it)', units: [unit('1', fp('1-1', 10, 7))], previous: [obj('1', fp('1-1', 10), B1, { digest: null })], expect: ['check 1'] },
  { what: 'another incarnation of the table (dropped and created again): export', units: [unit('1', fp('1-1', 10), { tableIdentity: 'm2' })], previous: [obj('1', fp('1-1', 10), B1)], expect: ['export new'] },
  { what: 'another partition or table does not count', units: [unit('2', fp('1-1', 10))], previous: [obj('1', fp('1-1', 10), B1), obj('2', fp('1-1', 10), B1, { table: 'other' })], expect: ['export new'] },
  { what: 'several earlier objects with the fingerprint: the newest', units: [unit('1', fp('1-1', 10))], previous: [obj('1', fp('1-1', 10), B1), obj('1', fp('1-1', 10), B2)], expect: [`reuse ${B2}`] },
  {
    what: 'only parts above the earlier highest block were added: a delta of those',
    units: [unit('1', fp('1-5', 12), { partRows: [part('1_1_3_1', 10), part('1_5_5_0', 2)] })],
    previous: [obj('1', fp('1-3', 10), B1)],
    expect: ['append 1_5_5_0 after 3'],
  },
  {
    what: 'a merge across the earlier highest block: export whole',
    units: [unit('1', fp('1-5', 12), { partRows: [part('1_1_5_2', 12)] })],
    previous: [obj('1', fp('1-3', 10), B1)],
    expect: ['export changed'],
  },
  {
    what: 'the old parts lost rows (a deduplicating merge): export whole',
    units: [unit('1', fp('1-5', 12), { partRows: [part('1_1_3_2', 9), part('1_5_5_0', 3)] })],
    previous: [obj('1', fp('1-3', 10), B1)],
    expect: ['export changed'],
  },
  {
    what: 'new parts and a mutation: export whole',
    units: [unit('1', fp('1-5', 12, 6), { partRows: [part('1_1_3_1', 10), part('1_5_5_0', 2)] })],
    previous: [obj('1', fp('1-3', 10), B1)],
    expect: ['export changed'],
  },
  {
    what: 'an object known only from a journal is no base for a delta',
    units: [unit('1', fp('1-5', 12), { partRows: [part('1_1_3_1', 10), part('1_5_5_0', 2)] })],
    previous: [obj('1', fp('1-3', 10), B1)],
    journal: true,
    expect: ['export changed'],
  },
  {
    what: 'partitions decided one by one',
    units: [unit('1', fp('1-1', 10)), unit('2', fp('2-9', 3)), unit('3', fp('3-3', 10, 9))],
    previous: [obj('1', fp('1-1', 10), B1), obj('2', fp('2-2', 3), B1), obj('3', fp('3-3', 10), B1)],
    expect: [`reuse ${B1}`, 'export changed', 'check 1'],
  },
]

for (const c of cases) {
  t.test(c.what, async (t) => {
    const plan = planBackup(c.units, sets(c.previous, c.journal), { full: c.full ?? false })
    t.same(plan.map(show), c.expect)
  })
}

t.test('a partition with deltas: reused as a whole, given another delta, and exported whole after MAX_DELTAS', async (t) => {
  // A base of blocks 1–3 (10 rows) and `deltas` deltas of one block and one row each.
  const top = (deltas: number) => 3 + deltas
  const chain = (deltas: number): EarlierSet => {
    const f = fp(`1-${top(deltas)}`, 10 + deltas)
    const objects = [obj('1', f, B1), ...Array.from({ length: deltas }, (_, i) => obj('1', f, B2, { rows: 1, afterBlock: String(3 + i), key: `d${i}` }))]
    return { objects, fingerprint: f, fromJournal: false }
  }
  t.same(planBackup([unit('1', fp('1-5', 12))], [chain(2)], { full: false }).map(show), [`reuse ${B1}+${B2}+${B2}`], 'unchanged: every object of the set')
  const grown = (deltas: number) => unit('1', fp(`1-${top(deltas) + 5}`, 11 + deltas), { partRows: [part(`1_1_${top(deltas)}_2`, 10 + deltas), part(`1_${top(deltas) + 5}_${top(deltas) + 5}_0`, 1)] })
  t.same(planBackup([grown(2)], [chain(2)], { full: false }).map(show), ['append 1_10_10_0 after 5'])
  t.same(planBackup([grown(MAX_DELTAS - 1)], [chain(MAX_DELTAS - 1)], { full: false }).map(show), [`append 1_${top(MAX_DELTAS - 1) + 5}_${top(MAX_DELTAS - 1) + 5}_0 after ${top(MAX_DELTAS - 1)}`], `up to ${MAX_DELTAS} deltas`)
  t.same(planBackup([grown(MAX_DELTAS)], [chain(MAX_DELTAS)], { full: false }).map(show), ['export changed'], 'then whole again')

  // A background merge joined the last delta's part with a new one: the delta before it is the boundary.
  const across = unit('1', fp('1-9', 13), { partRows: [part('1_1_4_2', 11), part('1_5_9_1', 2)] })
  const [append] = planBackup([across], [chain(2)], { full: false })
  t.same(append && show(append), 'append 1_5_9_1 after 4')
  t.equal(append?.action === 'append' ? append.base.objects.length : 0, 2, 'the base and the first delta are kept; the second is folded into the new delta')

  const mutated = unit('1', fp('1-5', 12, 9))
  const [check] = planBackup([mutated], [chain(2)], { full: false })
  if (check?.action !== 'check') throw new Error('expected a check')
  t.match(resolveCheck(check, { measured: { rows: 12, digest: String(42 * 3) } }), { action: 'reuse', proof: 'digest' }, "a mutation that touched nothing: the set's summed digest matches")
})

t.test('a check reuses only an object with the same rows and digest, and records the new fingerprint', async (t) => {
  const u = unit('1', fp('1-1', 10, 7))
  const [check] = planBackup([u], sets([obj('1', fp('1-1', 10), B1, { digest: '42' }), obj('1', fp('1-1', 10, 3), B2, { digest: '43' })]), { full: false })
  if (check?.action !== 'check') throw new Error('expected a check')
  t.equal(check.candidates.length, 2)
  const same = resolveCheck(check, { measured: { rows: 10, digest: '42' } })
  t.match(same, { action: 'reuse', proof: 'digest', set: { objects: [{ writtenBy: B1 }] } })
  if (same.action === 'reuse') t.equal(reusedEntry(same.set.objects[0] as ChObject, u).fingerprint, u.fingerprint)
  t.match(resolveCheck(check, { measured: { rows: 10, digest: '44' } }), { action: 'export', reason: 'changed' })
  t.match(resolveCheck(check, { measured: { rows: 9, digest: '42' } }), { action: 'export' }, 'rows must match too')
  t.match(resolveCheck(check, {}), { action: 'export' }, 'no proof that the digest covers the parts: export')
})

t.test('a check reuses a set the mutation log proves unchanged, asked with its lowest block and the new mutation version', async (t) => {
  const u = unit('1', fp('3-8', 10, 12))
  const [check] = planBackup([u], sets([obj('1', fp('3-8', 10), B1, { digest: null })]), { full: false })
  if (check?.action !== 'check') throw new Error('expected a check')
  const asked: string[] = []
  const yes = resolveCheck(check, { deletesOnly: (lo, hi) => (asked.push(`${lo}..${hi}`), true) })
  t.match(yes, { action: 'reuse', proof: 'deletes', set: { objects: [{ writtenBy: B1 }] } })
  t.same(asked, ['3..12'])
  t.match(resolveCheck(check, { deletesOnly: () => false }), { action: 'export', reason: 'changed' }, 'no proof and no digest: export')
  t.match(resolveCheck(check, { deletesOnly: () => false, measured: { rows: 10, digest: '42' } }), { action: 'export' }, 'a digest is compared only with a recorded one')
})

t.test('non-MergeTree tables: one unit, the digest is part of the fingerprint, an empty one has none', async (t) => {
  const lg = { database: 'ls', name: 'lg', columns: [{ name: 'k', type: 'String', defaultKind: '', defaultExpression: '' }] } as TableInfo
  const a = tableUnit(lg, 'm1', { rows: 2, digest: '123' })
  t.match(a, { partitionId: 'all', kind: 'table', rows: 2, digest: '123', fingerprint: /^t1-r2-c[0-9a-f]{16}-d123$/ })
  t.not(tableUnit(lg, 'm1', { rows: 2, digest: '124' })?.fingerprint, a?.fingerprint)
  t.equal(tableUnit(lg, 'm1', { rows: 0, digest: '0' }), undefined)
  const plan = planBackup([a as BackupUnit], sets([obj('all', a?.fingerprint as string, B1, { table: 'lg' })]), { full: false })
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
  t.same(backupStats([{ objects: [a], written: [a], how: 'exported' }, { objects: [b], written: [], how: 'reused-by-digest' }], 9), {
    partitionsTotal: 2, partitionsExported: 1, partitionsAppended: 0, partitionsReused: 1, partitionsReusedByDigest: 1, partitionsReusedAfterDeletes: 0, rows: 15, rawBytes: 150, storedBytes: 15, exportedRawBytes: 100, exportedStoredBytes: 10, durationMs: 9,
  })
  const delta = obj('1', fp('1-1', 7), B2, { rows: 2, rawSize: 20, size: 2, afterBlock: '1' })
  t.same(backupStats([{ objects: [b, delta], written: [delta], how: 'appended' }], 1), {
    partitionsTotal: 1, partitionsExported: 1, partitionsAppended: 1, partitionsReused: 0, partitionsReusedByDigest: 0, partitionsReusedAfterDeletes: 0, rows: 7, rawBytes: 70, storedBytes: 7, exportedRawBytes: 20, exportedStoredBytes: 2, durationMs: 1,
  }, 'a delta: one partition exported, only the delta written')
  const m = assembleManifest(
    { id: B2, startedAt: new Date('2024-01-02T00:00:00Z'), endedAt: new Date('2024-01-02T00:00:05Z'), full: false, endpoint: 'h:1', catalog: { serverVersion: '18.16.1', databases: [], tables: [] } },
    [{ objects: [a], written: [a], how: 'exported' }, { objects: [b], written: [], how: 'reused' }],
  )
  t.match(m, { source: 'clickhouse', method: 'clickhouse-logical', serverVersion: '18.16.1', endedAt: '2024-01-02T00:00:05.000Z', stats: { durationMs: 5000 } })
  t.same(m.objects.map((o) => o.partitionId), ['1', '2'], 'objects in unit order')
  t.ok(m.objects.every(isChObject))
  t.notOk(isChObject({ key: 'k', size: 1, sha256: 'x', rawSize: 1, codec: 'zstd', chunkSize: 1, chunks: 1 }))
})
