/**
 * Guards on the local WAL directory, so a file is only ever archived under the
 * cluster it belongs to: the directory is claimed by a marker naming the cluster,
 * and each segment's long page header must name that cluster and the segment's own
 * address before it is stored.
 */
import { mkdir, open, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { TidemarkError } from '../../errors.ts'
import { segmentSystemId } from './wal-page.ts'

/** The marker file naming the cluster whose WAL the directory holds (pg_receivewal ignores it). */
export const DIR_MARKER = 'tidemark-system-id'

/** Creates the directory (0700) and claims it for `systemId`; TM_ERR_POSTGRES_CONFIG when another cluster claimed it. */
export async function claimWalDir(dir: string, systemId: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const marker = join(dir, DIR_MARKER)
  const owner = await readFile(marker, 'utf8').then((s) => s.trim(), () => undefined)
  if (owner !== undefined && owner !== systemId) {
    throw new TidemarkError('TM_ERR_POSTGRES_CONFIG', `the WAL directory ${dir} belongs to the PostgreSQL cluster ${owner}, not to this server (${systemId}): give each server its own postgres.walDir`)
  }
  if (owner === undefined) await writeFile(marker, `${systemId}\n`)
}

/** The system identifier the segment file at `path` names in its first page, or undefined when that page is not a header for `segStart`. */
export async function fileSystemId(path: string, segStart: bigint): Promise<string | undefined> {
  const fh = await open(path, 'r')
  const head = Buffer.alloc(40)
  try {
    await fh.read(head, 0, head.length, 0)
  } finally {
    await fh.close()
  }
  return segmentSystemId(head, segStart)
}

/** Renames `path` to `path.<suffix>`, out of pg_receivewal's and the archive's sight; returns the new name. */
export async function setAside(path: string, suffix: 'stale' | 'foreign'): Promise<string> {
  const to = `${path}.${suffix}`
  await rename(path, to)
  return to
}
