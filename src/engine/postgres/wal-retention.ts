/**
 * PostgreSQL's side of prune (the `continuousRemovable` hook): which objects of the
 * WAL archive the backups that stay no longer need. Per cluster (system id) and
 * timeline, segments (and their records) that end at or before the horizon are
 * removable, the horizon being the oldest start LSN among the kept base backups on
 * that timeline or an earlier one: a base backup needs its own timeline from its
 * start and later timelines from their fork point, which lies after that start, so
 * an earlier timeline's WAL before it is never needed. A timeline with no such base
 * backup uses the oldest kept start of the cluster (WAL before any kept backup
 * restores nothing); a cluster with no kept base backup keeps everything. Uploads
 * of an open segment that `partial.json` no longer points at are superseded and
 * removable. History files, `partial.json` and `heartbeats.json` always stay.
 * The plan is pure (`planWalRemoval`); `walRemovable` reads what it needs.
 */
import { listAll } from '../../sinks/sink.ts'
import type { ManifestBase, Repository } from '../repository/index.ts'
import { readJson } from '../repository/json.ts'
import { applyWalRetention, type WalRange } from '../retention.ts'
import { isBaseManifest } from './base-manifest.ts'
import { WAL_ROOT, parseArchiveKey, partialKey, walFileType, type PartialRecord } from './wal-format.ts'
import { parseLsn, parseSegmentName, segmentStartLsn } from './wal.ts'

/** A kept base backup as the WAL rule sees it. */
export interface KeptBase {
  systemId: string
  timeline: number
  startLsn: bigint
  walSegSize: number
}

/** What the WAL rule decides from: every key under the archive, the current open-segment upload per timeline, the kept base backups. */
export interface WalRemovalInput {
  keys: readonly string[]
  /** `<systemId>/<timeline>` → the data key `partial.json` points at (`*`: unreadable, keep every upload). */
  currentPartials: ReadonlyMap<string, string>
  kept: readonly KeptBase[]
}

const tlKey = (systemId: string, timeline: number) => `${systemId}/${timeline}`

/** Marks a timeline whose pointer could not be read: none of its uploads is removed. */
const UNKNOWN = '*'

/** The kept base backups of `manifests` (logical dumps and other sources left out); throws TM_ERR_POSTGRES_WAL_NAME on a malformed start LSN. */
export function keptBases(manifests: readonly ManifestBase[]): KeptBase[] {
  return manifests.filter(isBaseManifest).map((m) => ({ systemId: m.postgres.systemId, timeline: m.postgres.timeline, startLsn: parseLsn(m.postgres.startLsn), walSegSize: m.postgres.walSegSize }))
}

/** The segment a key holds (data object or record), or undefined for anything else. */
function segmentOfKey(key: string): { systemId: string; timeline: number; name: string } | undefined {
  const k = parseArchiveKey(key)
  if (k?.kind === 'file-ref') return k.type === 'segment' ? k : undefined
  return k?.kind === 'data' && walFileType(k.name) === 'segment' ? k : undefined
}

/** Superseded uploads of an open segment: `<segment>.partial.<h>` objects `partial.json` does not point at. */
function supersededPartials(keys: readonly string[], current: ReadonlyMap<string, string>): string[] {
  return keys.filter((key) => {
    const k = parseArchiveKey(key)
    if (k?.kind !== 'data' || !/^[0-9A-F]{24}\.partial\.[0-9a-f]+$/.test(k.name)) return false
    const pointer = current.get(tlKey(k.systemId, k.timeline))
    return pointer !== UNKNOWN && pointer !== key
  })
}

/** The horizon of one timeline of a cluster: the oldest kept start on it or an earlier timeline, else the cluster's oldest. */
function horizonOf(kept: readonly KeptBase[], systemId: string, timeline: number): bigint[] {
  const own = kept.filter((b) => b.systemId === systemId)
  const upTo = own.filter((b) => b.timeline <= timeline)
  return (upTo.length > 0 ? upTo : own).map((b) => b.startLsn)
}

/** Segment keys (data objects and records) that end at or before their timeline's horizon given `kept`. Pure. */
export function segmentsBeforeHorizon(keys: readonly string[], kept: readonly KeptBase[]): string[] {
  const groups = new Map<string, { systemId: string; timeline: number; keys: string[] }>()
  for (const key of keys) {
    const s = segmentOfKey(key)
    if (!s) continue
    const g = groups.get(tlKey(s.systemId, s.timeline)) ?? { systemId: s.systemId, timeline: s.timeline, keys: [] }
    g.keys.push(key)
    groups.set(tlKey(s.systemId, s.timeline), g)
  }
  const out: string[] = []
  for (const g of groups.values()) {
    const segSize = kept.find((b) => b.systemId === g.systemId)?.walSegSize
    if (segSize === undefined) continue
    const positionOf = (key: string): WalRange | undefined => {
      const { segno } = parseSegmentName(segmentOfKey(key)!.name, segSize)
      const start = segmentStartLsn(segno, segSize)
      return { start, end: start + BigInt(segSize) }
    }
    out.push(...applyWalRetention(g.keys, positionOf, horizonOf(kept, g.systemId, g.timeline)).remove)
  }
  return out
}

/**
 * Exactly which archive keys prune may delete. Pure. Records come before their data
 * objects, so a deletion cut short never leaves a record without its object.
 */
export function planWalRemoval(input: WalRemovalInput): string[] {
  const isRecord = (k: string) => (k.endsWith('.ref.json') ? 0 : 1)
  const segments = segmentsBeforeHorizon(input.keys, input.kept).sort((a, b) => isRecord(a) - isRecord(b))
  return [...segments, ...supersededPartials(input.keys, input.currentPartials)]
}

/** The `partial.json` pointers of every timeline in `keys`. */
async function currentPartials(repo: Repository, keys: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const key of keys) {
    const k = parseArchiveKey(key)
    if (k?.kind !== 'partial') continue
    try {
      const r = await readJson<PartialRecord>(repo.sink, partialKey(k.systemId, k.timeline))
      out.set(tlKey(k.systemId, k.timeline), typeof r.ref?.key === 'string' ? r.ref.key : UNKNOWN)
    } catch {
      // Without a readable pointer every upload would look superseded, the current one too.
      out.set(tlKey(k.systemId, k.timeline), UNKNOWN)
    }
  }
  return out
}

/** The hook prune calls with the backups that stay: lists the archive and plans. Reads only. */
export function walRemovable(repo: Repository): (kept: readonly ManifestBase[]) => Promise<string[]> {
  return async (kept) => {
    const keys: string[] = []
    for await (const o of listAll(repo.sink, WAL_ROOT)) keys.push(o.key)
    return planWalRemoval({ keys, currentPartials: await currentPartials(repo, keys), kept: keptBases(kept) })
  }
}
