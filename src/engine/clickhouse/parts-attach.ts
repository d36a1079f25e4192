/**
 * Putting one stored part into a table of the target server: unpack it into
 * `detached/` under a temporary name, give it the owner of the table's
 * directory, rename it to the part's name once complete (the server never
 * sees a half-written part), then `ALTER TABLE … ATTACH PART`. The server
 * gives the attached part new block numbers, so parts of several backups or
 * sources never clash.
 */
import { chown, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { TidemarkError } from '../../errors.ts'
import type { ClickHouseDriver } from './driver.ts'
import { qualified, quoteString } from './names.ts'
import { tableDataDir } from './parts-shadow.ts'

/** Where one table's parts go on the target. */
export interface AttachTarget {
  driver: ClickHouseDriver
  /** The target server's data path as mounted here. */
  dataPath: string
  database: string
  table: string
  signal?: AbortSignal
  /** Called with the complete part directory in `detached/` right before ATTACH (tests corrupt it here). */
  beforeAttach?: (dir: string) => Promise<void>
}

/** The table's directory on the target, with its owner; TM_ERR_CLICKHOUSE_DATA_PATH when the data path does not hold it. */
export async function targetTableDir(t: Pick<AttachTarget, 'dataPath' | 'database' | 'table'>): Promise<{ dir: string; uid: number; gid: number }> {
  const dir = tableDataDir(t.dataPath, t.database, t.table)
  try {
    const s = await stat(join(dir, 'detached'))
    return { dir, uid: s.uid, gid: s.gid }
  } catch (err) {
    throw new TidemarkError(
      'TM_ERR_CLICKHOUSE_DATA_PATH',
      `the target data path ${t.dataPath} does not hold table ${t.database}.${t.table} (no ${join(dir, 'detached')}): it is not the data path of the target server; give that server's <path> as mounted here with --target-data-path, or restore a logical backup`,
      { cause: err, details: { dataPath: t.dataPath, table: `${t.database}.${t.table}` } },
    )
  }
}

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await chown(dir, uid, gid)
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) await chownTree(join(dir, e.name), uid, gid)
    else await chown(join(dir, e.name), uid, gid)
  }
}

function writeFailed(err: unknown, where: string): TidemarkError {
  if (err instanceof TidemarkError) return err
  const e = err as NodeJS.ErrnoException
  const denied = e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS'
  return new TidemarkError(
    denied ? 'TM_ERR_CLICKHOUSE_DATA_PATH' : 'TM_ERR_CLICKHOUSE_ATTACH',
    denied ? `cannot write the part into ${where} (${e.code}): tidemark needs write access to the target server's data path (run it as the server's user, or restore a logical backup)` : `writing the part into ${where} failed: ${e.message}`,
    { cause: err, details: { path: where } },
  )
}

/**
 * Writes the packed part into the table's `detached/<part>` with `unpackInto` (which
 * creates the directory it is given and writes the part's files into it) and attaches it.
 * Removes its directory from `detached/` on any failure.
 */
export async function attachPart(t: AttachTarget, part: string, unpackInto: (dir: string) => Promise<unknown>): Promise<void> {
  const { dir, uid, gid } = await targetTableDir(t)
  const temp = join(dir, 'detached', `tidemark-tmp-${part}`)
  const final = join(dir, 'detached', part)
  let renamed = false
  try {
    try {
      await unpackInto(temp)
      // Files this process creates already have its owner; chown only when the server runs as another user.
      if (process.getuid?.() !== uid || process.getgid?.() !== gid) await chownTree(temp, uid, gid)
      await rename(temp, final)
      renamed = true
    } catch (err) {
      throw writeFailed(err, temp)
    }
    await t.beforeAttach?.(final)
    try {
      await t.driver.command(`ALTER TABLE ${qualified(t.database, t.table)} ATTACH PART ${quoteString(part)}`, { signal: t.signal })
    } catch (err) {
      const e = err as TidemarkError
      throw new TidemarkError('TM_ERR_CLICKHOUSE_ATTACH', `the server refused to attach part ${part} to ${t.database}.${t.table} (a damaged part, or a part format this server does not read): ${e.message}`, { cause: err, details: { ...e.details, part } })
    }
  } catch (err) {
    await rm(temp, { recursive: true, force: true })
    // Only what this call put there: a directory of that name left by someone else stays.
    if (renamed) await rm(final, { recursive: true, force: true })
    throw err
  }
}
