/** Pure pieces of the WAL archive: instants, keys, heartbeat thinning, partial coverage. */
import t from 'tap'
import { isTidemarkError } from '../../src/errors.ts'
import { partialCoverage, skipped } from '../../src/engine/postgres/archive-rules.ts'
import { addHeartbeat, MAX_POINTS, RECENT_POINTS, thinHeartbeats, type Heartbeat } from '../../src/engine/postgres/heartbeats.ts'
import { walDataEnd } from '../../src/engine/postgres/wal-page.ts'
import { formatMicros, parseInstant, parseTarget, recoveryTargetOf } from '../../src/engine/postgres/instant.ts'
import { formatTargetTime } from '../../src/engine/postgres/recovery.ts'
import { walFetchRestoreCommand } from '../../src/engine/postgres/restore.ts'
import { parseArchiveKey, partialDataKey, walDataKey, walRefKey, WAL_ROOT } from '../../src/engine/postgres/wal-format.ts'
import { WAL_PREFIX } from '../../src/engine/prune.ts'

const MiB = 1 << 20

t.test('instants parse strictly, to the microsecond, with an offset', async (t) => {
  t.equal(parseInstant('2026-11-28T09:40:00Z'), 1795858800000000n)
  t.equal(parseInstant('2026-11-28T10:40:00.000001+01:00'), 1795858800000001n)
  t.equal(parseInstant('2026-11-28 04:10:00.5-05:30'), 1795858800500000n)
  t.equal(formatMicros(1795858800000001n), '2026-11-28T09:40:00.000001Z')
  t.equal(parseInstant(formatMicros(1795858800123456n)), 1795858800123456n, 'format and parse round-trip')
  t.equal(parseTarget('latest'), 'latest')
  t.equal(formatTargetTime(recoveryTargetOf(1795858800123456n)), '2026-11-28 09:40:00.123456+00:00', 'the recovery target keeps every microsecond')
  for (const bad of ['2026-11-28T09:40:00', '2026-11-28', 'yesterday', '2026-02-30T00:00:00Z', '2026-11-28T24:00:00Z', '2026-11-28T09:40:00.1234567Z', '2026-11-28T09:40:00+1:00', '1795858800']) {
    try {
      parseTarget(bad)
      t.fail(`"${bad}" was accepted`)
    } catch (err) {
      t.ok(isTidemarkError(err, 'TM_ERR_USAGE'), `"${bad}" is refused with TM_ERR_USAGE`)
    }
  }
})

t.test('archive keys', async (t) => {
  t.equal(WAL_ROOT, WAL_PREFIX, 'the archive lives where prune never sweeps unreferenced objects')
  t.equal(walDataKey('7312', '000000020000000000000003'), 'data/postgres/wal/7312/00000002/000000020000000000000003')
  t.equal(walRefKey('7312', '00000002.history'), 'data/postgres/wal/7312/00000002/00000002.history.ref.json')
  t.equal(partialDataKey('7312', '000000010000000000000003', 'ab12cd34ef567890'), 'data/postgres/wal/7312/00000001/000000010000000000000003.partial.ab12cd34ef567890')
  t.same(parseArchiveKey('data/postgres/wal/7312/00000002/000000020000000000000003.ref.json'), { kind: 'file-ref', systemId: '7312', timeline: 2, name: '000000020000000000000003', type: 'segment' })
  t.same(parseArchiveKey('data/postgres/wal/7312/00000002/00000002.history.ref.json'), { kind: 'file-ref', systemId: '7312', timeline: 2, name: '00000002.history', type: 'history' })
  t.same(parseArchiveKey('data/postgres/wal/7312/00000001/partial.json'), { kind: 'partial', systemId: '7312', timeline: 1 })
  t.equal(parseArchiveKey('data/postgres/wal/7312/00000001/000000020000000000000003.ref.json')?.kind, 'data', 'a record under another timeline\'s directory is not taken for a segment record')
  t.equal(parseArchiveKey('data/postgres/base/x.tar'), undefined)
  t.throws(() => walDataKey('../x', '000000010000000000000001'), /system identifier/)
})

t.test('the restore_command quotes words and doubles %', async (t) => {
  t.equal(walFetchRestoreCommand(['/opt/tide mark/bin/tidemark', '--config', '/etc/t 100%.yaml'], 'file:///var/backups/repo', '7312'),
    "'/opt/tide mark/bin/tidemark' --config '/etc/t 100%%.yaml' wal-fetch --repo file:///var/backups/repo --system-id 7312 %f %p")
})

t.test('heartbeat points: kept in order, thinned to one per segment when old', async (t) => {
  let points: Heartbeat[] = []
  for (let i = 0; i < 200; i++) points = addHeartbeat(points, { us: BigInt(i + 1) * 1000n, lsn: BigInt(Math.floor(i / 10)) * BigInt(MiB) + BigInt(i % 10) * 100n }, MiB)
  t.equal(points.slice(-RECENT_POINTS).length, RECENT_POINTS)
  t.equal(points.at(-1)?.us, 200_000n, 'the newest point is kept')
  const older = points.slice(0, -RECENT_POINTS)
  t.ok(older.length <= 14, `older points thinned to ${older.length}`)
  t.same(older.map((p) => p.us).slice(0, 3), [10_000n, 20_000n, 30_000n], 'the last point of each segment')
  t.equal(addHeartbeat(points, { us: 1n, lsn: 1n }, MiB).length, points.length, 'a point older than the last is ignored')
  const many = Array.from({ length: MAX_POINTS + 500 }, (_, i) => ({ us: BigInt(i + 1), lsn: BigInt(i) * BigInt(MiB) }))
  t.equal(thinHeartbeats(many, MiB).length, MAX_POINTS)
})

t.test('partial coverage: the slot proves it, only for the server\'s timeline, never backwards', async (t) => {
  const seg = { timeline: 1, segno: 3n }
  const start = 3n * BigInt(MiB)
  const all = start + BigInt(MiB)
  t.equal(partialCoverage(seg, MiB, start + 100n, 1, undefined, all), start + 100n)
  t.equal(partialCoverage(seg, MiB, start - 100n, 1, undefined, all), start, 'flushed before the segment: nothing proven')
  t.equal(partialCoverage(seg, MiB, start + 5n * BigInt(MiB), 1, undefined, all), all, 'capped at the segment end')
  t.equal(partialCoverage(seg, MiB, start + 100n, 2, undefined, all), start, 'an old timeline\'s leftover proves nothing')
  t.equal(partialCoverage(seg, MiB, undefined, 1, start + 50n, all), start + 50n, 'no reading: the earlier proof stands')
  t.equal(partialCoverage(seg, MiB, start + 10n, 1, start + 50n, all), start + 50n, 'never backwards')
  t.equal(partialCoverage(seg, MiB, start + 5n * BigInt(MiB), 1, undefined, start + 8192n), start + 8192n, 'never past the WAL the file holds (a slot recreated ahead of a stale file)')
  t.same(skipped(4n, 7n), [5n, 6n])
  t.same(skipped(undefined, 7n), [])
  t.same(skipped(7n, 5n), [])
})

t.test('the WAL a segment file holds, from its page headers', async (t) => {
  const segStart = 5n * BigInt(MiB)
  const file = Buffer.alloc(MiB)
  const page = (i: number, fill: number, len = 8192) => {
    file.fill(fill, i * 8192, i * 8192 + len)
    file.writeBigUInt64LE(segStart + BigInt(i * 8192), i * 8192 + 8)
  }
  t.equal(walDataEnd(file, segStart), segStart, 'all zeros: nothing')
  page(0, 1)
  file.writeUInt32LE(8192, 36)
  page(1, 1)
  page(2, 1, 100)
  t.equal(walDataEnd(file, segStart), segStart + 2n * 8192n + 104n, 'up to the last non-zero byte, rounded up to 8')
  page(4, 1)
  t.equal(walDataEnd(file, segStart), segStart + 2n * 8192n + 104n, 'a page after a zero page does not count')
  page(3, 1)
  file.writeBigUInt64LE(123n, 3 * 8192 + 8)
  t.equal(walDataEnd(file, segStart), segStart + 2n * 8192n + 104n, 'a page with another address (a recycled file) ends it')
  t.equal(walDataEnd(file, segStart + BigInt(MiB)), segStart + BigInt(MiB), 'another segment\'s file: nothing')
})
