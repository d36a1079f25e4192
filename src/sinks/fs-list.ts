/**
 * Key listing for the fs sink: a depth-first walk that yields keys in the byte order
 * S3 uses, resuming after a cursor and pruning subtrees that cannot match, so a page
 * costs work proportional to the page, not to the whole tree.
 */
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'

/** Names that can be a key segment; anything else (temp files, foreign files) is invisible. */
const SEGMENT_RE = /^[\x21-\x7e]+$/

export interface FsEntry {
  key: string
  size: number
  lastModified: Date
}

interface Child {
  name: string
  /** Key of a file, or key prefix (`…/`) of a directory: comparing these orders whole subtrees. */
  sortKey: string
  dir: boolean
}

const code = (err: unknown) => (err as NodeJS.ErrnoException).code

async function children(dir: string, dirKey: string): Promise<Child[]> {
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch (err) {
    // A directory removed by a concurrent delete (or a root not created yet) is empty.
    if (code(err) === 'ENOENT') return []
    throw err
  }
  const out: Child[] = []
  for (const e of entries) {
    if (!SEGMENT_RE.test(e.name) || e.name === '.' || e.name === '..') continue
    let dirFlag = e.isDirectory()
    if (e.isSymbolicLink()) {
      const s = await stat(join(dir, e.name)).catch(() => undefined)
      if (!s) continue
      dirFlag = s.isDirectory()
    } else if (!dirFlag && !e.isFile()) continue
    out.push({ name: e.name, dir: dirFlag, sortKey: dirKey + e.name + (dirFlag ? '/' : '') })
  }
  // Plain `<` on ASCII strings is byte order; a directory sorts as `name/` because
  // every key below it starts so ('a-b' < 'a/c' < 'a0').
  return out.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0))
}

/** Whether a directory whose keys all start with `dirKey` can hold a key under `prefix` after `after`. */
function dirMayMatch(dirKey: string, prefix: string, after: string | undefined): boolean {
  if (!dirKey.startsWith(prefix) && !prefix.startsWith(dirKey)) return false
  // Every key in the subtree starts with dirKey; if dirKey < after and after is not
  // inside the subtree, every key there is < after.
  return after === undefined || dirKey > after || after.startsWith(dirKey)
}

/** Yields every key under `prefix` that sorts strictly after `after`, in byte order, with size and mtime. */
export async function* walkKeys(root: string, prefix: string, after: string | undefined, dir = root, dirKey = ''): AsyncGenerator<FsEntry> {
  for (const c of await children(dir, dirKey)) {
    const path = join(dir, c.name)
    if (c.dir) {
      if (dirMayMatch(c.sortKey, prefix, after)) yield* walkKeys(root, prefix, after, path, c.sortKey)
      continue
    }
    if (!c.sortKey.startsWith(prefix) || (after !== undefined && c.sortKey <= after)) continue
    const s = await stat(path).catch((err: unknown) => {
      if (code(err) === 'ENOENT') return undefined // deleted since readdir
      throw err
    })
    if (s?.isFile()) yield { key: c.sortKey, size: s.size, lastModified: s.mtime }
  }
}
