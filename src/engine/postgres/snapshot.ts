/**
 * An exported snapshot held open for pg_dump: a psql session begins a REPEATABLE
 * READ transaction, exports its snapshot and reads the server clock around it. The
 * snapshot stays importable (`pg_dump --snapshot`) while the session's transaction is
 * open; `release()` commits and ends the session.
 *
 * Times: `notBeforeUs` is now() (the transaction's start, read before the snapshot
 * was taken), `atUs` is clock_timestamp() read after it. Every transaction committed
 * before `notBeforeUs` is visible in the snapshot; none committed after `atUs` is.
 */
import { spawn } from 'node:child_process'
import { TidemarkError } from '../../errors.ts'
import { toolConnection } from './conn.ts'
import type { Micros } from './instant.ts'
import { classifyToolFailure, describeExit } from './pg-errors.ts'
import { toolMissing } from './run.ts'

/** An open exported snapshot. */
export interface HeldSnapshot {
  id: string
  notBeforeUs: Micros
  atUs: Micros
  serverVersionNum: number
  database: string
  /** Commits the session's transaction and waits for psql to exit. */
  release(): Promise<void>
}

const EPOCH = (f: string) => `(extract(epoch FROM ${f}) * 1000000)::bigint`

/** The SQL the session runs first; one output line: snapshot|notBefore|at|version|database. */
export const SNAPSHOT_SQL = `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT pg_export_snapshot(), ${EPOCH('now()')}, ${EPOCH('clock_timestamp()')}, current_setting('server_version_num'), current_database();
`

/** Parses the session's output line; undefined until a whole line has arrived. */
export function parseSnapshotLine(out: string): Omit<HeldSnapshot, 'release'> | undefined {
  const nl = out.indexOf('\n')
  if (nl < 0) return undefined
  const f = out.slice(0, nl).split('|')
  if (f.length !== 5 || !/^[0-9A-F-]+$/i.test(f[0] as string) || !/^\d+$/.test(f[1] as string) || !/^\d+$/.test(f[2] as string)) {
    throw new TidemarkError('TM_ERR_POSTGRES_FORMAT', `unexpected snapshot output: ${JSON.stringify(out.slice(0, 200))}`)
  }
  return { id: f[0] as string, notBeforeUs: BigInt(f[1] as string), atUs: BigInt(f[2] as string), serverVersionNum: Number(f[3]), database: f[4] as string }
}

/** Opens the session and exports a snapshot; rejects (and ends the session) if psql fails or `timeoutMs` passes. */
export function holdSnapshot(url: string, opts: { psqlPath?: string; timeoutMs?: number } = {}): Promise<HeldSnapshot> {
  const conn = toolConnection(url)
  const child = spawn(opts.psqlPath ?? 'psql', ['-X', '-A', '-t', '-q', '-w', '-v', 'ON_ERROR_STOP=1', '-d', conn.connString], {
    env: { ...process.env, ...conn.env, PGCLIENTENCODING: 'UTF8' },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-16_384)))
  child.stdin.on('error', () => {})
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })))
  const release = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.stdin.end('COMMIT;\n')
    const { code, signal } = await exited
    if (code !== 0) throw classifyToolFailure('psql (snapshot session)', stderr, describeExit(code, signal), 'TM_ERR_POSTGRES_QUERY')
  }
  return new Promise<HeldSnapshot>((resolve, reject) => {
    const timer = setTimeout(() => fail(new TidemarkError('TM_ERR_POSTGRES_UNREACHABLE', 'exporting a snapshot for pg_dump timed out')), opts.timeoutMs ?? 60_000)
    const fail = (err: unknown) => {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(err)
    }
    child.once('error', (err) => fail(toolMissing(opts.psqlPath ?? 'psql', err)))
    void exited.then(({ code, signal }) => fail(classifyToolFailure('psql (snapshot session)', stderr, describeExit(code, signal), code === 2 ? 'TM_ERR_POSTGRES_UNREACHABLE' : 'TM_ERR_POSTGRES_QUERY')))
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString()
      try {
        const s = parseSnapshotLine(stdout)
        if (!s) return
        clearTimeout(timer)
        resolve({ ...s, release })
      } catch (err) {
        fail(err)
      }
    })
    child.stdin.write(SNAPSHOT_SQL)
  })
}
