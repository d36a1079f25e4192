/**
 * Point-in-time restore into an empty data directory: choose the base backup
 * (restore-plan.ts), stream its tar out of the repository into `tar -x`, then write
 * recovery.signal and the recovery settings, whose restore_command runs
 * `tidemark wal-fetch`. Starting PostgreSQL on the directory performs the recovery.
 *
 * Everything that can refuse (a non-empty directory, a target outside the window,
 * no backup) is checked before anything is written; a failure while extracting
 * empties the directory again (and removes it if the restore created it).
 */
import { spawn } from 'node:child_process'
import { chmod, mkdir, readdir, rm, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { TidemarkError } from '../../errors.ts'
import type { Repository } from '../repository/index.ts'
import type { PostgresBaseManifest } from './base-manifest.ts'
import { readCatalog, type SystemCatalog } from './catalog.ts'
import { silentLogger, type PgLogger } from './conn.ts'
import { recoveryTargetOf, type Micros } from './instant.ts'
import { tail } from './pg-errors.ts'
import { recoverySettings, shellWord, writeRecoveryConfig } from './recovery.ts'
import { describePlan, planRestore, type RestorePlan } from './restore-plan.ts'

/** What to restore where. */
export interface RestoreOptions {
  repo: Repository
  target: 'latest' | Micros
  targetDir: string
  /** The cluster, when the repository holds several. */
  systemId?: string
  /** The restore_command for the chosen cluster (see walFetchRestoreCommand). */
  restoreCommand: (systemId: string) => string
  signal?: AbortSignal
  logger?: PgLogger
}

/** What was restored. */
export interface RestoreReport {
  plan: RestorePlan
  systemId: string
  manifest: PostgresBaseManifest
  targetDir: string
  restoreCommand: string
  description: string
}

/**
 * The restore_command that runs `<program…> wal-fetch --repo <url> --system-id <id> %f %p`.
 * Words are shell-quoted and `%` doubled (PostgreSQL substitutes `%f`, `%p`, `%%`). No
 * secret belongs here: wal-fetch reads keys and credentials from its configuration file
 * or environment.
 */
export function walFetchRestoreCommand(program: readonly string[], repoUrl: string, systemId: string): string {
  const words = [...program, 'wal-fetch', '--repo', repoUrl, '--system-id', systemId]
  return [...words.map((w) => shellWord(w).replace(/%/g, '%%')), '%f', '%p'].join(' ')
}

/** Recovery targets a restored configuration may carry from an earlier restore; reset so only ours applies. */
const RESET_TARGETS = ['recovery_target', 'recovery_target_lsn', 'recovery_target_name', 'recovery_target_time', 'recovery_target_xid'].map((k) => `${k} = ''`).join('\n')

/** 'missing' or 'empty'; TM_ERR_RESTORE_TARGET_NOT_EMPTY for anything else. Reads only. */
export async function checkTargetDir(dir: string): Promise<'missing' | 'empty'> {
  let isDir: boolean
  try {
    isDir = (await stat(dir)).isDirectory()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing'
    throw err
  }
  const entries = isDir ? await readdir(dir) : ['(not a directory)']
  if (entries.length > 0) {
    throw new TidemarkError('TM_ERR_RESTORE_TARGET_NOT_EMPTY', `restore target ${dir} is ${isDir ? `not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''})` : 'not a directory'}: restore into an empty or new directory; nothing was changed`, { details: { targetDir: dir } })
  }
  return 'empty'
}

/** Streams a tar into `tar -x -C dir`; TM_ERR_POSTGRES_TOOL with tar's own words if it fails. */
export async function extractTar(stream: Readable, dir: string, signal?: AbortSignal): Promise<void> {
  const child = spawn('tar', ['-x', '-f', '-', '-C', dir], { stdio: ['pipe', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-8192)))
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', resolve)
  })
  let streamErr: unknown
  await pipeline(stream, child.stdin, { signal }).catch((err: unknown) => (streamErr = err))
  const code = await exited.catch((err: unknown) => {
    throw new TidemarkError('TM_ERR_POSTGRES_TOOL', `cannot run tar to extract the base backup: ${(err as Error).message}`, { cause: err })
  })
  // A corrupt object fails the read: that error says more than tar's complaint about a short input.
  if (streamErr && !(streamErr as NodeJS.ErrnoException).code?.startsWith('EPIPE')) throw streamErr
  if (code !== 0) throw new TidemarkError('TM_ERR_POSTGRES_TOOL', `tar could not extract the base backup into ${dir} (exit ${code}): ${tail(stderr)}`)
}

function chooseSystem(catalogs: SystemCatalog[], systemId: string | undefined): SystemCatalog {
  const withBackups = catalogs.filter((c) => c.backups.length > 0)
  if (systemId !== undefined) {
    const c = catalogs.find((x) => x.systemId === systemId)
    if (!c || c.backups.length === 0) throw new TidemarkError('TM_ERR_RESTORE_NO_BACKUP', `the repository holds no base backup of the PostgreSQL cluster with system identifier ${systemId}${withBackups.length ? ` (it holds: ${withBackups.map((x) => x.systemId).join(', ')})` : ''}`)
    return c
  }
  if (withBackups.length === 0) throw new TidemarkError('TM_ERR_RESTORE_NO_BACKUP', 'the repository holds no PostgreSQL base backup: take one with `tidemark backup postgres` while `tidemark wal-archive` runs')
  if (withBackups.length > 1) throw new TidemarkError('TM_ERR_USAGE', `the repository holds backups of several PostgreSQL clusters (${withBackups.map((x) => x.systemId).join(', ')}): choose one with --system-id`)
  return withBackups[0] as SystemCatalog
}

/** Removes what a failed restore wrote: the directory's contents, and the directory itself if the restore made it. */
async function undo(dir: string, created: boolean): Promise<void> {
  if (created) return void (await rm(dir, { recursive: true, force: true }))
  for (const e of await readdir(dir).catch(() => [])) await rm(join(dir, e), { recursive: true, force: true })
}

/** Restores a base backup for `target` into `targetDir` and writes the recovery settings; start PostgreSQL on it to recover. */
export async function restorePostgres(o: RestoreOptions): Promise<RestoreReport> {
  const log = o.logger ?? silentLogger
  const state = await checkTargetDir(o.targetDir)
  const catalog = chooseSystem(await readCatalog(o.repo, { systemId: o.systemId }), o.systemId)
  const plan = planRestore(catalog.windows, o.target)
  const manifest = catalog.backups.find((m) => m.id === plan.backupId) as PostgresBaseManifest
  const tar = manifest.objects.find((r) => r.key === manifest.postgres.tarKey)
  if (!tar) throw new TidemarkError('TM_ERR_REPO_CORRUPT', `manifest of backup ${manifest.id} does not list its tar object ${manifest.postgres.tarKey}`)
  const restoreCommand = o.restoreCommand(catalog.systemId)
  const description = describePlan(plan)
  log.info({ backupId: plan.backupId, targetDir: o.targetDir }, `restoring ${description}`)
  await mkdir(o.targetDir, { recursive: true, mode: 0o700 })
  try {
    await chmod(o.targetDir, 0o700)
    await extractTar(await o.repo.readObject(tar, { signal: o.signal }), o.targetDir, o.signal)
    // A backup of a standby carries standby.signal, which would make this a standby instead of a recovery to the target.
    await unlink(join(o.targetDir, 'standby.signal')).catch(() => {})
    const target = o.target === 'latest' ? 'latest' : recoveryTargetOf(o.target)
    await writeRecoveryConfig(o.targetDir, `\n# Reset by tidemark restore: only the target below applies.\n${RESET_TARGETS}\n${recoverySettings({ restoreCommand, target })}`)
  } catch (err) {
    await undo(o.targetDir, state === 'missing')
    throw err
  }
  return { plan, systemId: catalog.systemId, manifest, targetDir: o.targetDir, restoreCommand, description }
}
