/**
 * The archiver's decisions, apart from its actions. Pure.
 */
import { segmentStartLsn } from './wal.ts'

/** The open segment as the archiver sees it. */
export interface OpenSegment {
  timeline: number
  segno: bigint
}

/**
 * How far an upload of the open segment is proven to reach. `flushed` is the slot's
 * flush position read BEFORE the file was read, so the file holds at least that much
 * WAL, but only if the file belongs to the timeline the server writes on
 * (`serverTimeline`): an older timeline's last segment stays `.partial` for ever and
 * holds WAL only up to its switch point, whatever the slot says. `previous` is what an
 * earlier upload of the same segment proved: a later read of the file holds as much.
 * `held` (walDataEnd of the bytes read) caps the claim: a slot recreated after WAL was
 * lost points past a stale file.
 */
export function partialCoverage(seg: OpenSegment, segSize: number, flushed: bigint | undefined, serverTimeline: number | undefined, previous: bigint | undefined, held: bigint): bigint {
  const start = segmentStartLsn(seg.segno, segSize)
  const end = start + BigInt(segSize)
  let covers = start
  if (flushed !== undefined && serverTimeline === seg.timeline) covers = flushed < start ? start : flushed > end ? end : flushed
  if (previous !== undefined && previous > covers) covers = previous
  return covers > held ? (held > start ? held : start) : covers
}

/** Segment numbers strictly between the last archived one and `segno` (empty when contiguous or first). */
export function skipped(last: bigint | undefined, segno: bigint, max = 256): bigint[] {
  const out: bigint[] = []
  if (last === undefined) return out
  for (let s = last + 1n; s < segno && out.length < max; s++) out.push(s)
  return out
}
