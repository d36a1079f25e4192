/**
 * Starts a real clickhouse-server for a test: free loopback ports, all data in a
 * temporary directory, stopped in the test's teardown (and by the process
 * registry if the test process dies). Several servers can run at once (for
 * example a backup source and a restore target).
 */
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { GiveUp, captureOutput, freePort, removeTempDir, spawnServer, stopProcess, tempDir, waitFor } from './proc.ts'
import { serverConfigXml, usersConfigXml, type ClickHouseLayout } from './clickhouse-config.ts'

/** A running test server. `query` talks to it as the password-protected user. */
export interface ClickHouseServer {
  /** Base HTTP URL, for example `http://127.0.0.1:40123`. */
  url: string
  httpPort: number
  tcpPort: number
  /** The server's temporary directory (data under `data/`, logs under `log/`). */
  dataDir: string
  /** A user that needs `password`; `default` without password also exists. */
  user: string
  password: string
  /** Runs one statement over HTTP and returns the raw response body; rejects with the server's message. */
  query(sql: string, settings?: Record<string, string | number>): Promise<string>
  /** Graceful stop (SIGTERM, then SIGKILL); removes the directory. Idempotent. */
  stop(): Promise<void>
  /** SIGKILL now, keeping the directory (to simulate a crash mid-operation); `stop` still cleans up. */
  kill(): Promise<void>
  /** Starts the server again on the same directory and ports after `kill` (or a stop of the process only). */
  restart(): Promise<void>
}

interface Teardownable {
  teardown(fn: () => unknown): void
}

const SERVER_BIN = process.env.CLICKHOUSE_SERVER_BIN ?? 'clickhouse-server'

/** How ports are chosen; a test of the harness passes its own. */
export interface StartOptions {
  port?: () => Promise<number>
}

async function layout(port: () => Promise<number>): Promise<ClickHouseLayout> {
  const dir = await tempDir('tidemark-ch-')
  const [httpPort, tcpPort, interserverPort] = [await port(), await port(), await port()]
  return { dir, httpPort, tcpPort, interserverPort, user: 'tidemark', password: randomBytes(9).toString('base64url') }
}

async function writeConfig(l: ClickHouseLayout): Promise<string> {
  for (const sub of ['data', 'tmp', 'user_files', 'format_schemas', 'log', 'dictionaries']) {
    await mkdir(join(l.dir, sub), { recursive: true })
  }
  const configFile = join(l.dir, 'config.xml')
  await writeFile(configFile, serverConfigXml(l))
  await writeFile(join(l.dir, 'users.xml'), usersConfigXml(l))
  return configFile
}

/** One HTTP request to the server; a non-2xx answer rejects with the body. */
async function httpQuery(l: ClickHouseLayout, sql: string, settings: Record<string, string | number> = {}, signal?: AbortSignal): Promise<string> {
  const qs = new URLSearchParams(Object.entries(settings).map(([k, v]): [string, string] => [k, String(v)]))
  const auth = Buffer.from(`${l.user}:${l.password}`).toString('base64')
  const res = await fetch(`http://127.0.0.1:${l.httpPort}/?${qs}`, { method: 'POST', body: sql, headers: { authorization: `Basic ${auth}`, connection: 'close' }, signal })
  const body = await res.text()
  if (!res.ok) throw new Error(`clickhouse ${res.status}: ${body.trim()}`)
  return body
}

async function errorLog(l: ClickHouseLayout): Promise<string> {
  return await readFile(join(l.dir, 'log', 'server.err.log'), 'utf8').then((s) => s.slice(-4000), () => '')
}

/** Spawns the server process and waits until `SELECT 1` answers; on failure kills it and says why. */
async function launch(l: ClickHouseLayout, configFile: string): Promise<ChildProcess> {
  const child = spawnServer(SERVER_BIN, [`--config-file=${configFile}`], { cwd: l.dir })
  const output = captureOutput(child)
  try {
    await waitFor('clickhouse-server to answer SELECT 1', async () => {
      if (child.exitCode !== null) throw new GiveUp(`exited with code ${child.exitCode}`)
      // Bounded: whatever holds the port may accept and never answer.
      return (await httpQuery(l, 'SELECT 1', {}, AbortSignal.timeout(2_000))).trim() === '1'
    }, 30_000, 50)
    return child
  } catch (err) {
    await stopProcess(child, 2_000)
    const why = `${output()}\n${await errorLog(l)}`.trim()
    throw new Error(`clickhouse-server did not start: ${(err as Error).message}\n${why}`, { cause: err })
  }
}

function killNow(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  try {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
  } catch {
    /* already gone */
  }
  return exited
}

/** Starts a server and waits until `SELECT 1` answers; registers `stop` in `t.teardown` when `t` is given. */
export async function startClickHouse(t?: Teardownable, opts: StartOptions = {}): Promise<ClickHouseServer> {
  // A port found free can be taken (by another test's server, or as some connection's
  // ephemeral port) before the server binds it: then start again on other ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(t, opts.port ?? freePort)
    } catch (err) {
      if (attempt >= 3 || !/Address already in use/.test(String(err))) throw err
    }
  }
}

async function startOnce(t: Teardownable | undefined, port: () => Promise<number>): Promise<ClickHouseServer> {
  const l = await layout(port)
  const configFile = await writeConfig(l)
  let child: ChildProcess | undefined
  let removed = false
  const stop = async () => {
    if (child) await stopProcess(child)
    if (!removed) {
      removed = true
      await removeTempDir(l.dir)
    }
  }
  t?.teardown(stop)
  try {
    child = await launch(l, configFile)
  } catch (err) {
    await stop()
    throw err
  }
  return {
    url: `http://127.0.0.1:${l.httpPort}`,
    httpPort: l.httpPort,
    tcpPort: l.tcpPort,
    dataDir: l.dir,
    user: l.user,
    password: l.password,
    query: (sql, settings) => httpQuery(l, sql, settings),
    stop,
    kill: async () => {
      if (child) await killNow(child)
    },
    restart: async () => {
      if (removed) throw new Error('restart after stop: the server directory is gone')
      if (child) await stopProcess(child)
      child = await launch(l, configFile)
    },
  }
}
