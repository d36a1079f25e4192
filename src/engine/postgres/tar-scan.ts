/**
 * A pass-through Transform for the tar stream `pg_basebackup -Ft -D -` writes: every
 * byte goes out unchanged and in order, while the tar headers are followed to pick out
 * `backup_label` (start LSN, timeline, start time), the `WAL-Ranges` of the
 * `backup_manifest` pg_basebackup appends (the stop LSN), and the end-of-archive
 * marker. Memory stays bounded: only a header, the label and the manifest's tail are held.
 */
import { Transform, type TransformCallback } from 'node:stream'
import { TidemarkError } from '../../errors.ts'
import { parseLsn } from './wal.ts'

const BLOCK = 512
const MAX_LABEL = 64 * 1024
// WAL-Ranges sits at the very end of the manifest, after one line per file.
const MANIFEST_TAIL = 64 * 1024

/** One WAL range of a backup manifest: the WAL needed to make the backup consistent. */
export interface WalRange {
  timeline: number
  startLsn: bigint
  endLsn: bigint
}

/** What the scan saw. `endOffset` is the number of bytes up to and including the end-of-archive marker. */
export interface TarScanResult {
  backupLabel: string | undefined
  walRanges: WalRange[] | undefined
  entries: number
  bytes: number
  endOffset: number | undefined
}

/** One tar member, as announced by the `entry` event. */
export interface TarEntry {
  name: string
  size: number
  type: string
}

/** Options of the scanner. */
export interface TarScanOptions {
  /** Runs when the input has ended, before the output ends (also for a truncated archive); an error it throws fails the stream instead. */
  beforeEnd?: (result: TarScanResult) => Promise<void>
}

function formatError(msg: string): TidemarkError {
  return new TidemarkError('TM_ERR_POSTGRES_FORMAT', msg)
}

/** Reads a tar numeric field: octal text, or base-256 when the high bit of the first byte is set. */
export function tarNumber(field: Buffer): number {
  if (((field[0] as number) & 0x80) !== 0) {
    let v = (field[0] as number) & 0x7f
    for (let i = 1; i < field.length; i++) v = v * 256 + (field[i] as number)
    return v
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/, '').replace(/^[\0 ]+/, '')
  if (!/^[0-7]*$/.test(text)) throw formatError(`tar header has a malformed number "${text}"`)
  return text === '' ? 0 : Number.parseInt(text, 8)
}

function cString(buf: Buffer): string {
  const nul = buf.indexOf(0)
  return buf.toString('utf8', 0, nul < 0 ? buf.length : nul)
}

/** Parses one 512-byte ustar header, checking its checksum. */
export function parseTarHeader(h: Buffer): TarEntry {
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number)
  if (sum !== tarNumber(h.subarray(148, 156))) throw formatError('tar header checksum mismatch: the stream is corrupt or misaligned')
  const prefix = h.subarray(257, 262).toString('latin1') === 'ustar' ? cString(h.subarray(345, 500)) : ''
  const name = cString(h.subarray(0, 100))
  return { name: prefix ? `${prefix}/${name}` : name, size: tarNumber(h.subarray(124, 136)), type: String.fromCharCode(h[156] as number) }
}

/** Extracts the WAL-Ranges of a backup_manifest from its tail. */
export function parseManifestWalRanges(tail: string): WalRange[] | undefined {
  const block = /"WAL-Ranges"\s*:\s*\[([\s\S]*?)\]/.exec(tail)
  if (!block) return undefined
  const out: WalRange[] = []
  const re = /\{\s*"Timeline"\s*:\s*(\d+)\s*,\s*"Start-LSN"\s*:\s*"([^"]+)"\s*,\s*"End-LSN"\s*:\s*"([^"]+)"\s*\}/g
  for (const m of (block[1] as string).matchAll(re)) {
    out.push({ timeline: Number(m[1]), startLsn: parseLsn(m[2] as string), endLsn: parseLsn(m[3] as string) })
  }
  return out
}

const isLabel = (name: string): boolean => name === 'backup_label' || name === './backup_label'
const isManifest = (name: string): boolean => name === 'backup_manifest' || name === './backup_manifest'

/**
 * The scan itself, without a stream: `scan()` each piece of the archive in order (it
 * keeps no reference to it), then `check()` at the end. `onEntry` sees every member.
 */
export class TarScanner {
  readonly #header = Buffer.alloc(BLOCK)
  #headerFill = 0
  #remaining = 0
  #padding = 0
  #capture: 'label' | 'manifest' | undefined
  #captured: Buffer[] = []
  #capturedBytes = 0
  #zeroBlocks = 0
  #bytes = 0
  #endOffset: number | undefined
  #entries = 0
  #label: string | undefined
  #walRanges: WalRange[] | undefined
  onEntry: ((entry: TarEntry) => void) | undefined

  /** The scan's findings so far (complete once the whole archive was scanned). */
  result(): TarScanResult {
    return { backupLabel: this.#label, walRanges: this.#walRanges, entries: this.#entries, bytes: this.#bytes, endOffset: this.#endOffset }
  }

  /** At the end of the input: the error for an archive without its end-of-archive marker, else undefined. */
  check(): TidemarkError | undefined {
    if (this.#endOffset !== undefined) return undefined
    return formatError(`tar stream ended after ${this.#bytes} bytes without its end-of-archive marker: it is truncated`)
  }

  /** Follows `chunk`, the next bytes of the archive. Throws TM_ERR_POSTGRES_FORMAT. */
  scan(chunk: Uint8Array): void {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
    let pos = 0
    while (pos < bytes.length) {
      let n: number
      if (this.#endOffset !== undefined) {
        n = bytes.length - pos // trailing bytes after the marker pass through untouched
      } else if (this.#remaining > 0) {
        n = Math.min(this.#remaining, bytes.length - pos)
        this.#keep(bytes.subarray(pos, pos + n))
        this.#remaining -= n
        if (this.#remaining === 0) this.#finishEntry()
      } else if (this.#padding > 0) {
        n = Math.min(this.#padding, bytes.length - pos)
        this.#padding -= n
      } else {
        n = Math.min(BLOCK - this.#headerFill, bytes.length - pos)
        bytes.copy(this.#header, this.#headerFill, pos, pos + n)
        this.#headerFill += n
      }
      pos += n
      this.#bytes += n
      if (this.#headerFill === BLOCK) {
        this.#headerFill = 0
        this.#onHeader()
      }
    }
  }

  #onHeader(): void {
    if (this.#header.every((b) => b === 0)) {
      if (++this.#zeroBlocks === 2) this.#endOffset = this.#bytes
      return
    }
    if (this.#zeroBlocks > 0) throw formatError(`tar stream has a lone zero block before offset ${this.#bytes}`)
    const entry = parseTarHeader(this.#header)
    this.#entries++
    this.#capture = isLabel(entry.name) ? 'label' : isManifest(entry.name) ? 'manifest' : undefined
    if (this.#capture === 'label' && entry.size > MAX_LABEL) throw formatError(`backup_label is ${entry.size} bytes: not a backup label`)
    this.#captured = []
    this.#capturedBytes = 0
    this.#remaining = entry.size
    this.#padding = (BLOCK - (entry.size % BLOCK)) % BLOCK
    this.onEntry?.(entry)
    if (entry.size === 0) this.#finishEntry()
  }

  #keep(part: Buffer): void {
    if (this.#capture === undefined) return
    this.#captured.push(Buffer.from(part))
    this.#capturedBytes += part.length
    if (this.#capture === 'manifest' && this.#capturedBytes > 2 * MANIFEST_TAIL) {
      const all = Buffer.concat(this.#captured)
      this.#captured = [all.subarray(all.length - MANIFEST_TAIL)]
      this.#capturedBytes = MANIFEST_TAIL
    }
  }

  #finishEntry(): void {
    const text = Buffer.concat(this.#captured).toString('utf8')
    if (this.#capture === 'label') this.#label = text
    else if (this.#capture === 'manifest') this.#walRanges = parseManifestWalRanges(text)
    this.#capture = undefined
    this.#captured = []
  }
}

/** The pass-through scanner as a Transform. Emits `entry` (TarEntry) per member. */
export class TarScan extends Transform {
  readonly #beforeEnd: TarScanOptions['beforeEnd']
  readonly #scanner = new TarScanner()

  constructor(opts: TarScanOptions = {}) {
    super()
    this.#beforeEnd = opts.beforeEnd
    this.#scanner.onEntry = (entry) => this.emit('entry', entry)
  }

  /** The scan's findings so far (complete once the stream has ended). */
  result(): TarScanResult {
    return this.#scanner.result()
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.#scanner.scan(chunk)
    } catch (err) {
      cb(err as Error)
      return
    }
    cb(null, chunk)
  }

  override _flush(cb: TransformCallback): void {
    const finish = (): void => cb(this.#scanner.check() ?? null)
    // The hook runs first: the writer's own error (a tool's exit status) says more than "truncated".
    const hook = this.#beforeEnd
    if (!hook) return finish()
    hook(this.result()).then(finish, (err: unknown) => cb(err as Error))
  }
}
