/**
 * Helpers for the tests that drive the physical method through the real CLI:
 * configuration files, the `tidemark wal-archive` service, commit times.
 */
import type { ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { stringify } from 'yaml'
import { rows } from '../../src/engine/postgres/psql.ts'
import { BIN, cleanEnv, tidemark, type RunResult } from '../cli/run.ts'
import { PG_BIN, startPostgresOnDir, type PgServer, type StartOnDirOptions, type Teardown } from '../harness/postgres.ts'
import { captureOutput, spawnServer } from '../harness/proc.ts'

/** What a test configuration sets. */
export interface TestConfig {
  repo: string
  url: string
  slot: string
  walDir: string
  passphrase?: string
  intervalSeconds?: number
  walTimeoutSeconds?: number
  binDir?: string
}

/** Writes a tidemark configuration file (readable by the server's user: wal-fetch reads it). */
export async function writeConfig(path: string, c: TestConfig): Promise<string> {
  const doc = {
    repository: { url: c.repo, ...(c.passphrase ? { encryption: { passphrase: c.passphrase } } : {}) },
    pipeline: { threads: 1 },
    postgres: {
      url: c.url,
      binDir: c.binDir ?? PG_BIN,
      slot: c.slot,
      walDir: c.walDir,
      walPartialIntervalSeconds: c.intervalSeconds ?? 2,
      baseBackupWalTimeoutSeconds: c.walTimeoutSeconds ?? 60,
    },
    log: { level: 'info' },
  }
  await writeFile(path, stringify(doc), { mode: 0o644 })
  return path
}

/** Runs a tidemark command with a configuration file; fails the test with its stderr unless `allowFail`. */
export async function cli(cfg: string, args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<RunResult> {
  return tidemark(['--config', cfg, ...args], { timeoutMs: opts.timeoutMs ?? 120_000, env: opts.env })
}

/** A running `tidemark wal-archive`. */
export interface ArchiveService {
  child: ChildProcess
  output(): string
  /** SIGTERM, then waits; resolves with the exit code and signal. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** SIGKILL to its whole process group (pg_receivewal included): a crash. */
  kill(): Promise<void>
}

/** Starts `tidemark wal-archive` in its own process group; stopped (SIGTERM) in the teardown. */
export function startArchive(t: Teardown, cfg: string): ArchiveService {
  const child = spawnServer(BIN, ['--config', cfg, 'wal-archive'], { env: cleanEnv() })
  const output = captureOutput(child, 256 * 1024)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(-child.pid, sig)
    } catch {
      // gone
    }
  }
  const svc: ArchiveService = {
    child,
    output,
    async stop() {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const timer = setTimeout(() => signalGroup('SIGKILL'), 60_000)
      const r = await exited
      clearTimeout(timer)
      return r
    },
    async kill() {
      signalGroup('SIGKILL')
      await exited
    },
  }
  t.teardown(() => svc.stop())
  return svc
}

/** A row's id and its commit time in microseconds (track_commit_timestamp must be on). */
export interface Commit {
  id: number
  us: bigint
}

/** Every row of `table` (columns id) with its exact commit time, by id. */
export async function commitsOf(pg: PgServer, table: string, where = 'true'): Promise<Commit[]> {
  const out = await pg.psql(`SELECT id, (extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000000)::bigint FROM ${table} WHERE ${where} ORDER BY id`)
  return rows(out).map(([id, us]) => ({ id: Number(id), us: BigInt(us as string) }))
}

/** The ids in `table`, sorted. */
export async function idsOf(pg: PgServer, table: string): Promise<number[]> {
  const out = await pg.psql(`SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM ${table}`)
  return out.split(',').filter((x) => x !== '').map(Number)
}

/** Parses a command's --json output, failing with its stderr when it did not succeed. */
export function json<T>(r: RunResult, what: string): T {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}, signal ${r.signal}): ${r.stderr}`)
  return JSON.parse(r.stdout) as T
}

/**
 * Starts a server on a restored directory. Under tap every Node child (the server's
 * restore_command runs `tidemark wal-fetch`) loads tap's process-tracking hook, which
 * writes into the directory named by _TAPJS_PROCESSINFO_CWD_: the checkout, which the
 * server's OS user cannot write. While the server is spawned, that variable points at
 * `scratch`, a directory the server's user owns.
 */
export async function startRestored(dataDir: string, scratch: string, t: Teardown, opts: StartOnDirOptions): Promise<PgServer> {
  const saved = process.env._TAPJS_PROCESSINFO_CWD_
  if (saved !== undefined) process.env._TAPJS_PROCESSINFO_CWD_ = scratch
  try {
    return await startPostgresOnDir(dataDir, t, opts)
  } finally {
    if (saved !== undefined) process.env._TAPJS_PROCESSINFO_CWD_ = saved
  }
}
