/**
 * Streams `pg_dump -Fc` of one database on an exported snapshot. The stream ends only
 * after pg_dump has exited successfully, so a consumer that reaches the end holds a
 * complete archive; any failure errors the stream instead.
 *
 * `-Z 0`: pg_dump's own compression is off; the repository pipeline compresses (zstd,
 * in parallel) and compressing twice would only cost CPU.
 */
import { spawn } from 'node:child_process'
import { Transform, type Readable } from 'node:stream'
import { TidemarkError } from '../../errors.ts'
import { silentLogger, toolConnection, type PgLogger } from './conn.ts'
import { classifyToolFailure, describeExit, tail } from './pg-errors.ts'
import { toolMissing } from './run.ts'

/** How to run pg_dump. */
export interface PgDumpOptions {
  url: string
  pgDump: string
  snapshot: string
  signal?: AbortSignal
  logger?: PgLogger
}

/** A running dump: read `stream` to the end; `bytes` counts what passed. */
export interface PgDump {
  stream: Readable
  bytes(): number
  abort(reason?: string): void
}

/** The pg_dump arguments. */
export function pgDumpArgs(connString: string, snapshot: string): string[] {
  return ['-F', 'c', '-Z', '0', '-w', `--snapshot=${snapshot}`, '-d', connString]
}

/** Starts pg_dump; aborting kills it and errors the stream with TM_ERR_ABORTED. */
export function startPgDump(o: PgDumpOptions): PgDump {
  const log = o.logger ?? silentLogger
  const conn = toolConnection(o.url)
  const child = spawn(o.pgDump, pgDumpArgs(conn.connString, o.snapshot), { env: { ...process.env, ...conn.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-16_384)))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })))
  let failure: TidemarkError | undefined
  let bytes = 0
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length
      cb(null, chunk)
    },
    // Holds the end of the stream until pg_dump's exit status is known.
    flush(cb) {
      void exited.then(({ code, signal }) => {
        if (failure) return cb(failure)
        if (code !== 0) return cb(classifyToolFailure('pg_dump', stderr, describeExit(code, signal)))
        cb()
      })
    },
  })
  const fail = (err: TidemarkError): void => {
    failure ??= err
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    out.destroy(failure)
  }
  child.once('error', (err) => fail(toolMissing(o.pgDump, err)))
  void exited.then(({ code, signal }) => {
    if (code !== 0) log.warn({ status: describeExit(code, signal), stderr: tail(stderr) }, 'pg_dump failed')
  })
  out.once('close', () => {
    if (child.exitCode === null && child.signalCode === null) fail(new TidemarkError('TM_ERR_ABORTED', 'the dump stream was closed before it ended'))
  })
  child.stdout.pipe(out)
  const abort = (reason = 'dump aborted'): void => fail(new TidemarkError('TM_ERR_ABORTED', reason))
  o.signal?.addEventListener('abort', () => abort(), { once: true })
  if (o.signal?.aborted) abort()
  return { stream: out, bytes: () => bytes, abort }
}
