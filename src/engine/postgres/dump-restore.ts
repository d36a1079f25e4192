/**
 * Restores a logical dump into a database with pg_restore. Serial: the archive is
 * streamed from the repository into pg_restore's stdin, in one transaction (a failure
 * leaves the target unchanged). Parallel (`jobs` > 1): pg_restore needs a seekable
 * file, so the archive is first written to a private temporary file (mode 0600,
 * removed afterwards, on failure too), then `pg_restore -j N` runs on it.
 *
 * The target must hold no user relations unless `allowNonEmpty`. Roles are not in a
 * dump (pg_dump dumps one database): the roles owning the objects must exist on the
 * target; pg_restore stops at the first error (`--exit-on-error`).
 */
import { spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { TidemarkError } from '../../errors.ts'
import type { Repository } from '../repository/index.ts'
import { redactUrl, silentLogger, toolConnection, type PgLogger } from './conn.ts'
import { isDumpManifest, type PostgresDumpManifest } from './dump-manifest.ts'
import { classifyToolFailure, describeExit } from './pg-errors.ts'
import { psql, rows } from './psql.ts'
import { toolMissing } from './run.ts'

/** What a dump restore needs; tool paths come from the logical preflight of the target. */
export interface RestoreDumpOptions {
  repo: Repository
  backupId: string
  targetUrl: string
  pgRestore: string
  psqlPath?: string
  jobs?: number
  allowNonEmpty?: boolean
  /** Where the temporary file of a parallel restore goes (default: the OS temp dir). */
  tmpDir?: string
  signal?: AbortSignal
  logger?: PgLogger
}

/** What was restored. */
export interface RestoreDumpReport {
  manifest: PostgresDumpManifest
  jobs: number
  durationMs: number
}

const USER_RELATIONS = `SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
  ORDER BY 1 LIMIT 6`

/** Throws TM_ERR_RESTORE_TARGET_NOT_EMPTY when the target database holds user tables, views or sequences; reads only. */
export async function checkDumpTarget(targetUrl: string, psqlPath?: string, signal?: AbortSignal): Promise<void> {
  const found = rows(await psql(targetUrl, USER_RELATIONS, { psqlPath, timeoutMs: 30_000, signal })).map((r) => r[0] as string)
  if (found.length === 0) return
  const names = found.slice(0, 5).join(', ') + (found.length > 5 ? ', …' : '')
  throw new TidemarkError('TM_ERR_RESTORE_TARGET_NOT_EMPTY', `the target database ${redactUrl(targetUrl)} is not empty (it holds ${names}); restore into an empty database (CREATE DATABASE …), or pass --allow-non-empty to restore on top of what is there`, { details: { relations: found.slice(0, 5) } })
}

/** The pg_restore arguments; `file` undefined reads the archive from stdin. */
export function pgRestoreArgs(connString: string, jobs: number, file?: string): string[] {
  const args = ['-w', '--exit-on-error', '-d', connString]
  if (jobs > 1) args.push('-j', String(jobs))
  else args.push('--single-transaction')
  if (file !== undefined) args.push(file)
  return args
}

/** Runs pg_restore, feeding `input` to its stdin when given; rejects with a classified error. */
function runPgRestore(o: RestoreDumpOptions, args: string[], input?: Readable): Promise<void> {
  const conn = toolConnection(o.targetUrl)
  const child = spawn(o.pgRestore, args, { env: { ...process.env, ...conn.env }, stdio: [input ? 'pipe' : 'ignore', 'ignore', 'pipe'], signal: o.signal, killSignal: 'SIGTERM' })
  let stderr = ''
  child.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-16_384)))
  let feedError: unknown
  if (input && child.stdin) {
    // pg_restore exiting early (an error) breaks the pipe: its exit status says why.
    pipeline(input, child.stdin).catch((err: unknown) => {
      feedError ??= err
      child.kill('SIGTERM')
    })
  }
  return new Promise((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.name === 'AbortError') reject(new TidemarkError('TM_ERR_ABORTED', 'pg_restore was aborted', { cause: err }))
      else reject(toolMissing(o.pgRestore, err))
    })
    child.once('close', (code, signal) => {
      // A failed read of the repository (integrity, abort) is the cause, not pg_restore's exit after it.
      if (feedError instanceof TidemarkError) return reject(feedError)
      if (code !== 0) return reject(classifyToolFailure('pg_restore', stderr, describeExit(code, signal)))
      if (feedError !== undefined) return reject(feedError)
      resolve()
    })
  })
}

async function readManifest(repo: Repository, id: string): Promise<PostgresDumpManifest> {
  const m = await repo.readManifest('postgres', id)
  if (!isDumpManifest(m)) throw new TidemarkError('TM_ERR_USAGE', `backup ${id} is a ${m.method} backup, not a logical dump: restore it with --at <time> --target-dir <dir>`)
  return m
}

/** Restores dump `backupId` into `targetUrl`. */
export async function restoreDump(o: RestoreDumpOptions): Promise<RestoreDumpReport> {
  const log = o.logger ?? silentLogger
  const t0 = Date.now()
  const m = await readManifest(o.repo, o.backupId)
  const ref = m.objects.find((r) => r.key === m.postgres.dumpKey)
  if (!ref) throw new TidemarkError('TM_ERR_REPO_CORRUPT', `manifest of dump ${m.id} does not list its archive ${m.postgres.dumpKey}`)
  if (!o.allowNonEmpty) await checkDumpTarget(o.targetUrl, o.psqlPath, o.signal)
  const jobs = Math.max(1, o.jobs ?? 1)
  const conn = toolConnection(o.targetUrl)
  log.info({ backupId: m.id, at: m.postgres.at, jobs }, 'restoring the dump')
  if (jobs === 1) {
    await runPgRestore(o, pgRestoreArgs(conn.connString, 1), await o.repo.readObject(ref, { signal: o.signal }))
  } else {
    const dir = await mkdtemp(join(o.tmpDir ?? tmpdir(), 'tidemark-dump-'))
    try {
      const file = join(dir, `${m.id}.dump`)
      await pipeline(await o.repo.readObject(ref, { signal: o.signal }), createWriteStream(file, { mode: 0o600 }), { signal: o.signal })
      await runPgRestore(o, pgRestoreArgs(conn.connString, jobs, file))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }
  log.info({ backupId: m.id, ms: Date.now() - t0 }, 'dump restored')
  return { manifest: m, jobs, durationMs: Date.now() - t0 }
}
