/**
 * The stream format of one stored part directory (FORMAT.md, "ClickHouse
 * parts"): for each file, a header line `TMPART1 <size> <name>\n` (name
 * URI-encoded, `/` for files in subdirectories) followed by exactly `size`
 * bytes; then `TMPART1 END <files>\n`. Written and read file by file in
 * chunks, so memory stays flat whatever the part's size. The repository
 * pipeline checksums the whole stream; this format only has to be unambiguous.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { dirname, join, relative, sep } from 'node:path'
import { TidemarkError } from '../../errors.ts'

const MAGIC = 'TMPART1'
const MAX_HEADER = 4096

/** Every regular file under `dir`, as `/`-separated paths relative to it, sorted. */
async function listFiles(dir: string, root = dir): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, e.name)
    if (e.isDirectory()) out.push(...(await listFiles(full, root)))
    else if (e.isFile()) out.push(relative(root, full).split(sep).join('/'))
  }
  return out.sort()
}

/**
 * The stream of the part directory `dir` in the format above, read straight into the
 * caller's buffers (the pipeline's chunk buffers): no buffer per read and no copy in
 * between. Reads must follow one another (a ChunkReader); close() releases the open file.
 *
 * The files are opened, read and closed with synchronous calls: a part is mostly small
 * files (marks, checksums, counts), and a promise round trip through the thread pool for
 * each open, stat, read and close cost more of the main thread than the reads themselves
 * (a full parts backup of the benchmark dataset, 3 623 files, in-process under the
 * profiler: 2.11 s and 3.11 CPU-s with promises, 1.81 s and 2.69 CPU-s like this). A read
 * is at most one chunk of a file that was just frozen, so mostly in the page cache.
 */
export class PartReader {
  readonly #dir: string
  readonly #files: string[]
  #next = 0
  #file: { fd: number; path: string; size: number; sent: number } | undefined
  #pending: Buffer = Buffer.alloc(0)
  #ended = false
  #position = 0

  private constructor(dir: string, files: string[]) {
    this.#dir = dir
    this.#files = files
  }

  static async open(dir: string): Promise<PartReader> {
    return new PartReader(dir, await listFiles(dir))
  }

  async read(buffer: Uint8Array<ArrayBuffer>, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    if (position !== this.#position) throw new TidemarkError('TM_ERR_INTERNAL', `a part is read in order: asked for byte ${position}, at ${this.#position}`)
    let n = 0
    while (n < length) {
      if (this.#pending.length > 0) {
        const k = Math.min(this.#pending.length, length - n)
        buffer.set(this.#pending.subarray(0, k), offset + n)
        this.#pending = this.#pending.subarray(k)
        n += k
        continue
      }
      const f = this.#file
      if (f) {
        const want = Math.min(length - n, f.size - f.sent)
        const bytesRead = readSync(f.fd, buffer, offset + n, want, f.sent)
        // Frozen files are hard links that ClickHouse never rewrites; a short read means something else touched them.
        if (bytesRead === 0) throw new TidemarkError('TM_ERR_INTEGRITY', `part file ${f.path} shrank while it was read (${f.size} → ${f.sent} bytes)`)
        f.sent += bytesRead
        n += bytesRead
        if (f.sent === f.size) this.#closeFile()
        continue
      }
      if (!(await this.#openNext())) break
    }
    this.#position += n
    return { bytesRead: n }
  }

  /** Queues the next file's header (and opens it), or the end line; false when all was read. */
  async #openNext(): Promise<boolean> {
    if (this.#next === this.#files.length) {
      if (this.#ended) return false
      this.#ended = true
      this.#pending = Buffer.from(`${MAGIC} END ${this.#files.length}\n`)
      return true
    }
    const name = this.#files[this.#next++] as string
    const path = join(this.#dir, name)
    const fd = openSync(path, 'r')
    const { size } = fstatSync(fd)
    this.#pending = Buffer.from(`${MAGIC} ${size} ${encodeURIComponent(name)}\n`)
    this.#file = { fd, path, size, sent: 0 }
    if (size === 0) this.#closeFile()
    return true
  }

  #closeFile(): void {
    const f = this.#file
    this.#file = undefined
    if (f) closeSync(f.fd)
  }

  async close(): Promise<void> {
    this.#closeFile()
  }
}

/** Rejects a name that would leave the target directory. */
function safeName(raw: string): string {
  const name = decodeURIComponent(raw)
  if (name === '' || name.startsWith('/') || name.split('/').some((s) => s === '..' || s === '.' || s === '')) {
    throw new TidemarkError('TM_ERR_REPO_CORRUPT', `a stored part names the file "${name}", which is not a plain relative path`)
  }
  return name
}

function corrupt(why: string): TidemarkError {
  return new TidemarkError('TM_ERR_REPO_CORRUPT', `a stored part is malformed: ${why}`)
}

/** Writes all of `bytes` to `fd`. */
function writeAll(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at)
}

/**
 * Where the writing of a packed part stands between two pieces of its stream: plain data,
 * so a piece can be written by whichever worker thread decoded it (the restore passes it
 * from one chunk's task to the next).
 */
export interface UnpackState {
  /** The directory was created. */
  started: boolean
  /** A header line cut by the end of the previous piece (at most MAX_HEADER bytes). */
  pending: Uint8Array
  /** The file being written (relative name) and the bytes it still needs. */
  file: { name: string; left: number } | null
  /** The files created so far, in stream order. */
  names: string[]
  ended: boolean
}

/** The state before the first piece. */
export function newUnpackState(): UnpackState {
  return { started: false, pending: new Uint8Array(0), file: null, names: [], ended: false }
}

/** Parses a header line; creates the file it names (and its subdirectory), returned open unless it is empty. */
function header(dir: string, state: UnpackState, line: string): number | undefined {
  const [magic, a, b] = line.split(' ')
  if (magic !== MAGIC || a === undefined || b === undefined) throw corrupt('bad header line')
  if (a === 'END') {
    if (Number(b) !== state.names.length) throw corrupt(`end line says ${b} files, ${state.names.length} were read`)
    state.ended = true
    return undefined
  }
  const size = Number(a)
  if (!Number.isSafeInteger(size) || size < 0) throw corrupt(`bad size "${a}"`)
  const name = safeName(b)
  if (name.includes('/')) mkdirSync(dirname(join(dir, name)), { recursive: true })
  const fd = openSync(join(dir, name), 'wx', 0o640)
  state.names.push(name)
  if (size === 0) {
    closeSync(fd)
    return undefined
  }
  state.file = { name, left: size }
  return fd
}

/**
 * Writes one piece of a packed part's stream into `dir` (created with the first piece),
 * continuing from `state`, which it updates. Synchronous calls only: it runs on a worker
 * thread of the pipeline, right after that thread decoded the piece, so the main thread of
 * a restore neither receives the part's bytes nor creates and writes its files (a CPU
 * profile of a parts restore on tmpfs had the main thread busy 90 % of the time, a third
 * of it in those calls, while the workers were idle two thirds of theirs). A file cut by
 * the end of a piece is reopened for appending by the next one. Nothing is synced: a part
 * is attached from the page cache, as ClickHouse does not sync a part it attaches either.
 * Throws TM_ERR_REPO_CORRUPT on a malformed stream, or the file system's error; the caller
 * removes the directory after any throw.
 */
export function unpackPiece(dir: string, state: UnpackState, piece: Uint8Array): void {
  if (!state.started) {
    mkdirSync(dir, { recursive: true })
    state.started = true
  }
  // Only a partial header line is carried over; file bytes are written without copying.
  let buf = state.pending.length === 0 ? piece : Buffer.concat([state.pending, piece])
  state.pending = new Uint8Array(0)
  let fd: number | undefined
  try {
    while (buf.length > 0) {
      if (state.ended) throw corrupt('data after the end line')
      const file = state.file
      if (file) {
        fd ??= openSync(join(dir, file.name), 'a')
        const take = Math.min(file.left, buf.length)
        writeAll(fd, buf.subarray(0, take))
        file.left -= take
        buf = buf.subarray(take)
        if (file.left === 0) {
          closeSync(fd)
          fd = undefined
          state.file = null
        }
        continue
      }
      const nl = buf.indexOf(10)
      if (nl < 0) {
        if (buf.length > MAX_HEADER) throw corrupt('header line too long')
        state.pending = Uint8Array.prototype.slice.call(buf)
        return
      }
      fd = header(dir, state, Buffer.from(buf.buffer, buf.byteOffset, nl).toString('utf8'))
      buf = buf.subarray(nl + 1)
    }
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** The file names once the whole stream was written; TM_ERR_REPO_CORRUPT when it stopped short of its end line. */
export function finishUnpack(state: UnpackState): string[] {
  if (!state.ended) throw corrupt('the stream ended before its end line')
  return state.names
}

/** Writes the packed part `source` streams into `dir` (created), piece by piece on this thread; resolves with the file names. */
export async function unpackPart(source: AsyncIterable<Buffer | string>, dir: string): Promise<string[]> {
  const state = newUnpackState()
  for await (const raw of source) unpackPiece(dir, state, Buffer.isBuffer(raw) ? raw : Buffer.from(raw))
  return finishUnpack(state)
}
