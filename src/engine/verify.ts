/**
 * Verify: are the backups restorable? Every object a manifest references must exist
 * with its recorded size (one listing of `data/`); with `read`, every object is also
 * downloaded and decoded, which checks its sha256, its chunk count and that every
 * chunk decrypts and decompresses (Repository.readObject checks while streaming).
 * An object shared by several backups is checked once and reported for each. Takes
 * no lock: it only reads.
 */
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { TidemarkError, asTidemarkError, isTidemarkError, type ErrorCode } from '../errors.ts'
import { listAll } from '../sinks/sink.ts'
import { listBackups, type BackupRef } from './manifests.ts'
import { forEachLimit, mapLimit } from './parallel.ts'
import { DATA_PREFIX, isBackupId, manifestKey, sourceOfBackupId, type ManifestBase, type ObjectRef, type Repository } from './repository/index.ts'

/** One thing wrong, named by backup and object key. */
export interface VerifyProblem {
  backupId: string
  key: string
  kind: 'missing' | 'size' | 'content' | 'manifest'
  /** The error code for content problems (TM_ERR_INTEGRITY, TM_ERR_DECRYPT…). */
  code?: ErrorCode
  message: string
}

export interface VerifiedBackup {
  id: string
  source: string
  objects: number
  bytes: number
  problems: number
}

export interface VerifyReport {
  read: boolean
  ok: boolean
  backups: VerifiedBackup[]
  problems: VerifyProblem[]
  /** Distinct objects checked. */
  objects: number
  /** Raw (decoded) bytes read, with `read`. */
  bytesRead: number
}

export interface VerifyOptions {
  /** Backup ids; all backups when absent. */
  ids?: readonly string[] | undefined
  read?: boolean
  /** Objects read at once with `read` (default 4). */
  parallelism?: number
  signal?: AbortSignal
}

type Finding = Omit<VerifyProblem, 'backupId' | 'key'>

/** The backups to check; TM_ERR_MANIFEST_NOT_FOUND for an id that names none. */
async function chosen(repo: Repository, ids: readonly string[] | undefined): Promise<BackupRef[]> {
  if (ids === undefined) return listBackups(repo)
  return ids.map((id) => {
    const source = isBackupId(id) ? sourceOfBackupId(id) : undefined
    if (!source) throw new TidemarkError('TM_ERR_MANIFEST_NOT_FOUND', `${JSON.stringify(id)} is not a backup id (they look like 20261128T094000Z-ch-3fa1)`)
    return { source, id }
  })
}

/** Drains a verified read of `ref`; resolves with the raw bytes, rejects with what the pipeline found. */
async function readThrough(repo: Repository, ref: ObjectRef, signal?: AbortSignal): Promise<number> {
  let bytes = 0
  const sinkhole = new Writable({
    write(chunk: Buffer, _enc, cb) {
      bytes += chunk.length
      cb()
    },
  })
  await pipeline(await repo.readObject(ref, { signal }), sinkhole, { signal })
  return bytes
}

/** Size problems from one listing, then (with `read`) content problems, per distinct object reference. */
async function checkObjects(repo: Repository, refs: Map<string, ObjectRef>, opts: VerifyOptions): Promise<{ findings: Map<string, Finding>; bytesRead: number }> {
  const sizes = new Map<string, number>()
  for await (const o of listAll(repo.sink, DATA_PREFIX, { signal: opts.signal })) sizes.set(o.key, o.size)
  const findings = new Map<string, Finding>()
  for (const [id, ref] of refs) {
    const size = sizes.get(ref.key)
    if (size === undefined) findings.set(id, { kind: 'missing', message: 'object missing' })
    else if (size !== ref.size) findings.set(id, { kind: 'size', message: `object has ${size} bytes; the manifest records ${ref.size}` })
  }
  let bytesRead = 0
  if (opts.read) {
    const readable = [...refs].filter(([id]) => !findings.has(id))
    await forEachLimit(readable, opts.parallelism ?? 4, async ([id, ref]) => {
      try {
        const bytes = await readThrough(repo, ref, opts.signal)
        bytesRead += bytes
      } catch (err) {
        if (opts.signal?.aborted) throw err
        const e = asTidemarkError(err)
        findings.set(id, { kind: 'content', code: e.code, message: e.message })
      }
    }, opts.signal)
  }
  return { findings, bytesRead }
}

/** The manifests; an unreadable one is a problem of its backup, not the end of the check (a missing id still throws). */
async function readChosen(repo: Repository, refs: readonly BackupRef[]): Promise<{ manifests: ManifestBase[]; broken: { ref: BackupRef; problem: VerifyProblem }[] }> {
  const broken: { ref: BackupRef; problem: VerifyProblem }[] = []
  const read = await mapLimit(refs, 8, async (ref) => {
    try {
      return await repo.readManifest(ref.source, ref.id)
    } catch (err) {
      if (!isTidemarkError(err, 'TM_ERR_REPO_CORRUPT')) throw err
      broken.push({ ref, problem: { backupId: ref.id, key: manifestKey(ref.source, ref.id), kind: 'manifest', code: err.code, message: err.message } })
      return undefined
    }
  })
  return { manifests: read.filter((m) => m !== undefined), broken }
}

/** One identity per distinct reference: two manifests naming the same key with other sizes or hashes are checked apart. */
const refId = (r: ObjectRef) => `${r.key}\u0000${r.size}\u0000${r.sha256}\u0000${r.codec}`

/** Verifies the chosen backups (all by default). Never throws for problems found: they are in the report. */
export async function verify(repo: Repository, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const { manifests, broken } = await readChosen(repo, await chosen(repo, opts.ids))
  const problems = broken.map((b) => b.problem)
  const refs = new Map<string, ObjectRef>()
  for (const m of manifests) for (const r of m.objects) refs.set(refId(r), r)
  const { findings, bytesRead } = await checkObjects(repo, refs, opts)
  const backups = manifests.map((m) => {
    const mine = m.objects.flatMap((r) => {
      const f = findings.get(refId(r))
      return f ? [{ backupId: m.id, key: r.key, ...f }] : []
    })
    problems.push(...mine)
    return { id: m.id, source: m.source, objects: m.objects.length, bytes: m.objects.reduce((a, r) => a + r.size, 0), problems: mine.length }
  })
  for (const { ref } of broken) backups.push({ id: ref.id, source: ref.source, objects: 0, bytes: 0, problems: 1 })
  return { read: opts.read ?? false, ok: problems.length === 0, backups, problems, objects: refs.size, bytesRead }
}
