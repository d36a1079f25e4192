/**
 * A logical dump into the repository: a snapshot is exported and held by a psql
 * session, `pg_dump -Fc --snapshot` streams the configured database through the
 * pipeline into `data/postgres/dump/<id>.dump`, then the manifest is committed with
 * the snapshot's time as the restore point. On any failure nothing is committed and
 * the uploaded object is deleted. No WAL is involved.
 */
import { newBackupId, type ObjectRef, type Repository } from '../repository/index.ts'
import { silentLogger, type PgLogger } from './conn.ts'
import { DUMP_METHOD, dumpKey, type PostgresDumpManifest } from './dump-manifest.ts'
import { formatMicros } from './instant.ts'
import { startPgDump } from './pgdump.ts'
import { holdSnapshot } from './snapshot.ts'

/** What a dump needs; the tool paths come from the logical preflight. */
export interface RunDumpOptions {
  repo: Repository
  url: string
  pgDump: string
  pgDumpVersion: string
  psqlPath?: string
  signal?: AbortSignal
  logger?: PgLogger
}

/** What was committed. */
export interface DumpReport {
  id: string
  manifest: PostgresDumpManifest
  storedBytes: number
  durationMs: number
}

const strip = (r: ObjectRef): ObjectRef => ({ key: r.key, size: r.size, sha256: r.sha256, rawSize: r.rawSize, codec: r.codec, chunkSize: r.chunkSize, chunks: r.chunks })

/** Dumps the database of `url` and commits it; on failure nothing is committed. */
export async function runDump(o: RunDumpOptions): Promise<DumpReport> {
  const log = o.logger ?? silentLogger
  const startedAt = o.repo.clock.now()
  const id = newBackupId('postgres', startedAt)
  const key = dumpKey(id)
  const snap = await holdSnapshot(o.url, { psqlPath: o.psqlPath })
  try {
    log.info({ backupId: id, snapshot: snap.id, at: formatMicros(snap.atUs), database: snap.database }, 'snapshot exported; dumping')
    const dump = startPgDump({ url: o.url, pgDump: o.pgDump, snapshot: snap.id, signal: o.signal, logger: log })
    const ref = strip(await o.repo.writeObject(key, dump.stream, { signal: o.signal }))
    // The snapshot's transaction ends only once pg_dump has read everything under it.
    await snap.release()
    const manifest: PostgresDumpManifest = {
      format: 'tidemark-repository',
      version: 1,
      id,
      source: 'postgres',
      method: DUMP_METHOD,
      startedAt: startedAt.toISOString(),
      endedAt: o.repo.clock.now().toISOString(),
      objects: [ref],
      postgres: {
        serverMajor: Math.floor(snap.serverVersionNum / 10000),
        database: snap.database,
        at: formatMicros(snap.atUs),
        notBefore: formatMicros(snap.notBeforeUs),
        dumpKey: key,
        dumpBytes: dump.bytes(),
        pgDumpVersion: o.pgDumpVersion,
      },
    }
    await o.repo.commitManifest(manifest)
    log.info({ backupId: id, bytes: ref.rawSize, stored: ref.size }, 'dump committed')
    return { id, manifest, storedBytes: ref.size, durationMs: o.repo.clock.now().getTime() - startedAt.getTime() }
  } catch (err) {
    await snap.release().catch(() => {})
    await o.repo.sink.delete([key]).catch((e: unknown) => log.warn({ err: e }, `could not remove the uploaded object of failed dump ${id}; prune removes it`))
    throw err
  }
}
