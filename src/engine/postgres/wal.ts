/**
 * WAL arithmetic: LSNs, segment file names, timeline history files, and gap detection.
 * Pure functions. LSNs and segment numbers are bigints because they are 64-bit in
 * PostgreSQL; a segment size is a number of bytes (a power of two, 1 MiB to 1 GiB).
 */
import { TidemarkError } from '../../errors.ts'

const LSN_RE = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/
const SEGMENT_RE = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/
const PARTIAL_RE = /^([0-9A-F]{24})\.partial$/
const HISTORY_RE = /^([0-9A-F]{8})\.history$/

/** A WAL file name as pg_receivewal writes it and restore_command asks for it. */
export type WalName =
  | { kind: 'segment'; name: string; timeline: number; segno: bigint }
  | { kind: 'partial'; name: string; timeline: number; segno: bigint; segmentName: string }
  | { kind: 'history'; name: string; timeline: number }

/** One line of a timeline history file: the parent timeline ended at `switchLsn`. */
export interface HistoryEntry {
  parentTimeline: number
  switchLsn: bigint
  reason: string
}

/** A run of missing segments, `from` to `to` inclusive. */
export interface Gap {
  from: string
  to: string
  count: bigint
}

function badName(what: string): TidemarkError {
  return new TidemarkError('TM_ERR_POSTGRES_WAL_NAME', what)
}

/** Parses `16/B374D848` into a 64-bit LSN; throws TM_ERR_POSTGRES_WAL_NAME otherwise. */
export function parseLsn(text: string): bigint {
  const m = LSN_RE.exec(text.trim())
  if (!m) throw badName(`"${text}" is not a PostgreSQL LSN (expected hex/hex such as 16/B374D848)`)
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`)
}

/** Formats an LSN the way PostgreSQL prints it: upper-case hex, no leading zeros. */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`
}

/** Validates a WAL segment size and returns how many segments one log id holds. */
export function segmentsPerLogId(segSize: number): bigint {
  const ok = Number.isInteger(segSize) && segSize >= 1 << 20 && segSize <= 1 << 30 && (segSize & (segSize - 1)) === 0
  if (!ok) throw badName(`${segSize} is not a valid WAL segment size (a power of two from 1 MiB to 1 GiB)`)
  return 0x100000000n / BigInt(segSize)
}

/** The number of the segment holding the byte at `lsn`. */
export function segmentOf(lsn: bigint, segSize: number): bigint {
  segmentsPerLogId(segSize)
  return lsn / BigInt(segSize)
}

/** The LSN of the first byte of segment `segno`. */
export function segmentStartLsn(segno: bigint, segSize: number): bigint {
  segmentsPerLogId(segSize)
  return segno * BigInt(segSize)
}

const hex8 = (n: bigint | number): string => n.toString(16).toUpperCase().padStart(8, '0')

/** The 24-character file name of segment `segno` on `timeline`. */
export function walFileName(timeline: number, segno: bigint, segSize: number): string {
  checkTimeline(timeline)
  const per = segmentsPerLogId(segSize)
  return `${hex8(timeline)}${hex8(segno / per)}${hex8(segno % per)}`
}

/** `00000002.history`: the history file that starts `timeline`. */
export function historyFileName(timeline: number): string {
  checkTimeline(timeline)
  return `${hex8(timeline)}.history`
}

/** `<segment>.partial`: the name pg_receivewal gives the segment it is still writing. */
export function partialName(segmentName: string): string {
  if (!SEGMENT_RE.test(segmentName)) throw badName(`"${segmentName}" is not a WAL segment name`)
  return `${segmentName}.partial`
}

function checkTimeline(timeline: number): void {
  if (!Number.isInteger(timeline) || timeline < 1 || timeline > 0xffffffff) throw badName(`${timeline} is not a timeline id`)
}

/** Classifies a file name as a segment, a `.partial` segment or a `.history` file; anything else is undefined. */
export function classifyWalName(name: string, segSize: number): WalName | undefined {
  const per = segmentsPerLogId(segSize)
  const seg = (n: string): { timeline: number; segno: bigint } | undefined => {
    const m = SEGMENT_RE.exec(n)
    if (!m) return undefined
    const timeline = Number.parseInt(m[1] as string, 16)
    const log = BigInt(`0x${m[2]}`)
    const off = BigInt(`0x${m[3]}`)
    // A segment field past the last segment of a log id does not exist for this size.
    if (timeline === 0 || off >= per) return undefined
    return { timeline, segno: log * per + off }
  }
  const full = seg(name)
  if (full) return { kind: 'segment', name, ...full }
  const p = PARTIAL_RE.exec(name)
  const partial = p ? seg(p[1] as string) : undefined
  if (p && partial) return { kind: 'partial', name, segmentName: p[1] as string, ...partial }
  const h = HISTORY_RE.exec(name)
  if (h && Number.parseInt(h[1] as string, 16) > 0) return { kind: 'history', name, timeline: Number.parseInt(h[1] as string, 16) }
  return undefined
}

/** Like classifyWalName but requires a complete segment name; throws TM_ERR_POSTGRES_WAL_NAME otherwise. */
export function parseSegmentName(name: string, segSize: number): { timeline: number; segno: bigint } {
  const c = classifyWalName(name, segSize)
  if (c?.kind !== 'segment') throw badName(`"${name}" is not a WAL segment name for ${segSize}-byte segments`)
  return { timeline: c.timeline, segno: c.segno }
}

/** The name of the segment after `name` on the same timeline. */
export function nextSegmentName(name: string, segSize: number): string {
  const s = parseSegmentName(name, segSize)
  return walFileName(s.timeline, s.segno + 1n, segSize)
}

/**
 * Every segment needed to replay WAL from `startLsn` up to `stopLsn`, in order. The
 * last one holds the byte just before `stopLsn`: a stop LSN is the end of the last
 * record, so when it falls on a segment boundary the next segment is not needed.
 */
export function segmentRange(timeline: number, startLsn: bigint, stopLsn: bigint, segSize: number): string[] {
  if (stopLsn < startLsn) throw badName(`stop LSN ${formatLsn(stopLsn)} is before start LSN ${formatLsn(startLsn)}`)
  const first = segmentOf(startLsn, segSize)
  const last = stopLsn > startLsn ? segmentOf(stopLsn - 1n, segSize) : first
  const out: string[] = []
  for (let s = first; s <= last; s++) out.push(walFileName(timeline, s, segSize))
  return out
}

/**
 * Parses a timeline history file: one line per ancestor timeline, `parentTli<TAB>switchLsn<TAB>reason`,
 * comments and blank lines ignored. Throws TM_ERR_POSTGRES_FORMAT on a malformed line.
 */
export function parseHistory(content: string): HistoryEntry[] {
  const out: HistoryEntry[] = []
  for (const raw of content.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^(\d+)\s+([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})\s*(.*)$/.exec(line)
    const parent = m ? Number(m[1]) : NaN
    if (!m || !(parent >= 1) || (out.length > 0 && parent <= (out.at(-1) as HistoryEntry).parentTimeline)) {
      throw new TidemarkError('TM_ERR_POSTGRES_FORMAT', `malformed timeline history line: "${line}"`)
    }
    out.push({ parentTimeline: parent, switchLsn: parseLsn(m[2] as string), reason: m[3] ?? '' })
  }
  return out
}

/**
 * The runs of segments missing between the lowest and the highest complete segment in
 * `names` (one timeline). `.partial` and `.history` names are ignored; names of
 * several timelines throw TM_ERR_POSTGRES_WAL_NAME, since a timeline switch is not a gap.
 */
export function findGaps(names: Iterable<string>, segSize: number): Gap[] {
  let timeline: number | undefined
  const segnos: bigint[] = []
  for (const name of names) {
    const c = classifyWalName(name, segSize)
    if (c?.kind !== 'segment') continue
    if (timeline !== undefined && c.timeline !== timeline) throw badName(`findGaps got segments of timelines ${timeline} and ${c.timeline}`)
    timeline = c.timeline
    segnos.push(c.segno)
  }
  segnos.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const gaps: Gap[] = []
  for (let i = 1; i < segnos.length; i++) {
    const prev = segnos[i - 1] as bigint
    const cur = segnos[i] as bigint
    if (cur - prev > 1n) {
      gaps.push({ from: walFileName(timeline as number, prev + 1n, segSize), to: walFileName(timeline as number, cur - 1n, segSize), count: cur - prev - 1n })
    }
  }
  return gaps
}
