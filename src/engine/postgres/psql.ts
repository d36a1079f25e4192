/**
 * Queries through `psql` (no PostgreSQL driver is needed for the few queries the
 * physical method makes). Output is unaligned, tuples only: one line per row, `|`
 * between fields.
 */
import { toolConnection } from './conn.ts'
import { classifyToolFailure, describeExit } from './pg-errors.ts'
import { runTool } from './run.ts'

/** Options of a psql run. */
export interface PsqlOptions {
  /** Path of the psql binary; defaults to `psql` on PATH. */
  psqlPath?: string
  /** Database to connect to instead of the URL's. */
  db?: string
  timeoutMs?: number
  signal?: AbortSignal
}

const BASE_ARGS = ['-X', '-A', '-t', '-q', '-w', '-v', 'ON_ERROR_STOP=1']

function connectionFor(url: string, params: Record<string, string>, db: string | undefined) {
  const conn = toolConnection(url, params)
  if (db !== undefined && /^postgres(ql)?:\/\//.test(url)) {
    const u = new URL(conn.connString)
    u.pathname = `/${encodeURIComponent(db)}`
    conn.connString = u.toString()
  } else if (db !== undefined) {
    conn.connString += ` dbname=${db}`
  }
  return conn
}

async function run(url: string, args: string[], params: Record<string, string>, opts: PsqlOptions, stdin?: string): Promise<string> {
  const conn = connectionFor(url, params, opts.db)
  const res = await runTool(opts.psqlPath ?? 'psql', [...BASE_ARGS, '-d', conn.connString, ...args], {
    env: { ...conn.env, PGCLIENTENCODING: 'UTF8' },
    stdin,
    timeoutMs: opts.timeoutMs ?? 60_000,
    signal: opts.signal,
  })
  if (res.code !== 0) {
    // psql exits 2 when the connection failed, 3 when a statement failed.
    throw classifyToolFailure('psql', res.stderr, describeExit(res.code, res.signal), res.code === 2 ? 'TM_ERR_POSTGRES_UNREACHABLE' : 'TM_ERR_POSTGRES_QUERY')
  }
  return res.stdout.replace(/\n$/, '')
}

/** Runs SQL (may hold several statements) and returns its output; failures are classified TidemarkErrors. */
export function psql(url: string, sql: string, opts: PsqlOptions = {}): Promise<string> {
  return run(url, ['-f', '-'], {}, opts, sql)
}

/**
 * Runs replication-protocol commands (IDENTIFY_SYSTEM, SHOW …) over a physical
 * replication connection, one command per query, as a walsender accepts them.
 * Returns one output string per command.
 */
export async function psqlReplication(url: string, commands: string[], opts: PsqlOptions = {}): Promise<string[]> {
  // A marker line between commands separates their outputs.
  const marker = '--tidemark-next--'
  const args = commands.flatMap((c, i) => (i === 0 ? ['-c', c] : ['-c', `\\echo ${marker}`, '-c', c]))
  const out = await run(url, args, { replication: 'true' }, opts)
  return out.split(`${marker}\n`).map((s) => s.replace(/\n$/, ''))
}

/** Splits psql's unaligned output into rows of fields. */
export function rows(out: string): string[][] {
  return out === '' ? [] : out.split('\n').map((line) => line.split('|'))
}
