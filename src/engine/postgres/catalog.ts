/**
 * Reads what the repository holds for PostgreSQL's physical method (base backups,
 * the WAL archive, timeline histories, partial uploads, heartbeats) and derives each
 * backup's recovery window. Reads only; the decisions are window.ts's.
 */
import { TidemarkError } from '../../errors.ts'
import { mapLimit } from '../parallel.ts'
import { readAll, type Repository } from '../repository/index.ts'
import { isBaseManifest, windowBackupOf, type PostgresBaseManifest } from './base-manifest.ts'
import { WalStore, listArchive, type TimelineListing } from './wal-store.ts'
import { classifyWalName, findGaps, parseHistory, parseLsn, type Gap } from './wal.ts'
import { backupWindow, timeWindows, type ArchiveView, type BackupWindow, type TimeWindow, type TimelineArchive } from './window.ts'

/** One cluster's backups, archive and windows. */
export interface SystemCatalog {
  systemId: string
  /** Undefined only when nothing tells it (no backup and no archived segment). */
  segSize: number | undefined
  backups: PostgresBaseManifest[]
  listing: Map<number, TimelineListing>
  archive: ArchiveView | undefined
  /** One per backup, in backup order. */
  windows: BackupWindow[]
  timeWindows: TimeWindow[]
  /** Missing segments between archived ones, per timeline. */
  gaps: Map<number, Gap[]>
}

async function baseManifests(repo: Repository): Promise<PostgresBaseManifest[]> {
  const all = await mapLimit(await repo.listManifestIds('postgres'), 8, (id) => repo.readManifest('postgres', id))
  return all.filter(isBaseManifest)
}

/** The segment size: from a backup, else from an archived segment's or partial upload's raw size. */
async function segmentSize(store: WalStore, backups: PostgresBaseManifest[], listing: Map<number, TimelineListing>): Promise<number | undefined> {
  const fromBackup = backups.at(-1)?.postgres.walSegSize
  if (fromBackup) return fromBackup
  for (const [tli, l] of listing) {
    const name = l.segments.at(-1)
    const rec = name ? await store.fileRecord(name) : undefined
    if (rec) return rec.ref.rawSize
    const p = l.partial ? await store.partialRecord(tli) : undefined
    if (p) return p.ref.rawSize
  }
  return undefined
}

async function timelineArchive(store: WalStore, tli: number, l: TimelineListing, segSize: number): Promise<TimelineArchive> {
  const segments = new Set<bigint>()
  for (const n of l.segments) {
    const c = classifyWalName(n, segSize)
    if (c?.kind === 'segment') segments.add(c.segno)
  }
  const histName = l.histories.find((h) => Number.parseInt(h.slice(0, 8), 16) === tli)
  const histRec = histName ? await store.fileRecord(histName) : undefined
  const history = histRec ? parseHistory((await readAll(await store.repo.readObject(histRec.ref))).toString('utf8')) : undefined
  const p = l.partial ? await store.partialRecord(tli) : undefined
  const pc = p ? classifyWalName(p.segment, segSize) : undefined
  const partial = p && pc?.kind === 'segment' ? { segno: pc.segno, coversLsn: parseLsn(p.coversLsn) } : undefined
  const heartbeats = l.heartbeats ? await store.heartbeats(tli) : []
  return { segments, partial, history, heartbeats }
}

/** Reads the catalog of one cluster, or of every cluster found (manifests and archive). */
export async function readCatalog(repo: Repository, opts: { systemId?: string } = {}): Promise<SystemCatalog[]> {
  const manifests = await baseManifests(repo)
  const archive = await listArchive(repo, opts.systemId)
  const ids = new Set<string>([...manifests.map((m) => m.postgres.systemId), ...archive.keys()])
  if (opts.systemId !== undefined) ids.add(opts.systemId)
  const out: SystemCatalog[] = []
  for (const systemId of [...ids].sort()) {
    if (opts.systemId !== undefined && systemId !== opts.systemId) continue
    out.push(await systemCatalog(repo, systemId, manifests.filter((m) => m.postgres.systemId === systemId), archive.get(systemId) ?? new Map()))
  }
  return out
}

async function systemCatalog(repo: Repository, systemId: string, backups: PostgresBaseManifest[], listing: Map<number, TimelineListing>): Promise<SystemCatalog> {
  const store = new WalStore(repo, systemId)
  const segSize = await segmentSize(store, backups, listing)
  if (segSize === undefined) return { systemId, segSize, backups, listing, archive: undefined, windows: [], timeWindows: [], gaps: new Map() }
  const timelines = new Map<number, TimelineArchive>()
  for (const [tli, l] of listing) timelines.set(tli, await timelineArchive(store, tli, l, segSize))
  const view: ArchiveView = { segSize, timelines }
  const windows = backups.map((m) => backupWindow(windowBackupOf(m), view))
  const gaps = new Map<number, Gap[]>()
  for (const [tli, l] of listing) gaps.set(tli, findGaps(l.segments, segSize))
  return { systemId, segSize, backups, listing, archive: view, windows, timeWindows: timeWindows(windows), gaps }
}

/** The one cluster the repository's base backups belong to; TM_ERR_USAGE when there are several or none. */
export async function soleSystemId(repo: Repository): Promise<string> {
  const ids = [...new Set((await baseManifests(repo)).map((m) => m.postgres.systemId))]
  if (ids.length === 1) return ids[0] as string
  throw new TidemarkError('TM_ERR_USAGE', ids.length === 0 ? 'the repository holds no PostgreSQL base backup to tell the cluster: give --system-id' : `the repository holds several PostgreSQL clusters (${ids.join(', ')}): give --system-id`)
}
