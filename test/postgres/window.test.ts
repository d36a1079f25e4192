/**
 * The recovery window and the restore plan: pure functions, table-driven. Segments
 * are 1 MiB; `L(s, off)` is the LSN at byte `off` of segment `s`.
 */
import t from 'tap'
import { isTidemarkError } from '../../src/errors.ts'
import type { Heartbeat } from '../../src/engine/postgres/heartbeats.ts'
import { planRestore } from '../../src/engine/postgres/restore-plan.ts'
import { backupWindow, newestTimeline, segmentTimeline, timelinePath, timeWindows, type ArchiveView, type TimelineArchive, type WindowBackup } from '../../src/engine/postgres/window.ts'

const MiB = 1 << 20
const L = (s: number, off = 0) => BigInt(s) * BigInt(MiB) + BigInt(off)
const S = (t0: number) => BigInt(t0) * 1_000_000n // seconds → µs
const range = (a: number, b: number) => new Set(Array.from({ length: b - a + 1 }, (_, i) => BigInt(a + i)))
const hb = (sec: number, seg: number, off = 0x100): Heartbeat => ({ us: S(sec), lsn: L(seg, off) })

function view(timelines: Record<number, Partial<TimelineArchive>>): ArchiveView {
  const m = new Map<number, TimelineArchive>()
  for (const [k, v] of Object.entries(timelines)) m.set(Number(k), { segments: new Set(), heartbeats: [], ...v })
  return { segSize: MiB, timelines: m }
}

const A: WindowBackup = { id: 'A', timeline: 1, startLsn: L(2, 0x28), stopLsn: L(3, 0x100), endUs: S(100) }
const B: WindowBackup = { id: 'B', timeline: 1, startLsn: L(6, 0x28), stopLsn: L(7, 0x80), endUs: S(200) }

interface Case {
  name: string
  archive: ArchiveView
  backup: WindowBackup
  want: { restorable: boolean; timeline?: number; to?: bigint | undefined; coverageEnd?: bigint; firstMissing?: string; reason?: RegExp }
}

const cases: Case[] = [
  {
    name: 'contiguous WAL: from the backup end to just before the newest covered heartbeat',
    archive: view({ 1: { segments: range(2, 9), heartbeats: [hb(90, 2), hb(150, 5), hb(180, 9), hb(300, 11)] } }),
    backup: A,
    want: { restorable: true, timeline: 1, to: S(180) - 1n, coverageEnd: L(10), firstMissing: '00000001000000000000000A' },
  },
  {
    name: 'a gap ends the window: heartbeats after it do not count',
    archive: view({ 1: { segments: new Set([...range(2, 5), ...range(7, 12)]), heartbeats: [hb(150, 4), hb(170, 5), hb(250, 11)] } }),
    backup: A,
    want: { restorable: true, to: S(170) - 1n, coverageEnd: L(6), firstMissing: '000000010000000000000006' },
  },
  {
    name: 'a heartbeat whose commit ends past the covered LSN does not count',
    archive: view({ 1: { segments: range(2, 5), heartbeats: [hb(150, 4), hb(170, 5, MiB - 1), hb(171, 6, 0x10)] } }),
    backup: A,
    want: { restorable: true, to: S(170) - 1n, coverageEnd: L(6) },
  },
  {
    name: 'the newest upload of the open segment extends coverage as far as it is proven',
    archive: view({ 1: { segments: range(2, 5), partial: { segno: 6n, coversLsn: L(6, 0x5000) }, heartbeats: [hb(150, 5), hb(160, 6, 0x4000), hb(170, 6, 0x6000)] } }),
    backup: A,
    want: { restorable: true, to: S(160) - 1n, coverageEnd: L(6, 0x5000) },
  },
  {
    name: 'an upload of another segment than the first missing one does not help',
    archive: view({ 1: { segments: range(2, 5), partial: { segno: 7n, coversLsn: L(7, 0x5000) }, heartbeats: [hb(150, 5), hb(160, 7, 0x4000)] } }),
    backup: A,
    want: { restorable: true, to: S(150) - 1n, coverageEnd: L(6) },
  },
  {
    name: 'heartbeats from before the backup ended do not bound its window',
    archive: view({ 1: { segments: range(2, 5), heartbeats: [hb(90, 3), hb(99, 4)] } }),
    backup: A,
    want: { restorable: true, to: undefined, coverageEnd: L(6) },
  },
  {
    name: 'a segment missing between start and stop: not restorable',
    archive: view({ 1: { segments: new Set([2n, 4n, 5n]), heartbeats: [hb(150, 5)] } }),
    backup: A,
    want: { restorable: false, reason: /000000010000000000000003.*not archived/ },
  },
  {
    name: 'the stop segment only partially uploaded, far enough: restorable',
    archive: view({ 1: { segments: new Set([2n]), partial: { segno: 3n, coversLsn: L(3, 0x200) }, heartbeats: [hb(120, 3, 0x180)] } }),
    backup: A,
    want: { restorable: true, to: S(120) - 1n, coverageEnd: L(3, 0x200) },
  },
  {
    name: 'a new timeline: recovery follows it; segments from its start come from it; the old timeline\'s later heartbeats do not count',
    archive: view({
      1: { segments: range(2, 9), heartbeats: [hb(150, 4), hb(160, 8)] },
      2: { segments: range(5, 7), history: [{ parentTimeline: 1, switchLsn: L(5, 0x100), reason: '' }], heartbeats: [hb(170, 5, 0x200), hb(175, 7)] },
    }),
    backup: A,
    want: { restorable: true, timeline: 2, to: S(175) - 1n, coverageEnd: L(8), firstMissing: '000000020000000000000008' },
  },
  {
    name: 'a new timeline without its first segment: coverage stops at the switch segment',
    archive: view({
      1: { segments: range(2, 9), heartbeats: [hb(150, 4)] },
      2: { segments: range(6, 7), history: [{ parentTimeline: 1, switchLsn: L(5, 0x100), reason: '' }], heartbeats: [hb(175, 7)] },
    }),
    backup: A,
    want: { restorable: true, timeline: 2, to: S(150) - 1n, coverageEnd: L(5), firstMissing: '000000020000000000000005' },
  },
  {
    name: 'a backup taken on the old timeline after the branch: not on the path recovery follows',
    archive: view({
      1: { segments: range(2, 9) },
      2: { segments: range(5, 9), history: [{ parentTimeline: 1, switchLsn: L(5, 0x100), reason: '' }] },
    }),
    backup: B,
    want: { restorable: false, timeline: 2, reason: /timeline 2, which recovery follows/ },
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const w = backupWindow(c.backup, c.archive)
    t.equal(w.restorable, c.want.restorable, 'restorable')
    if (c.want.timeline !== undefined) t.equal(w.timeline, c.want.timeline, 'timeline')
    if ('to' in c.want) t.equal(w.to, c.want.to, 'latest time')
    if (c.want.coverageEnd !== undefined) t.equal(w.coverageEnd, c.want.coverageEnd, 'coverage end')
    if (c.want.firstMissing !== undefined) t.equal(w.firstMissing, c.want.firstMissing, 'first missing')
    if (c.want.reason) t.match(w.reason, c.want.reason)
    if (w.restorable) t.equal(w.from, c.backup.endUs, 'the window starts at the backup end')
  })
}

t.test('timeline probing stops at the first missing history, as PostgreSQL does', async (t) => {
  const h = (p: number) => ({ history: [{ parentTimeline: p, switchLsn: L(5), reason: '' }] })
  t.equal(newestTimeline(1, view({ 1: {}, 2: h(1), 4: h(2) })), 2)
  t.equal(newestTimeline(1, view({ 1: {}, 3: h(1) })), 1)
  t.equal(newestTimeline(2, view({ 2: h(1), 3: h(2) })), 3)
  const path = timelinePath(3, view({ 3: { history: [{ parentTimeline: 1, switchLsn: L(5, 1), reason: '' }, { parentTimeline: 2, switchLsn: L(9, 2), reason: '' }] } }))
  t.same(path, [{ timeline: 1, begin: 0n, end: L(5, 1) }, { timeline: 2, begin: L(5, 1), end: L(9, 2) }, { timeline: 3, begin: L(9, 2), end: undefined }])
  t.same([4, 5, 6, 9, 10].map((s) => segmentTimeline(path, BigInt(s), MiB)), [1, 2, 2, 3, 3], 'a segment comes from the newest timeline begun at or before it')
})

t.test('windows of several backups merge; a gap splits them', async (t) => {
  const contiguous = view({ 1: { segments: range(2, 12), heartbeats: [hb(150, 5), hb(250, 11)] } })
  t.same(timeWindows([backupWindow(A, contiguous), backupWindow(B, contiguous)]), [{ timeline: 1, from: S(100), to: S(250) - 1n, backups: ['A', 'B'] }])
  const gap = view({ 1: { segments: new Set([...range(2, 4), ...range(6, 12)]), heartbeats: [hb(150, 4), hb(250, 11)] } })
  t.same(timeWindows([backupWindow(A, gap), backupWindow(B, gap)]), [
    { timeline: 1, from: S(100), to: S(150) - 1n, backups: ['A'] },
    { timeline: 1, from: S(200), to: S(250) - 1n, backups: ['B'] },
  ])
})

t.test('the restore plan', async (t) => {
  const archive = view({ 1: { segments: range(2, 12), heartbeats: [hb(150, 5), hb(250, 11)] } })
  const windows = [backupWindow(A, archive), backupWindow(B, archive)]
  const code = (f: () => unknown) => {
    try {
      f()
      return 'ok'
    } catch (err) {
      return isTidemarkError(err) ? `${err.code} ${err.message}` : String(err)
    }
  }
  t.equal(planRestore(windows, S(220)).backupId, 'B', 'after the newer backup ended: the newer backup')
  t.equal(planRestore(windows, S(200)).backupId, 'B', 'exactly at its end: the newer backup (inclusive)')
  t.equal(planRestore(windows, S(200) - 1n).backupId, 'A', 'while the newer backup ran: the older one')
  t.equal(planRestore(windows, S(100)).backupId, 'A', 'at the older backup\'s end')
  t.match(code(() => planRestore(windows, S(100) - 1n)), /^TM_ERR_RESTORE_OUT_OF_WINDOW .*before the earliest restorable time 1970-01-01T00:01:40.000000Z.*to 1970-01-01T00:04:09.999999Z/)
  t.equal(planRestore(windows, S(250) - 1n).backupId, 'B', 'the last provable microsecond')
  t.match(code(() => planRestore(windows, S(250))), /^TM_ERR_RESTORE_OUT_OF_WINDOW .*after the latest restorable time 1970-01-01T00:04:09.999999Z/)
  const latest = planRestore(windows, 'latest')
  t.equal(latest.backupId, 'B', 'latest: the newest of those reaching furthest')
  t.equal(latest.expectedEnd, S(250) - 1n)
  t.match(code(() => planRestore([], 'latest')), /^TM_ERR_RESTORE_NO_BACKUP .*tidemark backup postgres/)
  const broken = view({ 1: { segments: new Set([2n]) } })
  t.match(code(() => planRestore([backupWindow(A, broken)], S(120))), /^TM_ERR_RESTORE_NO_BACKUP .*A: WAL segment 000000010000000000000003/)
  const gap = view({ 1: { segments: new Set([...range(2, 4), ...range(6, 12)]), heartbeats: [hb(150, 4), hb(250, 11)] } })
  t.match(code(() => planRestore([backupWindow(A, gap), backupWindow(B, gap)], S(180))), /^TM_ERR_RESTORE_OUT_OF_WINDOW .*falls in a gap/)
})
