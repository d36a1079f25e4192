import t from 'tap'
import { applyRetention, applyWalRetention, isoWeek, type BackupSummary, type RetentionPolicy } from '../../src/engine/retention.ts'
import { TidemarkError } from '../../src/errors.ts'

const NONE: RetentionPolicy = { keepLast: 0, keepDaily: 0, keepWeekly: 0, minAgeHours: 0 }
const pol = (p: Partial<RetentionPolicy>): RetentionPolicy => ({ ...NONE, ...p })

let n = 0
/** A backup that ended at `at`; ids sort by time like real ones. */
function b(at: string, source = 'clickhouse'): BackupSummary {
  const stamp = new Date(at).toISOString().replace(/[-:]/g, '').replace(/\.(\d{3})Z$/, 'Z')
  return { id: `${stamp}-${source === 'clickhouse' ? 'ch' : 'pg'}-${(n++).toString(16).padStart(4, '0')}`, source, endedAt: at }
}

interface Row {
  name: string
  now: string
  policy: Partial<RetentionPolicy>
  backups: BackupSummary[]
  /** endedAt of the kept backups, with one expected reason each (a substring). */
  keep: Record<string, string>
}

const src = (at: string, source: string) => b(at, source)

const rows: Row[] = [
  {
    name: 'keep the last N',
    now: '2026-11-28T12:00:00Z',
    policy: { keepLast: 2 },
    backups: ['2026-11-20T00:00:00Z', '2026-11-21T00:00:00Z', '2026-11-22T00:00:00Z', '2026-11-23T00:00:00Z'].map((a) => b(a)),
    keep: { '2026-11-23T00:00:00Z': 'last 1 of 2', '2026-11-22T00:00:00Z': 'last 2 of 2' },
  },
  {
    name: 'daily: the newest of each UTC day; a day starts at 00:00:00.000 exactly',
    now: '2026-11-28T09:40:00Z',
    policy: { keepDaily: 2 },
    backups: ['2026-11-26T00:00:00.000Z', '2026-11-27T12:00:00Z', '2026-11-27T23:59:59.999Z', '2026-11-28T00:00:00.000Z'].map((a) => b(a)),
    keep: { '2026-11-28T00:00:00.000Z': 'daily 2026-11-28', '2026-11-27T23:59:59.999Z': 'daily 2026-11-27' },
  },
  {
    name: 'daily at the exact start of a day: that day is the only one of a 1-day window',
    now: '2026-11-28T00:00:00.000Z',
    policy: { keepDaily: 1 },
    backups: ['2026-11-27T23:59:59.999Z', '2026-11-28T00:00:00.000Z'].map((a) => b(a)),
    keep: { '2026-11-28T00:00:00.000Z': 'daily 2026-11-28' },
  },
  {
    name: 'weekly: ISO weeks start on Monday 00:00 UTC',
    now: '2026-12-02T10:00:00Z', // a Wednesday
    policy: { keepWeekly: 2 },
    backups: ['2026-11-22T12:00:00Z', '2026-11-29T23:59:59.999Z', '2026-11-30T00:00:00.000Z', '2026-12-01T00:00:00Z'].map((a) => b(a)),
    keep: { '2026-12-01T00:00:00Z': 'weekly 2026-W49', '2026-11-29T23:59:59.999Z': 'weekly 2026-W48' },
  },
  {
    name: 'weekly across a year end (2027-01-01 is in 2026-W53)',
    now: '2027-01-05T00:00:00Z',
    policy: { keepWeekly: 2 },
    backups: ['2026-12-27T10:00:00Z', '2027-01-01T10:00:00Z', '2027-01-04T10:00:00Z'].map((a) => b(a)),
    keep: { '2027-01-04T10:00:00Z': 'weekly 2027-W01', '2027-01-01T10:00:00Z': 'weekly 2026-W53' },
  },
  {
    name: 'minimum age: exactly minAge old is not younger; one millisecond less is',
    now: '2026-11-28T12:00:00.000Z',
    policy: { minAgeHours: 24 },
    backups: ['2026-11-27T12:00:00.000Z', '2026-11-27T12:00:00.001Z'].map((a) => b(a)),
    keep: { '2026-11-27T12:00:00.001Z': 'younger than 24h' },
  },
  {
    name: 'a store with one backup, far older than every rule, kept by keepLast',
    now: '2026-11-28T12:00:00Z',
    policy: { keepLast: 1, keepDaily: 7, keepWeekly: 4, minAgeHours: 24 },
    backups: [b('2025-01-01T00:00:00Z')],
    keep: { '2025-01-01T00:00:00Z': 'newest backup of clickhouse' },
  },
  {
    name: 'each source is judged on its own',
    now: '2026-11-28T12:00:00Z',
    policy: { keepLast: 1 },
    backups: [src('2026-11-20T00:00:00Z', 'clickhouse'), src('2026-11-21T00:00:00Z', 'clickhouse'), src('2026-11-19T00:00:00Z', 'postgres')],
    keep: { '2026-11-21T00:00:00Z': 'last 1 of 1', '2026-11-19T00:00:00Z': 'newest backup of postgres' },
  },
  {
    name: 'a backup stamped in the future (clock skew) counts as today and as young',
    now: '2026-11-28T12:00:00Z',
    policy: { keepDaily: 1, minAgeHours: 1 },
    backups: ['2026-11-28T11:00:00Z', '2026-11-29T01:00:00Z'].map((a) => b(a)),
    keep: { '2026-11-29T01:00:00Z': 'daily 2026-11-28' },
  },
  {
    name: 'rules overlap: every reason is listed',
    now: '2026-11-28T12:00:00Z',
    policy: { keepLast: 1, keepDaily: 1, keepWeekly: 1, minAgeHours: 48 },
    backups: [b('2026-11-28T10:00:00Z')],
    keep: { '2026-11-28T10:00:00Z': 'last 1 of 1|daily 2026-11-28|weekly 2026-W48|younger than 48h|newest backup of clickhouse' },
  },
]

for (const row of rows) {
  t.test(row.name, async (t) => {
    const d = applyRetention(row.backups, pol(row.policy), new Date(row.now))
    const byId = new Map(row.backups.map((x) => [x.id, x.endedAt]))
    const kept = Object.fromEntries(d.keep.map((k) => [byId.get(k.id), k.reasons]))
    t.same(Object.keys(kept).sort(), Object.keys(row.keep).sort(), 'the kept set')
    for (const [at, reasons] of Object.entries(row.keep)) for (const r of reasons.split('|')) t.ok(kept[at]?.includes(r), `${at} kept for "${r}" (got ${JSON.stringify(kept[at])})`)
    t.equal(d.keep.length + d.remove.length, row.backups.length, 'every backup is decided once')
    for (const r of d.remove) t.match(r.reason, /no rule keeps it/)
    t.same(d.keep.map((k) => k.id), [...d.keep.map((k) => k.id)].sort(), 'sorted by id')
  })
}

t.test('a policy that would delete every backup is refused', async (t) => {
  const now = new Date('2026-11-28T12:00:00Z')
  t.throws(() => applyRetention([b('2026-11-28T11:00:00Z')], NONE, now), { code: 'TM_ERR_RETENTION_UNSAFE' })
  // Rules that exist but select nothing of a source: the safety net alone would keep one.
  const old = [b('2026-10-01T00:00:00Z'), b('2026-10-02T00:00:00Z')]
  const err = t.throws(() => applyRetention(old, pol({ keepDaily: 7 }), now)) as TidemarkError
  t.equal(err.code, 'TM_ERR_RETENTION_UNSAFE')
  t.match(err.message, 'would delete every clickhouse backup (2)')
  t.same(applyRetention([], NONE, now), { keep: [], remove: [] }, 'nothing to delete: nothing refused')
})

t.test('bad input is refused with a code', async (t) => {
  const now = new Date('2026-11-28T12:00:00Z')
  t.throws(() => applyRetention([b('2026-11-28T11:00:00Z')], pol({ keepLast: -1 }), now), { code: 'TM_ERR_CONFIG_INVALID' })
  t.throws(() => applyRetention([{ id: 'x', source: 'clickhouse', endedAt: 'yesterday' }], pol({ keepLast: 1 }), now), { code: 'TM_ERR_REPO_CORRUPT' })
})

t.test('ISO week labels', async (t) => {
  const cases: [string, string][] = [
    ['2021-01-03T23:59:59.999Z', '2020-W53'],
    ['2021-01-04T00:00:00.000Z', '2021-W01'],
    ['2024-12-30T00:00:00Z', '2025-W01'],
    ['2026-11-28T09:40:00Z', '2026-W48'],
    ['2027-01-01T00:00:00Z', '2026-W53'],
  ]
  for (const [at, week] of cases) t.equal(isoWeek(new Date(at)), week, at)
})

t.test('WAL: older than the oldest kept base backup start is removable, needed WAL never', async (t) => {
  const SEG = 0x1000000n
  // Keys like `000000010000000000000003` for segment 3 of timeline 1.
  const seg = (i: number) => `data/postgres/wal/00000001000000000000000${i}`
  const keys = [seg(1), seg(2), seg(3), seg(4), 'data/postgres/wal/00000002.history']
  const pos = (k: string) => {
    const m = /0000000(\d)$/.exec(k)
    if (!m || k.endsWith('.history')) return undefined
    const i = BigInt(m[1]!)
    return { start: i * SEG, end: (i + 1n) * SEG }
  }
  const rows: { name: string; starts: bigint[]; remove: string[] }[] = [
    { name: 'a base backup starting inside segment 3 needs 3 and after', starts: [3n * SEG + 40n, 4n * SEG], remove: [seg(1), seg(2)] },
    { name: 'a start exactly at a segment boundary needs that segment, not the one before', starts: [3n * SEG], remove: [seg(1), seg(2)] },
    { name: 'one byte into segment 1: nothing before it exists', starts: [SEG + 1n], remove: [] },
    { name: 'no kept base backup: nothing is removable', starts: [], remove: [] },
  ]
  for (const r of rows) {
    const d = applyWalRetention(keys, pos, r.starts)
    t.same(d.remove, r.remove, r.name)
    t.same([...d.keep, ...d.remove].sort(), [...keys].sort(), `${r.name}: every key decided`)
    t.ok(d.keep.includes('data/postgres/wal/00000002.history'), `${r.name}: history files are kept`)
  }
})
