/**
 * Real PostgreSQL servers for tests: initdb into a temp dir, run `postgres` on a free
 * loopback port with its socket in the temp dir, and stop it in the test's teardown.
 *
 * - PostgreSQL refuses to run as root, so when the tests run as root the server runs as
 *   the `postgres` system user and its directories are handed to that user.
 * - The server is run in the foreground by the harness (not daemonized by `pg_ctl`) so
 *   the process registry in proc.ts kills it even when the test process dies; readiness
 *   is what `pg_ctl start -w` waits for too: the server accepting connections.
 * - Authentication: the superuser `postgres` is trusted on loopback (the harness needs no
 *   secret); every other role, including the replication role, must log in with a SCRAM
 *   password, so tests exercise password handling and wrong-password errors.
 * - WAL segments are 1 MiB (`initdb --wal-segsize=1`) so tests fill and switch them fast.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { psql as runPsql } from '../../src/engine/postgres/psql.ts'
import { captureOutput, freePort, removeTempDir, spawnServer, tempDir } from './proc.ts'

/** The directory of the PostgreSQL 15 server binaries (Debian layout); TIDEMARK_PG_BIN overrides it. */
export const PG_BIN = process.env.TIDEMARK_PG_BIN ?? '/usr/lib/postgresql/15/bin'

/** Anything with a tap-style teardown. */
export interface Teardown {
  teardown(fn: () => unknown): void
}

/** PostgreSQL's shutdown modes (SIGTERM, SIGINT, SIGQUIT to the postmaster). */
export type StopMode = 'smart' | 'fast' | 'immediate'

/** Settings of a fresh server. */
export interface PgServerOptions {
  walLevel?: 'minimal' | 'replica' | 'logical'
  /** Defaults to 5 (0 with walLevel minimal, which requires it). */
  maxWalSenders?: number
  maxReplicationSlots?: number
  walSegSizeMb?: number
  /** More postgresql.conf settings, written as given (strings are quoted). */
  settings?: Record<string, string | number | boolean>
}

/** Options for starting on an existing (restored) data directory. */
export interface StartOnDirOptions {
  /** Wait until recovery has ended and the server is promoted (pg_is_in_recovery() = false). */
  waitForPromotion?: boolean
  timeoutMs?: number
  /** Settings passed on the command line (override the restored configuration files). */
  settings?: Record<string, string | number | boolean>
  /** The restored `tidemark` role's password, to get a replicationUrl. */
  replicationPassword?: string
}

/** A running server. Every method may be called after a stop; stop and kill are idempotent. */
export interface PgServer {
  host: string
  port: number
  dataDir: string
  socketDir: string
  superuserUrl: string
  /** The replication role's URL (role `tidemark`, SCRAM password); for startPostgresOnDir, only with its replicationPassword. */
  replicationUrl: string
  replicationUser: string
  replicationPassword: string
  /** A URL for another role on this server. */
  urlFor(user: string, password?: string, db?: string): string
  /** Runs SQL as the superuser and returns psql's unaligned, tuples-only output. */
  psql(sql: string, db?: string): Promise<string>
  stop(mode?: StopMode): Promise<void>
  kill(): Promise<void>
  restart(): Promise<void>
  /** The server's own output (log lines), the most recent 64 KiB. */
  log(): string
  readonly running: boolean
}

interface OsUser {
  uid: number
  gid: number
}

let cachedUser: OsUser | undefined | null = null

/** The OS user servers run as: `postgres` when the tests run as root, else undefined (the current user). */
export async function serverOsUser(): Promise<OsUser | undefined> {
  if (cachedUser !== null) return cachedUser
  if (process.getuid?.() !== 0) return (cachedUser = undefined)
  const line = (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith('postgres:'))
  if (!line) throw new Error('tests run as root but there is no "postgres" system user to run PostgreSQL as')
  const f = line.split(':')
  return (cachedUser = { uid: Number(f[2]), gid: Number(f[3]) })
}

/** A fresh temp dir the server user owns (data directories and restore targets go here). */
export async function serverTempDir(prefix = 'tidemark-pg-'): Promise<string> {
  const dir = await tempDir(prefix)
  const user = await serverOsUser()
  if (user) await chown(dir, user.uid, user.gid)
  return dir
}

/** Hands a data directory (recursively) to the server user with the 0700 mode PostgreSQL requires. */
export async function prepareDataDir(dataDir: string): Promise<void> {
  const user = await serverOsUser()
  if (user) await runAs(undefined, 'chown', ['-R', `${user.uid}:${user.gid}`, dataDir])
  await chmod(dataDir, 0o700)
}

/** Runs a command to completion (as `user` when given); rejects with its output on failure. */
async function runAs(user: OsUser | undefined, cmd: string, args: string[], cwd?: string): Promise<string> {
  const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], ...(user ? { uid: user.uid, gid: user.gid } : {}) })
  const out = captureOutput(child)
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (c) => resolve(c))
  })
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${code}): ${out()}`)
  return out()
}

function confValue(v: string | number | boolean): string {
  return typeof v === 'string' ? `'${v.replace(/'/g, "''")}'` : String(v)
}

function baseSettings(opts: PgServerOptions): Record<string, string | number | boolean> {
  const walLevel = opts.walLevel ?? 'replica'
  return {
    wal_level: walLevel,
    max_wal_senders: opts.maxWalSenders ?? (walLevel === 'minimal' ? 0 : 5),
    max_replication_slots: opts.maxReplicationSlots ?? 5,
    archive_mode: 'off',
    // Tests never survive a machine crash; skipping fsync keeps a shared machine fast.
    fsync: 'off',
    shared_buffers: '16MB',
    max_connections: 30,
    timezone: 'UTC',
    log_timezone: 'UTC',
    ...opts.settings,
  }
}

const HBA = `# written by the tidemark test harness
local   all          all                      trust
local   replication  all                      trust
host    all          postgres   127.0.0.1/32  trust
host    replication  postgres   127.0.0.1/32  trust
host    all          all        127.0.0.1/32  scram-sha-256
host    replication  all        127.0.0.1/32  scram-sha-256
`

/** Starts a fresh server (initdb, configuration, replication role `tidemark`); stopped in `t`'s teardown. */
export async function startPostgres(t?: Teardown, opts: PgServerOptions = {}): Promise<PgServer> {
  const root = await serverTempDir()
  const user = await serverOsUser()
  const dataDir = join(root, 'data')
  const socketDir = join(root, 'sock')
  await mkdir(socketDir, { mode: 0o700 })
  if (user) await chown(socketDir, user.uid, user.gid)
  await runAs(user, join(PG_BIN, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '-N', `--wal-segsize=${opts.walSegSizeMb ?? 1}`], root)
  const conf = Object.entries(baseSettings(opts)).map(([k, v]) => `${k} = ${confValue(v)}`).join('\n')
  await writeFile(join(dataDir, 'postgresql.conf'), `\n# tidemark test harness\n${conf}\n`, { flag: 'a' })
  await writeFile(join(dataDir, 'pg_hba.conf'), HBA)
  const server = new Server(root, dataDir, socketDir, user, {})
  t?.teardown(() => server.dispose())
  await server.startWithFreshPort()
  server.replicationPassword = randomBytes(12).toString('hex')
  await server.psql(`CREATE ROLE ${server.replicationUser} LOGIN REPLICATION PASSWORD '${server.replicationPassword}'`)
  return server
}

/**
 * Starts a server on an existing data directory (a restored base backup): it is handed
 * to the server user, given a fresh port and socket dir, and the call resolves once the
 * server accepts connections (after reaching consistency) or, with waitForPromotion, once
 * recovery has ended. Rejects with the server's log if it exits first (failed recovery).
 */
export async function startPostgresOnDir(dataDir: string, t?: Teardown, opts: StartOnDirOptions = {}): Promise<PgServer> {
  const root = await serverTempDir('tidemark-pgsock-')
  const user = await serverOsUser()
  await prepareDataDir(dataDir)
  const server = new Server(root, dataDir, root, user, opts.settings ?? {})
  server.replicationUser = opts.replicationPassword === undefined ? '' : 'tidemark'
  server.replicationPassword = opts.replicationPassword ?? ''
  t?.teardown(() => server.dispose())
  await server.startWithFreshPort(opts.timeoutMs)
  if (opts.waitForPromotion) {
    await server.until('the end of recovery', async () => (await server.psql('SELECT pg_is_in_recovery()')) === 'f', opts.timeoutMs ?? 120_000)
  }
  return server
}

const SIGNAL_OF: Record<StopMode, NodeJS.Signals> = { smart: 'SIGTERM', fast: 'SIGINT', immediate: 'SIGQUIT' }

class Server implements PgServer {
  readonly host = '127.0.0.1'
  port = 0
  replicationUser = 'tidemark'
  replicationPassword = ''
  #child: ChildProcess | undefined
  #output: () => string = () => ''
  #exited: Promise<void> = Promise.resolve()
  readonly root: string
  readonly dataDir: string
  readonly socketDir: string
  readonly #user: OsUser | undefined
  readonly #extra: Record<string, string | number | boolean>

  constructor(root: string, dataDir: string, socketDir: string, user: OsUser | undefined, extra: Record<string, string | number | boolean>) {
    this.root = root
    this.dataDir = dataDir
    this.socketDir = socketDir
    this.#user = user
    this.#extra = extra
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null
  }

  get superuserUrl(): string {
    return this.urlFor('postgres')
  }

  get replicationUrl(): string {
    return this.replicationUser ? this.urlFor(this.replicationUser, this.replicationPassword) : ''
  }

  urlFor(user: string, password?: string, db = 'postgres'): string {
    const cred = password === undefined ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`
    return `postgresql://${cred}@${this.host}:${this.port}/${db}`
  }

  psql(sql: string, db?: string): Promise<string> {
    return runPsql(this.superuserUrl, sql, { db, psqlPath: join(PG_BIN, 'psql') })
  }

  log(): string {
    return this.#output()
  }

  /** Picks a free port and starts; retries when another process took the port meanwhile. */
  async startWithFreshPort(timeoutMs?: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.port = await freePort()
      try {
        return await this.start(timeoutMs)
      } catch (err) {
        if (attempt >= 3 || !/could not bind|Address already in use/.test(String(err))) throw err
      }
    }
  }

  async start(timeoutMs = 60_000): Promise<void> {
    const args = ['-D', this.dataDir, '-p', String(this.port), '-k', this.socketDir, '-c', `listen_addresses=${this.host}`]
    for (const [k, v] of Object.entries(this.#extra)) args.push('-c', `${k}=${v}`)
    const child = spawnServer(join(PG_BIN, 'postgres'), args, { cwd: this.root, ...(this.#user ? { uid: this.#user.uid, gid: this.#user.gid } : {}) })
    this.#child = child
    this.#output = captureOutput(child)
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()))
    try {
      await this.until(`postgres on port ${this.port} to accept connections`, () => this.#accepting(), timeoutMs)
    } catch (err) {
      await this.kill()
      throw err
    }
  }

  /** Polls `check` until true; fails at once with the server's log if the server exits meanwhile (a failed recovery). */
  async until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (!this.running) throw new Error(`postgres exited (${this.#child?.exitCode ?? this.#child?.signalCode}) while waiting for ${what}:\n${this.#output()}`)
      if (await check().catch(() => false)) return
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${this.#output()}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  async #accepting(): Promise<boolean> {
    const child = spawn(join(PG_BIN, 'pg_isready'), ['-q', '-h', this.host, '-p', String(this.port), '-t', '1'], { stdio: 'ignore' })
    return await new Promise((resolve) => {
      child.once('error', () => resolve(false))
      child.once('close', (code) => resolve(code === 0))
    })
  }

  async stop(mode: StopMode = 'fast'): Promise<void> {
    const child = this.#child
    if (!child || !this.running || child.pid === undefined) return
    child.kill(SIGNAL_OF[mode])
    const timer = setTimeout(() => void this.kill(), 30_000)
    await this.#exited
    clearTimeout(timer)
  }

  async kill(): Promise<void> {
    const child = this.#child
    if (!child || !this.running || child.pid === undefined) return
    try {
      process.kill(-child.pid, 'SIGKILL')
    } catch {
      /* already gone */
    }
    await this.#exited
  }

  async restart(): Promise<void> {
    await this.stop('fast')
    await this.start()
  }

  async dispose(): Promise<void> {
    await this.stop('immediate')
    if (!process.env.TIDEMARK_KEEP_TEST_DIRS) await removeTempDir(this.root)
  }
}
