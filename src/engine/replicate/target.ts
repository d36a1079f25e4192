/**
 * A replica (secondary repository) is a copy of the primary: its config.json is the
 * primary's, byte for byte, so the same key opens it, backup ids mean the same
 * backups, and `openRepository` on it is all a failover restore needs.
 */
import { TidemarkError } from '../../errors.ts'
import type { ServerCopier } from './same-store.ts'
import type { RetentionPolicy } from '../retention.ts'
import { CONFIG_KEY, readAll, type RepoConfig, type Repository } from '../repository/index.ts'
import type { Sink } from '../../sinks/sink.ts'

/** Where replicate copies to. */
export interface ReplicaTarget {
  /** The configured secondary's name, or its URL for an ad hoc target. */
  name: string
  sink: Sink
  /** Present when the target shares the primary's store: objects are then copied server-side. */
  serverCopy?: ServerCopier | undefined
  /** The target's own retention: backups it would prune at once are not copied (so prune and replicate do not undo each other). */
  policy?: RetentionPolicy | undefined
}

async function readConfigBytes(sink: Sink): Promise<Buffer | undefined> {
  try {
    return await readAll(await sink.get(CONFIG_KEY))
  } catch (err) {
    if (sink.isNotFound(err)) return undefined
    throw err
  }
}

/**
 * Makes `sink` a replica of `primary`: writes the primary's config.json there when it
 * has none (rule 1: config.json first; not with `create: false`), else checks it is
 * the same repository (TM_ERR_REPLICA_MISMATCH otherwise). Idempotent.
 */
export async function ensureReplica(primary: Repository, sink: Sink, opts: { create?: boolean } = {}): Promise<{ created: boolean; exists: boolean }> {
  const existing = await readConfigBytes(sink)
  if (existing === undefined) {
    if (opts.create === false) return { created: false, exists: false }
    const bytes = await readConfigBytes(primary.sink)
    if (bytes === undefined) throw new TidemarkError('TM_ERR_REPO_NOT_FOUND', `the primary repository at ${primary.sink.description} has no config.json`)
    await sink.put(CONFIG_KEY, bytes, { contentLength: bytes.length })
    return { created: true, exists: true }
  }
  let cfg: Partial<RepoConfig>
  try {
    cfg = JSON.parse(existing.toString('utf8')) as Partial<RepoConfig>
  } catch {
    cfg = {}
  }
  if (cfg.id !== primary.config.id || JSON.stringify(cfg.encryption ?? null) !== JSON.stringify(primary.config.encryption)) {
    throw new TidemarkError(
      'TM_ERR_REPLICA_MISMATCH',
      `${sink.description} holds another repository (id ${String(cfg.id)}), not a copy of the primary (id ${primary.config.id}); replicate into an empty location or into this primary's own secondary`,
      { details: { targetId: cfg.id ?? null, primaryId: primary.config.id } },
    )
  }
  return { created: false, exists: true }
}
