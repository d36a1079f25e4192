/**
 * Recovery settings for a restored base backup: where PostgreSQL fetches WAL from, and
 * where it stops. Building the text is pure; writing it into a data directory is the
 * only action here.
 *
 * PostgreSQL's rules that shape this:
 * - `restore_command` runs through the shell with `%f` (file name) and `%p` (target
 *   path) substituted and `%%` meaning `%`, so a command line is shell-quoted word by
 *   word and its `%` doubled before being quoted as a postgresql.conf string.
 * - `recovery_target_time` is compared with commit timestamps, inclusively by default
 *   (recovery_target_inclusive = on): a transaction committed exactly at the target is
 *   kept. It is written with an explicit `+00:00` offset so the server's timezone
 *   setting cannot shift it.
 * - Without a target, recovery replays all WAL restore_command can deliver, then
 *   promotes. With a target past the end of that WAL, PostgreSQL 15 refuses to start
 *   ("recovery ended before configured recovery target was reached"): the caller must
 *   not ask for a time beyond the archive.
 */
import { appendFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { TidemarkError } from '../../errors.ts'

/** Where recovery stops: the end of the archive, or an instant (with optional microseconds past the Date's millisecond). */
export type RecoveryTarget = 'latest' | { time: Date; microsecond?: number }

/** How the restored server fetches WAL and where it stops. */
export interface RecoveryOptions {
  /** The full restore_command, with `%f` and `%p` (see walFetchCommand). */
  restoreCommand: string
  target: RecoveryTarget
}

function invalid(msg: string): TidemarkError {
  return new TidemarkError('TM_ERR_CONFIG_INVALID', msg)
}

/** Quotes a value as a postgresql.conf string; rejects control characters, which the file format cannot hold. */
export function confString(value: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) throw invalid(`a postgresql.conf value cannot contain control characters or newlines: ${JSON.stringify(value)}`)
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`
}

/** Quotes one word for the POSIX shell (left bare when it is plainly safe). */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=@+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`
}

/**
 * The restore_command that runs `<argv…> wal-fetch %f %p`, for example
 * `['/usr/local/bin/tidemark', '--config', '/etc/tidemark/tidemark.yaml']`.
 */
export function walFetchCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw invalid('the wal-fetch command needs a program')
  return [...argv.map((w) => shellWord(w).replace(/%/g, '%%')), 'wal-fetch', '%f', '%p'].join(' ')
}

/** `2026-11-28 09:40:00.123456+00:00`: the target as PostgreSQL parses it, always in UTC. */
export function formatTargetTime(target: { time: Date; microsecond?: number }): string {
  const ms = target.time.getTime()
  const us = target.microsecond ?? 0
  if (!Number.isFinite(ms)) throw invalid('the recovery target time is not a valid date')
  if (!Number.isInteger(us) || us < 0 || us > 999) throw invalid(`microsecond must be an integer 0-999, got ${us}`)
  const iso = target.time.toISOString() // YYYY-MM-DDTHH:MM:SS.mmmZ
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${String(us).padStart(3, '0')}+00:00`
}

/** Where wal-fetch reads ahead, relative to the data directory (the cwd of restore_command). */
export const PREFETCH_DIR = 'pg_wal/tidemark-prefetch'

/** The settings text to append to postgresql.auto.conf. */
export function recoverySettings(opts: RecoveryOptions): string {
  if (!/%f/.test(opts.restoreCommand) || !/%p/.test(opts.restoreCommand)) throw invalid(`restore_command must contain %f and %p: ${opts.restoreCommand}`)
  const lines = ['# Written by tidemark restore.', `restore_command = ${confString(opts.restoreCommand)}`]
  if (opts.target !== 'latest') {
    lines.push(`recovery_target_time = ${confString(formatTargetTime(opts.target))}`, "recovery_target_inclusive = 'on'", "recovery_target_action = 'promote'")
  }
  lines.push("recovery_target_timeline = 'latest'")
  // wal-fetch reads segments ahead into pg_wal/tidemark-prefetch; once recovery ends they are not needed.
  lines.push(`recovery_end_command = ${confString(`rm -rf ${PREFETCH_DIR}`)}`)
  return `\n${lines.join('\n')}\n`
}

/**
 * Appends the settings to `<dataDir>/postgresql.auto.conf` (read last, so they win over
 * anything restored with the backup) and creates `recovery.signal`, which starts
 * targeted archive recovery rather than a standby.
 */
export async function writeRecoveryConfig(dataDir: string, settings: string): Promise<void> {
  await appendFile(join(dataDir, 'postgresql.auto.conf'), settings, { mode: 0o600 })
  await writeFile(join(dataDir, 'recovery.signal'), '', { mode: 0o600 })
}
