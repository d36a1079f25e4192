import t from 'tap'
import {
  classifyWalName, findGaps, formatLsn, historyFileName, nextSegmentName, parseHistory, parseLsn,
  parseSegmentName, partialName, segmentOf, segmentRange, segmentStartLsn, walFileName,
} from '../../src/engine/postgres/wal.ts'

const MiB = 1 << 20
const SEG16 = 16 * MiB

t.test('LSN parse and format round-trip', async (t) => {
  const cases: Array<[string, bigint, string]> = [
    ['16/B374D848', 0x16b374d848n, '16/B374D848'],
    ['0/0', 0n, '0/0'],
    ['0/2000028', 0x2000028n, '0/2000028'],
    ['ffffffff/ffffffff', 0xffffffffffffffffn, 'FFFFFFFF/FFFFFFFF'],
    ['00000001/0000000A', 0x10000000an, '1/A'],
  ]
  for (const [text, lsn, formatted] of cases) {
    t.equal(parseLsn(text), lsn, text)
    t.equal(formatLsn(lsn), formatted, `format ${text}`)
  }
  for (const bad of ['', '16', '16/', '/1', '1/123456789', 'x/1', '1/2/3']) {
    t.throws(() => parseLsn(bad), { code: 'TM_ERR_POSTGRES_WAL_NAME' }, `rejects "${bad}"`)
  }
})

t.test('segment names for 16 MiB and 1 MiB segments', async (t) => {
  const cases: Array<[string, number, number, string]> = [
    ['16/B374D848', SEG16, 1, '0000000100000016000000B3'],
    ['16/B374D848', MiB, 1, '000000010000001600000B37'],
    ['0/2000028', SEG16, 1, '000000010000000000000002'],
    ['0/2000028', MiB, 1, '000000010000000000000020'],
    ['0/FFFFFFFF', SEG16, 2, '0000000200000000000000FF'],
    ['1/0', SEG16, 2, '000000020000000100000000'],
    ['0/FFFFFFFF', 1 << 30, 3, '000000030000000000000003'],
  ]
  for (const [lsn, size, tli, name] of cases) {
    const segno = segmentOf(parseLsn(lsn), size)
    t.equal(walFileName(tli, segno, size), name, `${lsn} @ ${size}`)
    t.same(parseSegmentName(name, size), { timeline: tli, segno }, `parse ${name}`)
    t.ok(segmentStartLsn(segno, size) <= parseLsn(lsn), 'segment starts at or before the LSN')
  }
  t.throws(() => segmentOf(0n, 3 * MiB), { code: 'TM_ERR_POSTGRES_WAL_NAME' }, 'segment size must be a power of two')
  t.throws(() => walFileName(0, 1n, MiB), { code: 'TM_ERR_POSTGRES_WAL_NAME' }, 'timeline 0 does not exist')
})

t.test('next segment crosses log ids', async (t) => {
  t.equal(nextSegmentName('0000000100000000000000FF', SEG16), '000000010000000100000000')
  t.equal(nextSegmentName('000000010000000000000FFF', MiB), '000000010000000100000000')
  t.equal(nextSegmentName('000000010000000000000010', MiB), '000000010000000000000011')
  t.throws(() => nextSegmentName('000000010000000000000100', SEG16), { code: 'TM_ERR_POSTGRES_WAL_NAME' }, 'seg field past the last segment of a log id')
})

t.test('classify names', async (t) => {
  t.same(classifyWalName('000000020000000000000003', SEG16), { kind: 'segment', name: '000000020000000000000003', timeline: 2, segno: 3n })
  t.same(classifyWalName('000000020000000000000003.partial', SEG16), { kind: 'partial', name: '000000020000000000000003.partial', segmentName: '000000020000000000000003', timeline: 2, segno: 3n })
  t.same(classifyWalName('0000000A.history', SEG16), { kind: 'history', name: '0000000A.history', timeline: 10 })
  for (const other of ['000000020000000000000003.partial.tmp', '00000002.history.tmp', '000000010000000000000002.00000028.backup', 'archive_status', '0000000a0000000000000003', '000000000000000000000003', '00000000.history']) {
    t.equal(classifyWalName(other, SEG16), undefined, `not a WAL name: ${other}`)
  }
  t.equal(historyFileName(3), '00000003.history')
  t.equal(partialName('000000010000000000000003'), '000000010000000000000003.partial')
  t.throws(() => partialName('000000010000000000000003.partial'))
})

t.test('segment range from start LSN to stop LSN', async (t) => {
  t.same(segmentRange(1, parseLsn('0/700028'), parseLsn('0/700100'), MiB), ['000000010000000000000007'], 'one segment')
  t.same(segmentRange(1, parseLsn('0/700028'), parseLsn('0/A00010'), MiB), ['000000010000000000000007', '000000010000000000000008', '000000010000000000000009', '00000001000000000000000A'])
  t.same(segmentRange(1, parseLsn('0/700028'), parseLsn('0/900000'), MiB), ['000000010000000000000007', '000000010000000000000008'], 'a stop LSN on a boundary does not need the next segment')
  t.same(segmentRange(2, parseLsn('0/FF000028'), parseLsn('1/00000100'), SEG16), ['0000000200000000000000FF', '000000020000000100000000'], 'across a log id')
  t.same(segmentRange(1, parseLsn('0/700028'), parseLsn('0/700028'), MiB), ['000000010000000000000007'], 'empty range')
  t.throws(() => segmentRange(1, parseLsn('0/800000'), parseLsn('0/700000'), MiB), { code: 'TM_ERR_POSTGRES_WAL_NAME' })
})

t.test('history files', async (t) => {
  const text = '1\t0/3000158\tno recovery target specified\n\n2\t0/5000000\tbefore 2026-11-28 09:40:00.123456+00\n'
  t.same(parseHistory(text), [
    { parentTimeline: 1, switchLsn: 0x3000158n, reason: 'no recovery target specified' },
    { parentTimeline: 2, switchLsn: 0x5000000n, reason: 'before 2026-11-28 09:40:00.123456+00' },
  ])
  t.same(parseHistory('# comment\n\n'), [])
  t.throws(() => parseHistory('1 nonsense'), { code: 'TM_ERR_POSTGRES_FORMAT' })
  t.throws(() => parseHistory('2\t0/1\tx\n1\t0/2\ty'), { code: 'TM_ERR_POSTGRES_FORMAT' }, 'parents must increase')
})

t.test('findGaps', async (t) => {
  const seg = (n: number, tli = 1) => walFileName(tli, BigInt(n), MiB)
  t.same(findGaps([], MiB), [])
  t.same(findGaps([seg(5)], MiB), [])
  t.same(findGaps([seg(7), seg(5), seg(6)], MiB), [], 'order does not matter')
  t.same(findGaps([seg(5), seg(8), seg(9), seg(12)], MiB), [
    { from: seg(6), to: seg(7), count: 2n },
    { from: seg(10), to: seg(11), count: 2n },
  ])
  t.same(findGaps([seg(4095), seg(4097)], MiB), [{ from: '000000010000000100000000', to: '000000010000000100000000', count: 1n }], 'across a log id')
  t.same(findGaps([seg(5), seg(6), `${seg(7)}.partial`, '00000002.history', seg(6)], MiB), [], 'partials, history files and duplicates are ignored')
  t.same(findGaps([seg(5), `${seg(6)}.partial`, seg(7)], MiB), [{ from: seg(6), to: seg(6), count: 1n }], 'a partial does not fill a gap')
  t.throws(() => findGaps([seg(5), seg(6, 2)], MiB), { code: 'TM_ERR_POSTGRES_WAL_NAME' }, 'one timeline only')
})
