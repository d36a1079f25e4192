/**
 * What `restore_command` runs: fetch one archived WAL file (a segment, a timeline
 * history file, or for a segment not yet complete the newest upload of it) from the
 * repository and write it to the path PostgreSQL gave, atomically (temp file, fsync,
 * rename), verified while streaming (sha256, size, chunk order, authenticity).
 */
import { createWriteStream } from 'node:fs'
import { open, rename, unlink } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { isTidemarkError } from '../../errors.ts'
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
 * Fetches `name` into `dest`. Resolves with where it came from, or undefined when the
 * repository does not hold it (PostgreSQL asks for such files as part of normal
 * recovery). A partial upload replaced while being read is looked up again.
 */
export async function fetchWal(store: WalStore, name: string, dest: string, opts: { signal?: AbortSignal } = {}): Promise<LocatedWal | undefined> {
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
