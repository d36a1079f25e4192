/**
 * What `restore_command` runs: fetch one archived WAL file (a segment, a timeline
 * history file, or for a segment not yet complete the newest upload of it) from the
 * repository and write it to the path PostgreSQL gave, atomically (temp file, fsync,
 * rename), verified while streaming (sha256, size, chunk order, authenticity).
 */
import { createWriteStream } from 'node:fs'
import { copyFile, mkdir, open, readdir, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { isTidemarkError } from '../../errors.ts'
import { classifyWalName, nextSegmentName } from './wal.ts'
import type { WalStore, LocatedWal } from './wal-store.ts'

/** The temp file a fetch writes before renaming it to `dest` (deleted on failure; a signal handler may delete it too). */
export function fetchTempPath(dest: string, pid = process.pid): string {
  return `${dest}.tidemark-${pid}.tmp`
}

async function writeAtomically(store: WalStore, loc: LocatedWal, dest: string, signal?: AbortSignal): Promise<void> {
  const tmp = fetchTempPath(dest)
  try {
    await pipeline(await store.repo.readObject(loc.ref, { signal }), createWriteStream(tmp, { mode: 0o600 }), { signal })
    const fh = await open(tmp, 'r+')
    try {
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, dest)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw err
  }
}

/**
 * Read-ahead for recovery. PostgreSQL runs restore_command once per segment, and each
 * run is a new process: start-up, not transfer, dominated restore time. So a fetch of
 * complete segment N also fetches N+1 … N+count into `dir` (in parallel, verified like
 * any fetch); the calls that follow find them there and only rename them. Only
 * complete, archived segments are read ahead (never the newest partial upload, which
 * may still grow); a segment in `dir` is immutable content for its name, and files
 * before the one asked for are removed. `dir` must be on the same filesystem as the
 * destination for the rename to be atomic (a copy is used otherwise).
 */
export interface Prefetch {
  dir: string
  count: number
}

/** Moves a segment read ahead earlier to `dest`; false when there is none. */
export async function takePrefetched(dir: string, name: string, dest: string): Promise<boolean> {
  const path = join(dir, name)
  try {
    await rename(path, dest)
    return true
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return false
    if (code !== 'EXDEV') throw err
    await copyFile(path, `${dest}.tidemark-${process.pid}.tmp`)
    await rename(`${dest}.tidemark-${process.pid}.tmp`, dest)
    await unlink(path)
    return true
  }
}

async function readAhead(store: WalStore, name: string, segSize: number, pf: Prefetch, signal?: AbortSignal): Promise<number> {
  await mkdir(pf.dir, { recursive: true, mode: 0o700 })
  // Segments before the one just asked for will not be asked for again.
  for (const f of await readdir(pf.dir)) {
    if (f < name && classifyWalName(f, segSize)?.kind === 'segment') await unlink(join(pf.dir, f)).catch(() => {})
  }
  const names: string[] = []
  for (let n = name, i = 0; i < pf.count; i++) names.push((n = nextSegmentName(n, segSize)))
  const fetched = await Promise.all(
    names.map(async (n) => {
      const loc = await store.locate(n)
      if (loc?.source !== 'segment') return false
      await writeAtomically(store, loc, join(pf.dir, n), signal)
      return true
    }),
  )
  return fetched.filter(Boolean).length
}

/**
 * Fetches `name` into `dest`. Resolves with where it came from, or undefined when the
 * repository does not hold it (PostgreSQL asks for such files as part of normal
 * recovery). A partial upload replaced while being read is looked up again. With
 * `prefetch`, complete segments are read ahead (see Prefetch); a failed read-ahead
 * costs nothing but the time (the segment is fetched again when asked for).
 */
export async function fetchWal(store: WalStore, name: string, dest: string, opts: { signal?: AbortSignal; prefetch?: Prefetch } = {}): Promise<LocatedWal | { source: 'prefetched' } | undefined> {
  const pf = opts.prefetch
  if (pf && (await takePrefetched(pf.dir, name, dest))) return { source: 'prefetched' }
  const found = await fetchOnce(store, name, dest, opts.signal)
  if (pf && pf.count > 0 && found?.source === 'segment') {
    // A complete segment's raw size is the cluster's segment size.
    await readAhead(store, name, found.ref.rawSize, pf, opts.signal).catch(() => 0)
  }
  return found
}

async function fetchOnce(store: WalStore, name: string, dest: string, signal?: AbortSignal): Promise<LocatedWal | undefined> {
  const opts = { signal }
  for (let attempt = 1; ; attempt++) {
    const loc = await store.locate(name)
    if (!loc) return undefined
    try {
      await writeAtomically(store, loc, dest, opts.signal)
      return loc
    } catch (err) {
      const replaced = loc.source === 'partial' && (store.repo.sink.isNotFound(err) || isTidemarkError(err, 'TM_ERR_INTEGRITY'))
      if (!replaced || attempt >= 3) throw err
    }
  }
}
