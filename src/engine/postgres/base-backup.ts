/**
 * A base backup into the repository: the tar stream of pg_basebackup goes through
 * the pipeline into `data/postgres/base/<id>.tar`; then the backup waits until the
 * WAL archive holds every segment from its start LSN to its stop LSN, and only then
 * commits its manifest, which lists the tar and those WAL files. Without the archive
 * running, the wait times out and the backup fails, committing nothing (its tar is
 * deleted).
 *
 * No writer lease: the objects are new keys (the tar is named by the backup id), a
 * journal protects the tar from prune until the manifest is written, and WAL is
 * never swept as unreferenced (FORMAT.md rule 7).
 */
import { TidemarkError } from '../../errors.ts'
import { journalKey, newBackupId, type ObjectRef, type Repository } from '../repository/index.ts'
import { BASE_METHOD, type PostgresBaseManifest } from './base-manifest.ts'
import { startBaseBackup, type BaseBackupResult } from './basebackup.ts'
import { silentLogger, type PgLogger } from './conn.ts'
import { formatMicros, microsOf, type Micros } from './instant.ts'
import { serverClock } from './server-probe.ts'
import { baseBackupKey, type WalFileRecord } from './wal-format.ts'
import { WalStore } from './wal-store.ts'
import { formatLsn, historyFileName, segmentRange } from './wal.ts'

/** What a base backup needs; systemId, serverMajor and segSize come from the preflight. */
export interface RunBaseBackupOptions {
  repo: Repository
  systemId: string
  serverMajor: number
  segSize: number
  replicationUrl: string
  /** Any role on the server, to read its clock when the backup has stopped. */
  sqlUrl: string
  pgBasebackup: string
  psqlPath?: string
  /** How long to wait for the backup's WAL to be archived. */
  walTimeoutMs: number
  pollMs?: number
  maxRate?: string
  signal?: AbortSignal
  logger?: PgLogger
}

/** What was committed. */
export interface BaseBackupReport {
  id: string
  manifest: PostgresBaseManifest
  storedBytes: number
  walWaitMs: number
  durationMs: number
}

const strip = (r: ObjectRef): ObjectRef => ({ key: r.key, size: r.size, sha256: r.sha256, rawSize: r.rawSize, codec: r.codec, chunkSize: r.chunkSize, chunks: r.chunks })

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve) => {
  const t = setTimeout(resolve, ms)
  signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true })
})

/** Waits until every file in `names` is archived; TM_ERR_POSTGRES_WAL_TIMEOUT after `timeoutMs`. */
export async function waitForWal(store: WalStore, names: readonly string[], timeoutMs: number, opts: { pollMs?: number; signal?: AbortSignal; backupId?: string } = {}): Promise<WalFileRecord[]> {
  const found = new Map<string, WalFileRecord>()
  const deadline = Date.now() + timeoutMs
  for (;;) {
    for (const n of names) {
      if (found.has(n)) continue
      const rec = await store.fileRecord(n)
      if (rec) found.set(n, rec)
    }
    if (found.size === names.length) return names.map((n) => found.get(n) as WalFileRecord)
    opts.signal?.throwIfAborted()
    if (Date.now() >= deadline) {
      const missing = names.filter((n) => !found.has(n))
      throw new TidemarkError(
        'TM_ERR_POSTGRES_WAL_TIMEOUT',
        `base backup ${opts.backupId ?? ''} was not committed: after ${Math.round(timeoutMs / 1000)} s, ${missing.length} of the ${names.length} WAL segments it needs (${missing[0]}${missing.length > 1 ? ` … ${missing.at(-1)}` : ''}) are not in the repository. A base backup is only restorable with its WAL: run \`tidemark wal-archive\` for this server (check its log if it runs), then take the backup again; postgres.baseBackupWalTimeoutSeconds sets this wait`,
        { details: { missing } },
      )
    }
    await sleep(opts.pollMs ?? 1000, opts.signal)
  }
}

/** The server's clock after the backup stopped (our clock if SQL fails: then the window may start a little early). */
async function endTime(o: RunBaseBackupOptions, r: BaseBackupResult, log: PgLogger): Promise<Micros> {
  try {
    return await serverClock({ url: o.sqlUrl, psqlPath: o.psqlPath, signal: o.signal })
  } catch (err) {
    log.warn({ err }, 'reading the server clock after the backup failed; using this machine\'s clock as the backup\'s end time')
    return microsOf(r.endTime)
  }
}

function manifestOf(o: RunBaseBackupOptions, id: string, startedAt: Date, r: BaseBackupResult, endUs: Micros, tar: ObjectRef, wal: WalFileRecord[]): PostgresBaseManifest {
  return {
    format: 'tidemark-repository',
    version: 1,
    id,
    source: 'postgres',
    method: BASE_METHOD,
    startedAt: startedAt.toISOString(),
    endedAt: o.repo.clock.now().toISOString(),
    objects: [strip(tar), ...wal.map((w) => w.ref)],
    postgres: {
      systemId: o.systemId,
      serverMajor: o.serverMajor,
      walSegSize: o.segSize,
      timeline: r.timeline,
      startLsn: formatLsn(r.startLsn),
      stopLsn: formatLsn(r.stopLsn),
      startWalFile: r.startWalFile,
      startTime: r.startTime.toISOString(),
      endTime: formatMicros(endUs),
      label: r.label,
      tarKey: tar.key,
      tarBytes: r.bytes,
      walFiles: wal.map((w) => w.name),
    },
  }
}

/** Takes a base backup and commits it; on any failure nothing is committed and the uploaded tar is removed. */
export async function runBaseBackup(o: RunBaseBackupOptions): Promise<BaseBackupReport> {
  const log = o.logger ?? silentLogger
  const startedAt = o.repo.clock.now()
  const id = newBackupId('postgres', startedAt)
  const key = baseBackupKey(id)
  const store = new WalStore(o.repo, o.systemId)
  const bb = startBaseBackup({ url: o.replicationUrl, pgBasebackup: o.pgBasebackup, label: `tidemark ${id}`, maxRate: o.maxRate, signal: o.signal, logger: log })
  try {
    const tar = await o.repo.writeObject(key, bb.stream, { signal: o.signal })
    const r = await bb.done
    if (r.stopTimeline !== r.timeline) throw new TidemarkError('TM_ERR_POSTGRES_FORMAT', `the server changed timeline (${r.timeline} to ${r.stopTimeline}) during base backup ${id}; take it again`)
    const endUs = await endTime(o, r, log)
    await o.repo.writeJournal('postgres', id, [strip(tar)])
    log.info({ backupId: id, startLsn: formatLsn(r.startLsn), stopLsn: formatLsn(r.stopLsn), bytes: r.bytes }, 'base backup streamed; waiting for its WAL in the archive')
    const waitStart = Date.now()
    const wal = await waitForWal(store, segmentRange(r.timeline, r.startLsn, r.stopLsn, o.segSize), o.walTimeoutMs, { pollMs: o.pollMs, signal: o.signal, backupId: id })
    const history = r.timeline > 1 ? await store.fileRecord(historyFileName(r.timeline)) : undefined
    const walWaitMs = Date.now() - waitStart
    const manifest = manifestOf(o, id, startedAt, r, endUs, tar, history ? [history, ...wal] : wal)
    await o.repo.commitManifest(manifest)
    log.info({ backupId: id, walWaitMs }, 'base backup committed')
    return { id, manifest, storedBytes: tar.size, walWaitMs, durationMs: Date.now() - startedAt.getTime() }
  } catch (err) {
    bb.abort()
    await o.repo.sink.delete([key, journalKey('postgres', id)]).catch((e: unknown) => log.warn({ err: e }, `could not remove the uploaded tar of failed backup ${id}; prune removes it`))
    throw err
  }
}
