/**
 * The fs sink: a local directory (the embedded default repository). Key `a/b/c` is the
 * file `<root>/a/b/c`, readable with ordinary tools.
 *
 * Atomic put: bytes go to a temp file under `<root>/.tmp tidemark/`, which is fsynced,
 * renamed into place, and the parent directory fsynced, so a reader (or a crash) sees
 * the old object or the whole new one. The temp directory's name contains a space,
 * which no key segment may, so it never collides with a key and list never shows it.
 * A crash can leave files in it; they are never read and may be removed whenever no
 * put is running.
 *
 * Limitation (unlike S3): `a` and `a/b` cannot both exist, since `a` cannot be a file
 * and a directory at once; such a put fails with a permanent error.
 */
import { randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { constants, copyFile, mkdir, open, rename, rmdir, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { addAbortSignal, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { ByteCounter, checkLength, checkPageSize, checkRange, discardBody, guardBody, rangeNotSatisfiable, relay, throwIfAborted } from './common.ts'
import { mapFsError } from './fs-errors.ts'
import { walkKeys } from './fs-list.ts'
import {
  SinkError,
  checkKey,
  isNotFoundError,
  isPermanentError,
  type GetOptions,
  type ListOptions,
  type ListPage,
  type ObjectInfo,
  type OpOptions,
  type PutOptions,
  type PutResult,
  type Sink,
} from './sink.ts'

const TMP_DIR = '.tmp tidemark'
const DEFAULT_PAGE = 1000
const DELETE_PARALLEL = 16
/**
 * Bytes per read of get(): 1 MiB, not the stream default of 64 KiB. Each read is a promise
 * round trip on the main thread; in a CPU profile of a parts restore of the benchmark
 * dataset (218 MB of objects) the reads took 339 ms of the main thread at 64 KiB and 88 ms
 * at 1 MiB (bench/RESULTS.md, 2026-12-07).
 */
const READ_SIZE = 1024 * 1024

const errno = (err: unknown) => (err as NodeJS.ErrnoException).code

function notFound(what: string, key: string): SinkError {
  return new SinkError('not_found', 'TM_ERR_SINK_NOT_FOUND', `${what}: no such object`, { key })
}

/** fsync a directory so a rename in it survives a crash; some file systems cannot, and then the rename is still atomic. */
async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r')
  try {
    await h.sync()
  } catch (err) {
    if (errno(err) !== 'EINVAL' && errno(err) !== 'ENOTSUP') throw err
  } finally {
    await h.close()
  }
}

async function syncFile(path: string): Promise<void> {
  const h = await open(path, 'r')
  try {
    await h.sync()
  } finally {
    await h.close()
  }
}

class FsSink implements Sink {
  readonly description: string
  private readonly root: string
  private readonly tmp: string

  constructor(rootDir: string) {
    this.root = resolve(rootDir)
    this.tmp = join(this.root, TMP_DIR)
    this.description = `file://${this.root}`
  }

  private path(key: string): string {
    return join(this.root, ...key.split('/'))
  }

  private what(op: string, key: string): string {
    return `${op} ${key} in ${this.description}`
  }

  async put(key: string, body: Readable | Buffer, opts: PutOptions = {}): Promise<PutResult> {
    const what = this.what('put', key)
    const guard = Buffer.isBuffer(body) ? undefined : guardBody(body)
    const tmp = join(this.tmp, randomUUID())
    try {
      checkKey(key)
      throwIfAborted(what, opts.signal, key)
      await mkdir(this.tmp, { recursive: true })
      const size = await this.writeTemp(tmp, key, guard?.stream ?? body, opts)
      await this.commit(tmp, this.path(key))
      return { size }
    } catch (err) {
      discardBody(body)
      await unlink(tmp).catch(() => undefined)
      throwIfAborted(what, opts.signal, key)
      if (guard?.isSourceError(err)) throw err
      throw mapFsError(err, what, key, false)
    }
  }

  private async writeTemp(tmp: string, key: string, body: Readable | Buffer, opts: PutOptions): Promise<number> {
    if (Buffer.isBuffer(body)) {
      checkLength(key, opts.contentLength, body.length)
      await writeFile(tmp, body, { flag: 'wx', flush: true, signal: opts.signal })
      return body.length
    }
    const counter = new ByteCounter(key, opts.contentLength)
    // flush: the data is fsynced before the file is closed, i.e. before the rename.
    await pipeline(body, counter, createWriteStream(tmp, { flags: 'wx', flush: true }), { signal: opts.signal })
    return counter.bytes
  }

  /** Renames a complete temp file into place and makes the rename durable. */
  private async commit(tmp: string, target: string): Promise<void> {
    const dir = dirname(target)
    for (let attempt = 0; ; attempt++) {
      await mkdir(dir, { recursive: true })
      try {
        await rename(tmp, target)
        break
      } catch (err) {
        // A concurrent delete may remove the (empty) parent between mkdir and rename.
        if (errno(err) !== 'ENOENT' || attempt >= 3) throw err
      }
    }
    await syncDir(dir)
  }

  async get(key: string, opts: GetOptions = {}): Promise<Readable> {
    checkKey(key)
    if (opts.range) checkRange(key, opts.range)
    const what = this.what('get', key)
    throwIfAborted(what, opts.signal, key)
    let fh: FileHandle | undefined
    try {
      fh = await open(this.path(key), 'r')
      const s = await fh.stat()
      if (!s.isFile()) throw notFound(what, key)
      let bounds: { start: number; end: number } | undefined
      if (opts.range) {
        if (opts.range.start >= s.size) throw rangeNotSatisfiable(key, opts.range.start, s.size)
        bounds = { start: opts.range.start, end: Math.min(opts.range.end ?? s.size - 1, s.size - 1) }
      }
      const stream = fh.createReadStream({ ...bounds, autoClose: true, highWaterMark: READ_SIZE })
      fh = undefined // owned by the stream now
      if (opts.signal) addAbortSignal(opts.signal, stream)
      return relay(stream, (err) => mapFsError(err, what, key, false))
    } catch (err) {
      await fh?.close().catch(() => undefined)
      throw mapFsError(err, what, key, true)
    }
  }

  async head(key: string, opts: OpOptions = {}): Promise<ObjectInfo> {
    checkKey(key)
    const what = this.what('head', key)
    throwIfAborted(what, opts.signal, key)
    try {
      const s = await stat(this.path(key))
      if (!s.isFile()) throw notFound(what, key)
      return { key, size: s.size, lastModified: s.mtime }
    } catch (err) {
      throw mapFsError(err, what, key, true)
    }
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListPage> {
    const what = `list ${JSON.stringify(prefix)} in ${this.description}`
    checkPageSize(what, opts.pageSize)
    const pageSize = opts.pageSize ?? DEFAULT_PAGE
    throwIfAborted(what, opts.signal)
    const items: ObjectInfo[] = []
    try {
      for await (const e of walkKeys(this.root, prefix, opts.cursor)) {
        if (items.length === pageSize) return { items, next: items[items.length - 1]!.key }
        items.push(e)
        throwIfAborted(what, opts.signal)
      }
    } catch (err) {
      throw mapFsError(err, what, undefined, false)
    }
    return { items }
  }

  async delete(keys: readonly string[], opts: OpOptions = {}): Promise<void> {
    keys.forEach(checkKey)
    const what = `delete ${keys.length} keys in ${this.description}`
    let next = 0
    const worker = async () => {
      while (next < keys.length) {
        throwIfAborted(what, opts.signal)
        await this.deleteOne(keys[next++]!)
      }
    }
    await Promise.all(Array.from({ length: Math.min(DELETE_PARALLEL, keys.length) }, worker))
  }

  private async deleteOne(key: string): Promise<void> {
    const path = this.path(key)
    try {
      await unlink(path)
    } catch (err) {
      // Missing, or a directory (a prefix, not an object): nothing to delete.
      const c = errno(err)
      if (c === 'ENOENT') return
      if ((c === 'EISDIR' || c === 'EPERM') && (await stat(path).catch(() => undefined))?.isDirectory()) return
      throw mapFsError(err, this.what('delete', key), key, false)
    }
    await this.pruneEmptyDirs(dirname(path))
  }

  /** Removes now-empty parent directories up to the root; any failure (not empty, raced) just stops. */
  private async pruneEmptyDirs(dir: string): Promise<void> {
    while (dir.length > this.root.length && dir.startsWith(this.root)) {
      try {
        await rmdir(dir)
      } catch {
        return
      }
      dir = dirname(dir)
    }
  }

  async copy(from: string, to: string, opts: OpOptions = {}): Promise<void> {
    checkKey(from)
    checkKey(to)
    const what = this.what('copy', `${from} -> ${to}`)
    throwIfAborted(what, opts.signal, from)
    if (from === to) {
      await this.head(from, opts)
      return
    }
    const tmp = join(this.tmp, randomUUID())
    try {
      const s = await stat(this.path(from)).catch((err: unknown) => {
        throw errno(err) === 'ENOENT' ? notFound(what, from) : err
      })
      if (!s.isFile()) throw notFound(what, from)
      await mkdir(this.tmp, { recursive: true })
      // FICLONE: a reflink where the file system supports it, a byte copy elsewhere.
      await copyFile(this.path(from), tmp, constants.COPYFILE_FICLONE)
      await syncFile(tmp)
      throwIfAborted(what, opts.signal, from)
      await this.commit(tmp, this.path(to))
    } catch (err) {
      await unlink(tmp).catch(() => undefined)
      throw mapFsError(err, what, from, true)
    }
  }

  isNotFound(err: unknown): boolean {
    return isNotFoundError(err)
  }

  isPermanent(err: unknown): boolean {
    return isPermanentError(err)
  }

  async close(): Promise<void> {
    // Nothing is held open between calls.
  }
}

/** A Sink over the local directory `rootDir` (created on first put). Every method is safe to retry. */
export function createFsSink(rootDir: string): Sink {
  return new FsSink(rootDir)
}
