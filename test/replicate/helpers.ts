/**
 * Test repositories shaped like overlapping incremental backups: several manifests
 * sharing objects, written through the real pipeline with Repository.writeObject and
 * committed with commitManifest. Shared by the replicate, prune and verify tests.
 */
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { createPipelinePool } from '../../src/engine/pipeline/index.ts'
import { dataKey, newBackupId, readAll, type ManifestBase, type ObjectRef, type Repository, type SourceName } from '../../src/engine/repository/index.ts'
import { listAll, type Sink } from '../../src/sinks/sink.ts'
import { openSink } from '../../src/sinks/url.ts'
import type { S3rverInstance } from '../harness/s3rver.ts'

/** One small worker pool per test file; the caller destroys it. */
export function testPool(): ReturnType<typeof createPipelinePool> {
  return createPipelinePool({ threads: 2 })
}

/** Small chunks so every object has several. */
export const CHUNK = 16 * 1024

/** A sink on an s3rver prefix; `credentials`/`bucket` can be made wrong on purpose. */
export function s3Sink(s3: S3rverInstance, prefix: string, o: { accessKeyId?: string; bucket?: string } = {}): Sink {
  return openSink(`s3://${o.bucket ?? s3.bucket}/${prefix}`, {
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: o.accessKeyId ?? s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    retry: { attempts: 2, baseMs: 5, maxMs: 20 },
  })
}

export const DAY = 86_400_000

export interface Built {
  /** Manifests oldest first. */
  manifests: ManifestBase[]
  /** Raw content sha256 of each object, by key. */
  raw: Map<string, string>
  /** Every object ref, by short name (a, b, c…). */
  refs: Record<string, ObjectRef>
}

function manifest(source: SourceName, objects: ObjectRef[], endedAt: Date): ManifestBase {
  const startedAt = new Date(endedAt.getTime() - 60_000)
  return { format: 'tidemark-repository', version: 1, id: newBackupId(source, startedAt), source, method: 'test', startedAt: startedAt.toISOString(), endedAt: endedAt.toISOString(), objects }
}

/** Writes one object of `bytes` random (incompressible) bytes under `key`. */
export async function writeRandom(repo: Repository, key: string, bytes: number, raw?: Map<string, string>): Promise<ObjectRef> {
  const data = randomBytes(bytes)
  raw?.set(key, createHash('sha256').update(data).digest('hex'))
  const { reused: _reused, ...ref } = await repo.writeObject(key, Readable.from([data]))
  return ref
}

/**
 * Three overlapping ClickHouse backups and one PostgreSQL backup, ending `ageDays`
 * ago and later (one day apart): ch1 = a b c, ch2 = a b d, ch3 = a d e, pg1 = p q.
 */
export async function buildOverlapping(repo: Repository, now: Date, ageDays = 10): Promise<Built> {
  const raw = new Map<string, string>()
  const refs: Record<string, ObjectRef> = {}
  const sizes: Record<string, number> = { a: 50_000, b: 20_000, c: 33_000, d: 41_000, e: 7_000, p: 30_000, q: 12_000 }
  for (const [name, size] of Object.entries(sizes)) {
    const source = name === 'p' || name === 'q' ? 'postgres' : 'clickhouse'
    refs[name] = await writeRandom(repo, dataKey(source, `db/t/part-${name}-${randomBytes(3).toString('hex')}`), size, raw)
  }
  const at = (i: number) => new Date(now.getTime() - (ageDays - i) * DAY)
  const r = refs as Record<'a' | 'b' | 'c' | 'd' | 'e' | 'p' | 'q', ObjectRef>
  const manifests = [
    manifest('clickhouse', [r.a, r.b, r.c], at(0)),
    manifest('postgres', [r.p, r.q], at(0)),
    manifest('clickhouse', [r.a, r.b, r.d], at(1)),
    manifest('clickhouse', [r.a, r.d, r.e], at(2)),
  ]
  for (const m of manifests) await repo.commitManifest(m)
  return { manifests, raw, refs }
}

/** Every key under `prefix` with its size, sorted. */
export async function keysOf(sink: Sink, prefix = ''): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for await (const o of listAll(sink, prefix)) out.set(o.key, o.size)
  return out
}

/** Every key with size and modification time: to show that nothing changed. */
export async function snapshot(sink: Sink): Promise<string[]> {
  const out: string[] = []
  for await (const o of listAll(sink, '')) out.push(`${o.key} ${o.size} ${o.lastModified.toISOString()}`)
  return out
}

/** The sha256 of an object's raw content read back through the repository (verified while streaming). */
export async function rawSha(repo: Repository, ref: ObjectRef): Promise<string> {
  return createHash('sha256').update(await readAll(await repo.readObject(ref))).digest('hex')
}

/** Distinct objects of `manifests`, with their total stored size. */
export function distinct(manifests: readonly ManifestBase[]): { keys: Set<string>; bytes: number } {
  const byKey = new Map<string, number>()
  for (const m of manifests) for (const o of m.objects) byKey.set(o.key, o.size)
  return { keys: new Set(byKey.keys()), bytes: [...byKey.values()].reduce((a, b) => a + b, 0) }
}
