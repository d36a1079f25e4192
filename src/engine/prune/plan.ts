/**
 * The prune plan: a pure function from what the repository holds to exactly what
 * prune deletes. Mark: every object referenced by a manifest that stays, or by the
 * journal of a backup still running, is live. Sweep: the rest, but only when older
 * than the safety margin, so the objects of a backup being written (uploaded, not
 * yet committed) are never touched. Continuously archived prefixes (WAL) are never
 * swept as unreferenced; their own rule names what goes.
 */
import type { ObjectInfo } from '../../sinks/sink.ts'
import { dataKey, manifestKey, type ManifestBase } from '../repository/format.ts'
import type { KeptBackup, RetentionDecision } from '../retention.ts'

/** Where PostgreSQL's continuous WAL archive lives: objects written without a manifest. */
export const WAL_PREFIX = dataKey('postgres', 'wal/')

/** A journal object; `refs` (the keys it records) are needed only for live journals. */
export interface JournalEntry {
  info: ObjectInfo
  refs?: readonly string[] | undefined
}

export interface PruneInput {
  /** Every committed manifest. */
  manifests: readonly ManifestBase[]
  decision: RetentionDecision
  /** Every object under `data/`, with its last modification time. */
  data: readonly ObjectInfo[]
  journals: readonly JournalEntry[]
  locks: readonly { key: string; expiresAt: string }[]
  now: Date
  safetyMarginMs: number
  /** Prefixes never swept as unreferenced (default: the WAL archive). */
  continuous?: readonly string[] | undefined
  /** Keys under those prefixes that their own rule removes (the WAL rule). */
  continuousRemovable?: ReadonlySet<string> | undefined
}

export interface PrunePlan {
  /** Backups whose manifests are deleted, with the reason. */
  manifests: { id: string; source: string; key: string; reason: string }[]
  /** Data objects deleted. */
  objects: { key: string; size: number }[]
  /** Bytes of the data objects deleted. */
  bytes: number
  /** Journals of backups that stopped writing them longer ago than the margin. */
  journals: { key: string; size: number }[]
  /** Lock objects expired longer ago than the margin. */
  locks: string[]
  /** Backups that stay, with their reasons. */
  keep: KeptBackup[]
  /** Unreferenced objects spared because they are younger than the margin (a backup may be writing them). */
  young: { objects: number; bytes: number }
}

/** Exactly what prune deletes given `input`. Pure. */
export function planPrune(input: PruneInput): PrunePlan {
  const cutoff = input.now.getTime() - input.safetyMarginMs
  const removeIds = new Map(input.decision.remove.map((r) => [r.id, r.reason]))
  const live = new Set<string>()
  for (const m of input.manifests) if (!removeIds.has(m.id)) for (const o of m.objects) live.add(o.key)
  const liveJournals = input.journals.filter((j) => j.info.lastModified.getTime() >= cutoff)
  for (const j of liveJournals) for (const k of j.refs ?? []) live.add(k)

  const continuous = input.continuous ?? [WAL_PREFIX]
  const sweepable = (key: string) => !continuous.some((p) => key.startsWith(p)) || (input.continuousRemovable?.has(key) ?? false)
  const candidates = input.data.filter((o) => !live.has(o.key) && sweepable(o.key))
  const objects = candidates.filter((o) => o.lastModified.getTime() < cutoff).map((o) => ({ key: o.key, size: o.size }))
  const young = candidates.filter((o) => o.lastModified.getTime() >= cutoff)

  return {
    manifests: input.manifests
      .filter((m) => removeIds.has(m.id))
      .map((m) => ({ id: m.id, source: m.source, key: manifestKey(m.source, m.id), reason: removeIds.get(m.id)! })),
    objects,
    bytes: objects.reduce((a, o) => a + o.size, 0),
    journals: input.journals.filter((j) => j.info.lastModified.getTime() < cutoff).map((j) => ({ key: j.info.key, size: j.info.size })),
    locks: input.locks.filter((l) => Date.parse(l.expiresAt) < cutoff).map((l) => l.key),
    keep: input.decision.keep,
    young: { objects: young.length, bytes: young.reduce((a, o) => a + o.size, 0) },
  }
}
