/**
 * How much WAL a segment file really holds, read from its page headers: a bound on
 * what an upload of the open segment may claim, whatever the replication slot says
 * (a slot recreated after WAL was lost points far past a stale local file). Pure.
 *
 * Every WAL page starts with a header whose `xlp_pageaddr` (a little-endian 64-bit
 * LSN at byte 8) is the page's own address; pg_receivewal pads an open segment with
 * zeros, and a recycled file holds pages with old addresses. The first page has the
 * long header, which states the cluster (`xlp_sysid`, byte 24) and the page size
 * (`xlp_xlog_blcksz`, byte 36).
 */

const PAGE_ADDR = 8
const LONG_BLCKSZ = 36
const DEFAULT_PAGE = 8192

/**
 * The LSN up to which `data` (a segment file starting at `segStart`) holds WAL: the
 * pages from the first whose header carries their own address, up to the last
 * non-zero byte among them, rounded up to 8 (never past the true end, except within
 * the trailing zero bytes of a record). `segStart` when the first page is not valid.
 */
export function walDataEnd(data: Buffer, segStart: bigint): bigint {
  if (data.length < 40) return segStart
  const declared = data.readUInt32LE(LONG_BLCKSZ)
  const page = declared >= 1024 && declared <= 65536 && (declared & (declared - 1)) === 0 ? declared : DEFAULT_PAGE
  let valid = 0
  while (valid + PAGE_ADDR + 8 <= data.length && data.readBigUInt64LE(valid + PAGE_ADDR) === segStart + BigInt(valid)) valid += page
  let last = Math.min(valid, data.length) - 1
  while (last >= 0 && data[last] === 0) last--
  if (last < 0) return segStart
  return segStart + BigInt(Math.min(valid, (last + 8) & ~7))
}

/** The system identifier in a segment file's long page header (decimal), or undefined when the first page is not a valid header for `segStart`. */
export function segmentSystemId(head: Buffer, segStart: bigint): string | undefined {
  if (head.length < 32 || head.readBigUInt64LE(PAGE_ADDR) !== segStart) return undefined
  return head.readBigUInt64LE(24).toString()
}
