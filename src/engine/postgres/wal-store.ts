/**
 * The WAL archive in a repository, for one cluster (system identifier): storing
 * completed segments and history files (idempotently, by name), the newest upload
 * of the open segment, heartbeat points, and finding a file again for wal-fetch.
 *
 * Order of writes (FORMAT.md, "PostgreSQL WAL"): a data object first, then its
 * record; a file counts as archived once its record exists. A `.partial` upload gets
 * a new content-named object, then the timeline's partial.json is rewritten to point
 * at it, then the previous upload's object is deleted: a reader holding the old
 * record can still fetch until that delete, and never sees a record whose object has
 * other content.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { TidemarkError } from '../../errors.ts'
import { listAll } from '../../sinks/sink.ts'
import { readAll, type ObjectRef, type Repository } from '../repository/index.ts'
import { readJson } from '../repository/json.ts'
import { formatHeartbeats, parseHeartbeats, type Heartbeat } from './heartbeats.ts'
import {
  WAL_ROOT,
  heartbeatsKey,
  parseArchiveKey,
  partialDataKey,
  partialKey,
  systemPrefix,
  timelineOfName,
  timelinePrefix,
  walDataKey,
  walFileType,
  walRefKey,
  type HeartbeatsRecord,
  type PartialRecord,
  type WalFileRecord,
} from './wal-format.ts'
import { formatLsn, parseLsn } from './wal.ts'

/** What the archive holds for one timeline, from a listing (records not read). */
export interface TimelineListing {
  segments: string[]
  histories: string[]
  partial: boolean
  heartbeats: boolean
}

/** An open segment's bytes and how far they are proven to reach. */
export interface PartialUpload {
  timeline: number
  segment: string
  data: Buffer
  coversLsn: bigint
}

/** Where wal-fetch finds a file: its complete copy, or the newest upload of the open segment. */
export interface LocatedWal {
  ref: ObjectRef
  source: 'segment' | 'history' | 'partial'
}

/** Lists the WAL archive (all of it, one cluster's, or one timeline's): system id → timeline → what is there. */
export async function listArchive(repo: Repository, systemId?: string, timeline?: number): Promise<Map<string, Map<number, TimelineListing>>> {
  const out = new Map<string, Map<number, TimelineListing>>()
  const prefix = systemId === undefined ? WAL_ROOT : timeline === undefined ? systemPrefix(systemId) : timelinePrefix(systemId, timeline)
  for await (const o of listAll(repo.sink, prefix)) {
    const k = parseArchiveKey(o.key)
    if (!k || k.kind === 'data') continue
    const timelines = out.get(k.systemId) ?? new Map<number, TimelineListing>()
    out.set(k.systemId, timelines)
    const tl = timelines.get(k.timeline) ?? { segments: [], histories: [], partial: false, heartbeats: false }
    timelines.set(k.timeline, tl)
    if (k.kind === 'file-ref') (k.type === 'segment' ? tl.segments : tl.histories).push(k.name)
    else if (k.kind === 'partial') tl.partial = true
    else tl.heartbeats = true
  }
  return out
}

/** The archive of one cluster in `repo`. Every method may be retried. */
export class WalStore {
  readonly repo: Repository
  readonly systemId: string

  constructor(repo: Repository, systemId: string) {
    this.repo = repo
    this.systemId = systemId
  }

  async #json<T>(key: string): Promise<T | undefined> {
    try {
      return await readJson<T>(this.repo.sink, key)
    } catch (err) {
      if (this.repo.sink.isNotFound(err)) return undefined
      throw err
    }
  }

  async #putJson(key: string, value: unknown): Promise<void> {
    await this.repo.sink.put(key, Buffer.from(JSON.stringify(value, null, 1)))
  }

  /** The highest segment name archived on `timeline`, or undefined (lists that timeline). */
  async newestSegment(timeline: number): Promise<string | undefined> {
    let newest: string | undefined
    for (const [, tl] of await listArchive(this.repo, this.systemId, timeline)) {
      for (const l of tl.values()) for (const n of l.segments) if (newest === undefined || n > newest) newest = n
    }
    return newest
  }

  /** The record of an archived segment or history file, or undefined. */
  fileRecord(name: string): Promise<WalFileRecord | undefined> {
    return this.#json<WalFileRecord>(walRefKey(this.systemId, name))
  }

  /** True once `name` is archived (its record exists). */
  async has(name: string): Promise<boolean> {
    try {
      await this.repo.sink.head(walRefKey(this.systemId, name))
      return true
    } catch (err) {
      if (this.repo.sink.isNotFound(err)) return false
      throw err
    }
  }

  /**
   * Archives the completed segment or history file at `path` under `name`. Idempotent:
   * a file already archived (record and object present) is not uploaded again, since
   * WAL content never changes under its name. A history file archived with other
   * content throws TM_ERR_REPO_CORRUPT (two servers promoted onto the same timeline).
   */
  async storeFile(name: string, path: string, signal?: AbortSignal): Promise<{ record: WalFileRecord; reused: boolean }> {
    const type = walFileType(name)
    if (type === undefined) throw new TidemarkError('TM_ERR_POSTGRES_WAL_NAME', `"${name}" is not a completed WAL segment or history file`)
    const existing = await this.fileRecord(name)
    if (existing && existing.ref.codec === this.repo.codec && (await this.repo.hasObject(existing.ref))) {
      if (type === 'history') await this.#sameHistory(existing, path)
      return { record: existing, reused: true }
    }
    const ref = await this.repo.writeObject(walDataKey(this.systemId, name), () => createReadStream(path), { signal })
    const record: WalFileRecord = {
      format: 'tidemark-wal-file',
      version: 1,
      systemId: this.systemId,
      name,
      timeline: timelineOfName(name),
      archivedAt: this.repo.clock.now().toISOString(),
      ref: { key: ref.key, size: ref.size, sha256: ref.sha256, rawSize: ref.rawSize, codec: ref.codec, chunkSize: ref.chunkSize, chunks: ref.chunks },
    }
    await this.#putJson(walRefKey(this.systemId, name), record)
    return { record, reused: false }
  }

  async #sameHistory(existing: WalFileRecord, path: string): Promise<void> {
    const stored = await readAll(await this.repo.readObject(existing.ref))
    if (!stored.equals(await readFile(path))) {
      throw new TidemarkError('TM_ERR_REPO_CORRUPT', `timeline history ${existing.name} is already archived with other content: two servers were promoted onto timeline ${existing.timeline}; archive the second into another repository`)
    }
  }

  /** The newest open-segment upload of `timeline`, or undefined. */
  partialRecord(timeline: number): Promise<PartialRecord | undefined> {
    return this.#json<PartialRecord>(partialKey(this.systemId, timeline))
  }

  /**
   * Uploads the open segment unless the newest upload already holds these bytes and
   * coverage; never replaces an upload of a later segment. Returns the record now current.
   */
  async storePartial(p: PartialUpload, signal?: AbortSignal): Promise<{ record: PartialRecord; uploaded: boolean }> {
    const prev = await this.partialRecord(p.timeline)
    if (prev && prev.segment > p.segment) return { record: prev, uploaded: false }
    const key = partialDataKey(this.systemId, p.segment, createHash('sha256').update(p.data).digest('hex').slice(0, 16))
    const sameBytes = prev?.ref.key === key && prev.ref.codec === this.repo.codec
    if (sameBytes && parseLsn(prev.coversLsn) >= p.coversLsn) return { record: prev, uploaded: false }
    const ref = sameBytes ? prev.ref : await this.repo.writeObject(key, Readable.from([p.data]), { signal })
    const record: PartialRecord = {
      format: 'tidemark-wal-partial',
      version: 1,
      systemId: this.systemId,
      timeline: p.timeline,
      segment: p.segment,
      coversLsn: formatLsn(p.coversLsn),
      uploadedAt: this.repo.clock.now().toISOString(),
      ref: { key: ref.key, size: ref.size, sha256: ref.sha256, rawSize: ref.rawSize, codec: ref.codec, chunkSize: ref.chunkSize, chunks: ref.chunks },
    }
    await this.#putJson(partialKey(this.systemId, p.timeline), record)
    if (prev && prev.ref.key !== key) await this.repo.sink.delete([prev.ref.key])
    return { record, uploaded: !sameBytes }
  }

  /** The heartbeat points of `timeline`, oldest first (empty when none). */
  async heartbeats(timeline: number): Promise<Heartbeat[]> {
    const r = await this.#json<HeartbeatsRecord>(heartbeatsKey(this.systemId, timeline))
    return r ? parseHeartbeats(r.points) : []
  }

  /** Replaces the heartbeat points of `timeline`. */
  async writeHeartbeats(timeline: number, points: readonly Heartbeat[]): Promise<void> {
    const record: HeartbeatsRecord = { format: 'tidemark-wal-heartbeats', version: 1, systemId: this.systemId, timeline, points: formatHeartbeats(points) }
    await this.#putJson(heartbeatsKey(this.systemId, timeline), record)
  }

  /** Where `name` can be fetched from: its archived copy, else (a segment) the newest upload of it while open; undefined when neither exists. */
  async locate(name: string): Promise<LocatedWal | undefined> {
    const type = walFileType(name)
    if (type === undefined) return undefined
    const rec = await this.fileRecord(name)
    if (rec) return { ref: rec.ref, source: type }
    if (type !== 'segment') return undefined
    const p = await this.partialRecord(timelineOfName(name))
    return p?.segment === name ? { ref: p.ref, source: 'partial' } : undefined
  }
}
