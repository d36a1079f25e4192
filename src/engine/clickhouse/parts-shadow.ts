/**
 * The server's data path as the parts method sees it: freezing a table into
 * `shadow/<name>/`, finding the frozen part directories, removing the shadow
 * directory, and checking that a configured data path is this server's.
 *
 * Layout (18.16 and later): `<path>/data/<db>/<table>/<part>/` for live parts,
 * `<path>/shadow/<name>/data/<db>/<table>/<part>/` after FREEZE WITH NAME,
 * all three names (the freeze's too) escaped as escapeForFileName does (bytes other than [A-Za-z0-9_]
 * become %XX). Servers without WITH NAME number their freezes
 * (`shadow/increment.txt` holds the last number).
 */
import { rmSync } from 'node:fs'
import { access, constants, readdir, readFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { TidemarkError } from '../../errors.ts'
import type { ClickHouseDriver } from './driver.ts'
import { qualified, quoteString } from './names.ts'

/** ClickHouse's escapeForFileName: bytes other than [A-Za-z0-9_] become `%XX` (upper-case hex). */
export function escapeForFileName(name: string): string {
  let out = ''
  for (const byte of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(byte)
    out += /[A-Za-z0-9_]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** `<root>/data/<db>/<table>`: where the server keeps a table's parts. */
export function tableDataDir(root: string, database: string, table: string): string {
  return join(root, 'data', escapeForFileName(database), escapeForFileName(table))
}

/** Throws TM_ERR_CLICKHOUSE_DATA_PATH unless `root` is a readable (and, with `write`, writable) ClickHouse data path. */
export async function checkDataPath(root: string, write: boolean): Promise<void> {
  const what = write ? 'writable' : 'readable'
  try {
    if (!(await stat(join(root, 'data'))).isDirectory()) throw new Error('not a directory')
    await access(join(root, 'data'), write ? constants.R_OK | constants.W_OK : constants.R_OK)
  } catch (err) {
    throw new TidemarkError(
      'TM_ERR_CLICKHOUSE_DATA_PATH',
      `the ClickHouse data path ${root} is not a ${what} ClickHouse data directory (${(err as Error).message}); give the server's <path> as mounted here, or use the logical method (clickhouse.method: logical)`,
      { cause: err, details: { dataPath: root } },
    )
  }
}

/** The numbered freezes running or queued, per data path. */
const numbered = new Map<string, Promise<unknown>>()

/** Runs `fn` after every numbered freeze of `root` queued before it (this process's). */
function oneAtATime<T>(root: string, fn: () => Promise<T>): Promise<T> {
  const next = (numbered.get(root) ?? Promise.resolve()).then(fn)
  const tail = next.then(() => undefined, () => undefined)
  numbered.set(root, tail)
  void tail.then(() => {
    if (numbered.get(root) === tail) numbered.delete(root)
  })
  return next
}

/**
 * Freezes `db.table` (only partition `partitionId` when given) as `shadow/<name>`; resolves
 * with the shadow directory's name (a number on servers without WITH NAME). Freezes of
 * several partitions under one name add up in one directory. Freezes WITH NAME may run at
 * once; a server without it names each freeze by the number it then reads from
 * `shadow/increment.txt`, so those run one at a time per data path.
 */
export async function freezeTable(driver: ClickHouseDriver, root: string, database: string, table: string, name: string, signal?: AbortSignal, partitionId?: string): Promise<string> {
  const freeze = `ALTER TABLE ${qualified(database, table)} FREEZE${partitionId === undefined ? '' : ` PARTITION ID ${quoteString(partitionId)}`}`
  try {
    await driver.command(`${freeze} WITH NAME ${quoteString(name)}`, { signal })
    return name
  } catch (err) {
    if (!/syntax|WITH NAME|Expected/i.test((err as Error).message)) throw err
  }
  // Older servers: the freeze increments shadow/increment.txt and writes shadow/<number>/.
  return await oneAtATime(root, async () => {
    await driver.command(freeze, { signal })
    return (await readFile(join(root, 'shadow', 'increment.txt'), 'utf8')).trim()
  })
}

/** The frozen part directories of a table (names), or undefined when the freeze wrote none for it. */
export async function frozenParts(root: string, shadowName: string, database: string, table: string): Promise<string[] | undefined> {
  const dir = frozenTableDir(root, shadowName, database, table)
  try {
    const entries = await readdir(dir, { withFileTypes: true })
    return entries.filter((e) => e.isDirectory() && e.name !== 'detached').map((e) => e.name).sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** `<root>/shadow/<name>/data/<db>/<table>`, names escaped. */
export function frozenTableDir(root: string, shadowName: string, database: string, table: string): string {
  return join(root, 'shadow', escapeForFileName(shadowName), 'data', escapeForFileName(database), escapeForFileName(table))
}

/** Removes `shadow/<name>` (ALTER TABLE … UNFREEZE does not exist on older servers; the directory only holds hard links). */
export async function removeShadow(root: string, shadowName: string): Promise<void> {
  if (shadowName === '') return
  const top = join(root, 'shadow', escapeForFileName(shadowName))
  // Part directories (`data/<db>/<table>/<part>`) go one at a time with synchronous calls,
  // yielding between them so a daemon's API still answers: the promise-based walk took
  // twice as long for the thousands of hard links a full freeze leaves (3 600 files: 86-144
  // ms against 42-50 ms). What is left, a few directories, goes with the walk.
  for (const db of await subdirectories(join(top, 'data'))) {
    for (const table of await subdirectories(db)) {
      for (const part of await subdirectories(table)) {
        rmSync(part, { recursive: true, force: true })
        await yieldToLoop()
      }
    }
  }
  await rm(top, { recursive: true, force: true })
}

/** The subdirectories of `dir`, as paths; none when it does not exist. */
async function subdirectories(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => join(dir, e.name))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

/** The error for a data path whose shadow directory did not receive a freeze of this server. */
export function foreignDataPath(root: string, database: string, table: string, shadowName: string): TidemarkError {
  return new TidemarkError(
    'TM_ERR_CLICKHOUSE_DATA_PATH',
    `the data path ${root} does not belong to the server being backed up: FREEZE of ${database}.${table} wrote nothing under ${join(root, 'shadow')} (it wrote shadow/${escapeForFileName(shadowName)} on the server's own disk, which tidemark cannot reach: remove it there); give that server's <path> as mounted here, or use the logical method (clickhouse.method: logical)`,
    { details: { dataPath: root, table: `${database}.${table}`, shadow: escapeForFileName(shadowName) } },
  )
}
