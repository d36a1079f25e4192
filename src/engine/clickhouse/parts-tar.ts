/**
 * The stream format of one stored part directory (FORMAT.md, "ClickHouse
 * parts"): for each file, a header line `TMPART1 <size> <name>\n` (name
 * URI-encoded, `/` for files in subdirectories) followed by exactly `size`
 * bytes; then `TMPART1 END <files>\n`. Written and read file by file in
 * chunks, so memory stays flat whatever the part's size. The repository
 * pipeline checksums the whole stream; this format only has to be unambiguous.
 */
import { closeSync, fstatSync, open, openSync, readSync, write, writeSync } from 'node:fs'
import { mkdir, readdir } from 'node:fs/promises'
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

/**
 * Pieces of file data from this size on are written on the thread pool, so the main thread
 * decodes the other parts meanwhile: copying into the page cache ran at ~400 MB/s here, and
 * written synchronously the column files of a restore were the main thread's largest cost.
 * Smaller pieces (marks, checksums, counts) stay synchronous: there a promise round trip
 * costs more than the write.
 */
const ASYNC_WRITE = 64 * 1024

/** Writes all of `bytes` to `fd` on the thread pool. */
async function writeAllAsync(fd: number, bytes: Buffer): Promise<void> {
  for (let at = 0; at < bytes.length; ) {
    at += await new Promise<number>((resolve, reject) => write(fd, bytes, at, bytes.length - at, null, (err, n) => (err ? reject(err) : resolve(n))))
  }
}

/**
 * Creates a file for writing, on the thread pool. Creating a file is the one call that may
 * cost the kernel far more than the round trip: on this machine's ext4 (no journal), after
 * thousands of files were deleted, each creation scanned the recently freed inodes, up to
 * ~0.8 ms per file. On the thread pool those scans run beside the main thread's decoding,
 * and for several parts at once (a parts restore, 6 alternating runs: median 3.22 s
 * against 3.81 s with synchronous creation; bench/RESULTS.md, 2026-12-07).
 */
function createFile(path: string): Promise<number> {
  return new Promise((resolve, reject) => open(path, 'wx', 0o640, (err, fd) => (err ? reject(err) : resolve(fd))))
}

/** Writes all of `bytes` to `fd`. */
function writeAll(fd: number, bytes: Buffer): void {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at)
}

/**
 * Writes the files of a packed part into a directory as its stream arrives,
 * piece by piece: push() each piece in order (awaiting each), then end().
 * Throws TM_ERR_REPO_CORRUPT on a malformed stream, or the file system's
 * error; after any throw call close(), and the caller removes the directory.
 *
 * Files are closed, and small pieces written, with synchronous calls, as
 * PartReader reads them: most files are a few hundred bytes, and a promise
 * round trip through the thread pool for each write and close cost more than
 * the calls themselves. Creating a file (createFile) and writing large pieces
 * (ASYNC_WRITE) go to the thread pool. A write goes to the page cache; nothing is synced here, as
 * ClickHouse does not sync a part it attaches either.
 */
class PartUnpacker {
  readonly #dir: string
  readonly #names: string[] = []
  #pending: Buffer = Buffer.alloc(0)
  #file: { fd: number; left: number } | undefined
  #ended = false

  private constructor(dir: string) {
    this.#dir = dir
  }

  /**
   * An unpacker into `dir`, created (with its parents) on the thread pool: like a file, a
   * directory costs the kernel an inode allocation, slow on this machine's disk (see createFile).
   */
  static async create(dir: string): Promise<PartUnpacker> {
    await mkdir(dir, { recursive: true })
    return new PartUnpacker(dir)
  }

  async push(chunk: Buffer): Promise<void> {
    // Only a partial header line is carried over; file bytes are written without copying.
    let buf: Buffer = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
    this.#pending = Buffer.alloc(0)
    while (buf.length > 0) {
      if (this.#ended) throw corrupt('data after the end line')
      const file = this.#file
      if (file) {
        const take = Math.min(file.left, buf.length)
        if (take >= ASYNC_WRITE) await writeAllAsync(file.fd, buf.subarray(0, take))
        else writeAll(file.fd, buf.subarray(0, take))
        file.left -= take
        buf = buf.subarray(take)
        if (file.left === 0) this.close()
        continue
      }
      const nl = buf.indexOf(10)
      if (nl < 0) {
        if (buf.length > MAX_HEADER) throw corrupt('header line too long')
        this.#pending = buf
        return
      }
      await this.#header(buf.subarray(0, nl).toString('utf8'))
      buf = buf.subarray(nl + 1)
    }
  }

  async #header(line: string): Promise<void> {
    const [magic, a, b] = line.split(' ')
    if (magic !== MAGIC || a === undefined || b === undefined) throw corrupt('bad header line')
    if (a === 'END') {
      if (Number(b) !== this.#names.length) throw corrupt(`end line says ${b} files, ${this.#names.length} were read`)
      this.#ended = true
      return
    }
    const size = Number(a)
    if (!Number.isSafeInteger(size) || size < 0) throw corrupt(`bad size "${a}"`)
    const name = safeName(b)
    if (name.includes('/')) await mkdir(dirname(join(this.#dir, name)), { recursive: true })
    const fd = await createFile(join(this.#dir, name))
    this.#names.push(name)
    if (size === 0) closeSync(fd)
    else this.#file = { fd, left: size }
  }

  /** The file names, once the whole stream was pushed; TM_ERR_REPO_CORRUPT when it stopped short of its end line. */
  end(): string[] {
    if (!this.#ended) throw corrupt('the stream ended before its end line')
    return this.#names
  }

  /** Closes the file being written, if any (one cut short by an error). Idempotent. */
  close(): void {
    const file = this.#file
    this.#file = undefined
    if (file) closeSync(file.fd)
  }
}

/** Writes the packed part `source` streams into `dir` (created) with a PartUnpacker; resolves with the file names. */
export async function unpackPart(source: AsyncIterable<Buffer | string>, dir: string): Promise<string[]> {
  const unpacker = await PartUnpacker.create(dir)
  try {
    for await (const raw of source) await unpacker.push(Buffer.isBuffer(raw) ? raw : Buffer.from(raw))
    return unpacker.end()
  } finally {
    unpacker.close()
  }
}
