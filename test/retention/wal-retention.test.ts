import t from 'tap'
import { planWalRemoval, type KeptBase } from '../../src/engine/postgres/wal-retention.ts'
import { partialDataKey, walDataKey, walRefKey, partialKey, heartbeatsKey } from '../../src/engine/postgres/wal-format.ts'

const SYS = '7300000000000000001'
const OTHER = '7300000000000000002'
const MB16 = 16 * 1024 * 1024
const seg = (tl: number, n: number) => `${tl.toString(16).toUpperCase().padStart(8, '0')}00000000${n.toString(16).toUpperCase().padStart(8, '0')}`
/** Both keys of an archived segment. */
const both = (sys: string, name: string) => [walDataKey(sys, name), walRefKey(sys, name)]
const base = (timeline: number, segno: number, sys = SYS, offset = 0x28): KeptBase => ({ systemId: sys, timeline, startLsn: BigInt(segno * MB16 + offset), walSegSize: MB16 })
const removedNames = (keys: string[]) => [...new Set(keys.map((k) => k.split('/').pop()!.replace('.ref.json', '')))].sort()

const archive = [
  ...[1, 2, 3, 4, 5].flatMap((n) => both(SYS, seg(1, n))),
  ...both(SYS, '00000002.history'),
  ...[4, 5, 6].flatMap((n) => both(SYS, seg(2, n))),
  ...[1, 2].flatMap((n) => both(OTHER, seg(1, n))),
  partialKey(SYS, 2), heartbeatsKey(SYS, 1), heartbeatsKey(SYS, 2),
]

const cases: { name: string; kept: KeptBase[]; current?: [string, string][]; extra?: string[]; removed: string[] }[] = [
  { name: 'no kept base backup: nothing goes', kept: [], removed: [] },
  { name: 'base in segment 3 on TL1: segments 1-2 of TL1 go, the segment holding the start stays', kept: [base(1, 3)], removed: [seg(1, 1), seg(1, 2)] },
  { name: 'a start exactly on a segment boundary: the segment before it ends at the start and goes', kept: [base(1, 3, SYS, 0)], removed: [seg(1, 1), seg(1, 2)] },
  { name: 'the oldest kept base decides', kept: [base(1, 4), base(1, 2)], removed: [seg(1, 1)] },
  { name: 'TL2 horizon from the TL1 base; TL2 WAL after it stays', kept: [base(1, 5)], removed: [seg(1, 1), seg(1, 2), seg(1, 3), seg(1, 4), seg(2, 4)] },
  { name: 'a base on TL2 only: TL1 falls back to the cluster horizon', kept: [base(2, 6)], removed: [seg(1, 1), seg(1, 2), seg(1, 3), seg(1, 4), seg(1, 5), seg(2, 4), seg(2, 5)] },
  { name: 'another cluster with no kept base keeps all its WAL', kept: [base(1, 2)], removed: [seg(1, 1)] },
  { name: 'each cluster its own horizon', kept: [base(1, 2), base(1, 2, OTHER)], removed: [seg(1, 1), seg(1, 1)] },
  {
    name: 'superseded uploads of the open segment go, the current one stays',
    kept: [],
    current: [[`${SYS}/2`, partialDataKey(SYS, seg(2, 7), 'bbbbbbbbbbbbbbbb')]],
    extra: [partialDataKey(SYS, seg(2, 6), 'aaaaaaaaaaaaaaaa'), partialDataKey(SYS, seg(2, 7), 'bbbbbbbbbbbbbbbb')],
    removed: [`${seg(2, 6)}.partial.aaaaaaaaaaaaaaaa`],
  },
  {
    name: 'an unreadable pointer keeps every upload',
    kept: [],
    current: [[`${SYS}/2`, '*']],
    extra: [partialDataKey(SYS, seg(2, 6), 'aaaaaaaaaaaaaaaa')],
    removed: [],
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const keys = [...archive, ...(c.extra ?? [])]
    const out = planWalRemoval({ keys, currentPartials: new Map(c.current ?? []), kept: c.kept })
    t.same(removedNames(out), [...new Set(c.removed)].sort())
    for (const k of out) t.notOk(/history|partial\.json|heartbeats/.test(k), `never removed: ${k}`)
    const segs = out.filter((k) => !k.includes('.partial.'))
    t.equal(segs.length % 2, 0, 'a segment goes with its record')
    const firstData = segs.findIndex((k) => !k.endsWith('.ref.json'))
    t.ok(firstData === -1 || segs.slice(firstData).every((k) => !k.endsWith('.ref.json')), 'records come before data objects')
  })
}

t.test('the OTHER cluster case removes its own segment 1 only', async (t) => {
  const out = planWalRemoval({ keys: archive, currentPartials: new Map(), kept: [base(1, 2, OTHER)] })
  t.same(out.sort(), both(OTHER, seg(1, 1)).sort())
})
