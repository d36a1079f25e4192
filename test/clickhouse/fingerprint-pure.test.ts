import t from 'tap'
import { compareFingerprints, decodeFingerprint, fingerprint, type PartRow } from '../../src/engine/clickhouse/fingerprint.ts'
import { snapshotsFromParts } from '../../src/engine/clickhouse/partitions.ts'
import type { ColumnInfo } from '../../src/engine/clickhouse/catalog.ts'

const cols: ColumnInfo[] = [
  { name: 'd', type: 'Date', defaultKind: '', defaultExpression: '' },
  { name: 'k', type: 'UInt32', defaultKind: '', defaultExpression: '' },
]
const part = (name: string, rows: number, dataVersion?: number): PartRow => {
  const [, lo, hi] = name.split('_')
  return { name, rows, minBlock: Number(lo), maxBlock: Number(hi), dataVersion: dataVersion ?? Number(lo) }
}

// Each case: parts before, parts after, whether the content changed (must the fingerprint change?).
const cases: { what: string; before: PartRow[]; after: PartRow[]; afterCols?: ColumnInfo[]; changed: boolean; verdict?: string }[] = [
  { what: 'merge of adjacent parts', before: [part('p_1_1_0', 10), part('p_2_2_0', 5)], after: [part('p_1_2_1', 15)], changed: false },
  { what: 'merge across a gap left by another partition', before: [part('p_1_1_0', 10), part('p_3_3_0', 5)], after: [part('p_1_3_1', 15)], changed: false },
  { what: 'merge of a mutated part with a newer unmutated one', before: [part('p_1_3_1_5', 15, 5), part('p_6_6_0', 1)], after: [part('p_1_6_2_5', 16, 5)], changed: false },
  { what: 'insert', before: [part('p_1_1_0', 10)], after: [part('p_1_1_0', 10), part('p_4_4_0', 3)], changed: true },
  { what: 'insert then merge', before: [part('p_1_1_0', 10)], after: [part('p_1_4_1', 13)], changed: true },
  { what: 'mutation that deleted rows', before: [part('p_1_1_0', 10)], after: [part('p_1_1_0_2', 7, 2)], changed: true },
  { what: 'mutation that kept the row count (UPDATE, or a mutation that did not touch the partition)', before: [part('p_1_1_0', 10)], after: [part('p_1_1_0_2', 10, 2)], changed: true, verdict: 'mutated' },
  { what: 'deduplicating merge', before: [part('p_1_1_0', 10), part('p_2_2_0', 10)], after: [part('p_1_2_1', 12)], changed: true },
  { what: 'REPLACE/ATTACH PARTITION (new block numbers)', before: [part('p_1_1_0', 10)], after: [part('p_7_7_0', 10)], changed: true },
  { what: 'a part dropped or detached', before: [part('p_1_1_0', 10), part('p_2_2_0', 4)], after: [part('p_1_1_0', 10)], changed: true },
  { what: 'column added', before: [part('p_1_1_0', 10)], after: [part('p_1_1_0', 10)], afterCols: [...cols, { name: 'x', type: 'String', defaultKind: '', defaultExpression: '' }], changed: true },
  { what: 'column type changed', before: [part('p_1_1_0', 10)], after: [part('p_1_1_0', 10)], afterCols: [cols[0] as ColumnInfo, { name: 'k', type: 'UInt64', defaultKind: '', defaultExpression: '' }], changed: true },
  { what: 'default expression changed', before: [part('p_1_1_0', 10)], after: [part('p_1_1_0', 10)], afterCols: [cols[0] as ColumnInfo, { name: 'k', type: 'UInt32', defaultKind: 'DEFAULT', defaultExpression: '1' }], changed: true },
  { what: 'nothing', before: [part('p_1_1_0', 10)], after: [part('p_1_1_0', 10)], changed: false },
]

for (const c of cases) {
  t.test(c.what, async (t) => {
    const a = fingerprint(c.before, cols)
    const b = fingerprint(c.after, c.afterCols ?? cols)
    if (c.changed) t.not(a, b, 'fingerprint changes')
    else t.equal(a, b, 'fingerprint unchanged')
    t.equal(compareFingerprints(a, b), c.verdict ?? (c.changed ? 'changed' : 'same'))
  })
}

t.test('encoding round-trips and is safe in object names; unknown formats compare as changed', async (t) => {
  const fp = fingerprint([part('p_1_3_1_5', 15, 5), part('p_6_6_0', 9)], cols)
  t.match(fp, /^[a-z0-9-]+$/)
  t.same(decodeFingerprint(fp), { minBlock: 1n, maxBlock: 6n, rows: 24n, mutation: 5n, columns: fp.slice(-16) })
  t.equal(decodeFingerprint('f9-something'), undefined)
  t.equal(compareFingerprints(undefined, fp), 'changed')
  t.equal(compareFingerprints('garbage', fp), 'changed')
  t.equal(compareFingerprints(fp.replace('-m5-', '-m7-'), fp), 'changed', 'a lower version than before is not a later mutation')
  t.throws(() => fingerprint([], cols))
})

t.test('64-bit block numbers and row counts do not lose precision', async (t) => {
  const big = { name: 'p', rows: '9007199254740993', minBlock: '9007199254740993', maxBlock: '9007199254740995', dataVersion: '9007199254740993' }
  t.match(fingerprint([big], cols), /^f1-b9007199254740993-9007199254740995-r9007199254740993-m0-/)
})

t.test('snapshotsFromParts groups by partition and sums rows and bytes', async (t) => {
  const row = (pid: string, name: string, rows: number, lo: number, hi: number, dv: number) => ({
    partition_id: pid, partition: pid, name, rows: String(rows), min_block_number: String(lo), max_block_number: String(hi), data_version: String(dv), data_uncompressed_bytes: '100',
  })
  const snaps = snapshotsFromParts([row('b', 'b_2_2_0', 4, 2, 2, 2), row('a', 'a_3_3_0', 1, 3, 3, 3), row('a', 'a_1_1_0', 2, 1, 1, 1)], cols)
  t.same(snaps.map((s) => [s.partitionId, s.rows, s.bytes, s.parts]), [['a', 3, 200, ['a_1_1_0', 'a_3_3_0']], ['b', 4, 100, ['b_2_2_0']]])
  t.match(snaps[0]?.fingerprint, /^f1-b1-3-r3-m0-/)
})
