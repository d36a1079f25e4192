/**
 * A repository on a Sink: config.json, immutable content-named data objects,
 * manifests written last (the commit), journals of in-progress backups, and the
 * writer lease. See FORMAT.md for what must hold and in which order things are written.
 */
import { Readable } from 'node:stream'
import { TidemarkError } from '../../errors.ts'
import { listAll, type Sink } from '../../sinks/sink.ts'
import type { Clock } from '../clock.ts'
import { forEachLimit, limiter } from '../parallel.ts'
import { decode, encode, unpackStored, type ChunkReader, type PipelinePool } from '../pipeline/index.ts'
import {
  JOURNAL_PREFIX,
  MANIFEST_PREFIX,
  SOURCES,
  journalKey,
  manifestKey,
  newestIds,
  type Codec,
  type ManifestBase,
  type ObjectRef,
  type RepoConfig,
  type SourceName,
} from './format.ts'
import { acquireLease, type Lease } from './lease.ts'
import { readJson } from './json.ts'

/** Existence checks of a manifest's objects run at once before it is committed (HEAD requests on S3). */
const COMMIT_CHECKS = 16

/**
 * Existence checks of objects a backup reuses, started as soon as it chooses them, at most
 * COMMIT_CHECKS at once: they then run while the backup waits on its source, instead of
 * all at the commit. Valid under the writer lease the backup holds (no prune can remove an
 * object meanwhile). A failed check is reported by commitManifest.
 */
export class ObjectChecks {
  readonly #repo: Repository
  readonly #limit = limiter(COMMIT_CHECKS)
  readonly #started = new Map<string, { size: number; found: Promise<boolean> }>()

  constructor(repo: Repository) {
    this.#repo = repo
  }

  /** Starts checking `ref` (once per key). */
  add(ref: ObjectRef): void {
    if (this.#started.has(ref.key)) return
    const found = this.#limit(() => this.#repo.hasObject(ref))
    found.catch(() => undefined) // awaited by result() or settled()
    this.#started.set(ref.key, { size: ref.size, found })
  }

  /** Whether `ref` exists with its size, from a check started for the same key and size; undefined if none was. */
  result(ref: ObjectRef): Promise<boolean> | undefined {
    const c = this.#started.get(ref.key)
    return c?.size === ref.size ? c.found : undefined
  }

  /** Resolves once every check started has finished, whatever its outcome. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#started.values()].map((c) => c.found))
  }
}

export interface PipelineSettings {
  pool: PipelinePool
  chunkSize: number
  level: number
  maxInFlight: number
}

export interface RepositoryDeps {
  sink: Sink
  config: RepoConfig
  key: Buffer | undefined
  clock: Clock
  pipeline: PipelineSettings
  /** When true, close() destroys the pipeline pool. */
  ownsPool: boolean
  leaseTtlMs: number
}

export interface RepoInfo {
  id: string
  formatVersion: number
  createdAt: string
  encryption: 'none' | 'aes-256-gcm'
  sink: string
  manifests: Record<string, number>
}

/**
 * What writeObject reads: a stream, or a reader that fills chunk buffers itself (fewer copies
 * and no per-read buffers; closed by writeObject once the object is written or has failed),
 * or a function giving either, called only when the object is actually written (so a reuse skips the work).
 */
export type ObjectSource = Readable | ClosableReader | (() => Readable | ClosableReader | Promise<Readable | ClosableReader>)

/** A ChunkReader that holds resources until closed. */
export interface ClosableReader extends ChunkReader {
  close(): Promise<void>
}

/** An object an earlier backup stored: `committed` when a committed manifest lists it (it exists), else from a journal. */
export interface KnownObject {
  ref: ObjectRef
  committed: boolean
}

export class Repository {
  readonly sink: Sink
  readonly config: RepoConfig
  readonly clock: Clock
  readonly #key: Buffer | undefined
  readonly #pipeline: PipelineSettings
  readonly #leaseTtlMs: number
  readonly #ownsPool: boolean

  constructor(deps: RepositoryDeps) {
    this.sink = deps.sink
    this.config = deps.config
    this.clock = deps.clock
    this.#key = deps.key
    this.#pipeline = deps.pipeline
    this.#leaseTtlMs = deps.leaseTtlMs
    this.#ownsPool = deps.ownsPool
  }

  /** Releases the pipeline pool if this repository created it, and the sink. Idempotent. */
  async close(): Promise<void> {
    if (this.#ownsPool) await this.#pipeline.pool.destroy()
    await this.sink.close()
  }

  get codec(): Codec {
    return this.#key ? 'zstd+aes256gcm' : 'zstd'
  }

  /** Summary for `repo info`. Reads only manifest listings. */
  async info(): Promise<RepoInfo> {
    const manifests: Record<string, number> = {}
    for (const source of SOURCES) manifests[source] = (await this.listManifestIds(source)).length
    return {
      id: this.config.id,
      formatVersion: this.config.version,
      createdAt: this.config.createdAt,
      encryption: this.config.encryption ? 'aes-256-gcm' : 'none',
      sink: this.sink.description,
      manifests,
    }
  }

  /** Takes the writer lease (TM_ERR_REPO_LOCKED if another writer holds it). */
  lock(purpose: string): Promise<Lease> {
    return acquireLease(this.sink, { clock: this.clock, ttlMs: this.#leaseTtlMs, purpose })
  }

  /**
   * Returns `known` without reading the source when that object is present with the
   * recorded size; otherwise streams the source through the pipeline into `key`.
   * Idempotent: data keys name their content, so rewriting one writes the same bytes.
   */
  async writeObject(key: string, source: ObjectSource, opts: { known?: ObjectRef | undefined; signal?: AbortSignal; level?: number } = {}): Promise<ObjectRef & { reused: boolean }> {
    if (opts.known && opts.known.key === key && opts.known.codec === this.codec && (await this.hasObject(opts.known))) {
      return { ...opts.known, reused: true }
    }
    const input = typeof source === 'function' ? await source() : source
    const { stream, done } = encode(input, {
      pool: this.#pipeline.pool,
      chunkSize: this.#pipeline.chunkSize,
      level: opts.level ?? this.#pipeline.level,
      maxInFlight: this.#pipeline.maxInFlight,
      key: this.#key,
      objectId: key,
      signal: opts.signal,
    })
    const written = Promise.all([this.sink.put(key, stream, { signal: opts.signal }), done])
    // A reader is closed once the pipeline has stopped reading it, whatever the outcome.
    const [put, result] = input instanceof Readable ? await written : await written.finally(() => done.then(() => undefined, () => undefined).then(() => input.close()))
    if (put.size !== result.storedBytes) {
      throw new TidemarkError('TM_ERR_INTEGRITY', `object ${key}: the sink stored ${put.size} bytes but the pipeline produced ${result.storedBytes}`)
    }
    return {
      key,
      size: result.storedBytes,
      sha256: result.sha256,
      rawSize: result.rawBytes,
      codec: result.codec,
      chunkSize: result.chunkSize,
      chunks: result.chunks,
      reused: false,
    }
  }

  /** True when the object exists with the size the reference records. */
  async hasObject(ref: ObjectRef): Promise<boolean> {
    try {
      return (await this.sink.head(ref.key)).size === ref.size
    } catch (err) {
      if (this.sink.isNotFound(err)) return false
      throw err
    }
  }

  /** The object's raw bytes, verified (sha256, size, chunk order, authenticity) while streaming. */
  async readObject(ref: ObjectRef, opts: { signal?: AbortSignal } = {}): Promise<Readable> {
    return decode(await this.#getStored(ref, opts.signal), this.#decodeOptions(ref, opts.signal))
  }

  /**
   * Writes an object that holds a packed part directory (ClickHouse parts backups) into
   * `dir`, decoded and written on the pipeline's worker threads, verified as readObject
   * verifies; resolves with the file names. See pipeline/decode.ts, unpackStored.
   */
  async unpackObject(ref: ObjectRef, dir: string, opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    return await unpackStored(await this.#getStored(ref, opts.signal), dir, this.#decodeOptions(ref, opts.signal))
  }

  async #getStored(ref: ObjectRef, signal: AbortSignal | undefined): Promise<Readable> {
    if (ref.codec !== this.codec) {
      throw new TidemarkError('TM_ERR_REPO_CORRUPT', `object ${ref.key} was written with codec ${ref.codec} but this repository uses ${this.codec}`)
    }
    return await this.sink.get(ref.key, { signal })
  }

  #decodeOptions(ref: ObjectRef, signal: AbortSignal | undefined) {
    return { pool: this.#pipeline.pool, key: this.#key, objectId: ref.key, expected: { sha256: ref.sha256, storedBytes: ref.size, chunks: ref.chunks }, signal }
  }

  /** Existence checks a backup starts while it runs, for commitManifest to take over (see ObjectChecks). */
  objectChecks(): ObjectChecks {
    return new ObjectChecks(this)
  }

  /**
   * Commits a backup by writing its manifest. Every referenced object must exist with
   * its recorded size first: a manifest never points at missing data. The checks in
   * `early` (same key and size) are awaited instead of made again.
   */
  async commitManifest<M extends ManifestBase>(manifest: M, early?: ObjectChecks): Promise<void> {
    // Checked several at once: each is a HEAD (a stat on a local sink), and a manifest lists hundreds.
    await forEachLimit(manifest.objects, COMMIT_CHECKS, async (ref) => {
      if (!(await (early?.result(ref) ?? this.hasObject(ref)))) {
        throw new TidemarkError('TM_ERR_REPO_CORRUPT', `refusing to commit backup ${manifest.id}: object ${ref.key} is missing or has the wrong size`)
      }
    })
    await this.sink.put(manifestKey(manifest.source, manifest.id), Buffer.from(JSON.stringify(manifest, null, 1)))
    await this.sink.delete([journalKey(manifest.source, manifest.id)])
  }

  /** Records objects already uploaded by an unfinished backup so a later one can reuse them. */
  async writeJournal(source: SourceName, backupId: string, objects: readonly ObjectRef[]): Promise<void> {
    await this.sink.put(journalKey(source, backupId), Buffer.from(JSON.stringify({ backupId, writtenAt: this.clock.now().toISOString(), objects })))
  }

  /** Backup ids of a source, oldest first. */
  async listManifestIds(source: SourceName): Promise<string[]> {
    const ids: string[] = []
    const prefix = `${MANIFEST_PREFIX}${source}/`
    for await (const o of listAll(this.sink, prefix)) {
      if (o.key.endsWith('.json')) ids.push(o.key.slice(prefix.length, -'.json'.length))
    }
    return ids.sort()
  }

  /** A committed manifest; TM_ERR_MANIFEST_NOT_FOUND when there is none with that id. */
  async readManifest<M extends ManifestBase>(source: SourceName, id: string): Promise<M> {
    try {
      return await readJson<M>(this.sink, manifestKey(source, id))
    } catch (err) {
      if (this.sink.isNotFound(err)) {
        throw new TidemarkError('TM_ERR_MANIFEST_NOT_FOUND', `no ${source} backup with id ${id}; list backups with \`tidemark list --source ${source}\``)
      }
      throw err
    }
  }

  /**
   * The objects earlier backups of a source stored, by key: those of the newest committed
   * manifest(s) (every manifest lists all it needs, so older ones add nothing a backup can still
   * reuse, and reading them all would grow with the history) and those the journals of
   * unfinished backups recorded (hints: they may never have been completed).
   */
  async knownObjects(source: SourceName): Promise<Map<string, KnownObject>> {
    const known = new Map<string, KnownObject>()
    for (const id of newestIds(await this.listManifestIds(source))) {
      for (const ref of (await this.readManifest(source, id)).objects) known.set(ref.key, { ref, committed: true })
    }
    for await (const o of listAll(this.sink, `${JOURNAL_PREFIX}${source}/`)) {
      try {
        const j = await readJson<{ objects: ObjectRef[] }>(this.sink, o.key)
        for (const ref of j.objects) if (!known.has(ref.key)) known.set(ref.key, { ref, committed: false })
      } catch (err) {
        if (!this.sink.isNotFound(err)) throw err
      }
    }
    return known
  }
}

/** Drains a stream into one Buffer (for small objects such as manifests). */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}
