/**
 * Streams a base backup: `pg_basebackup -Ft -D - -X none` writes one tar (base.tar,
 * with backup_manifest appended) to stdout (a FIFO read by a socket, see makeFifo), which
 * is passed on unchanged while TarScanner follows it.
 * The stream only ends after pg_basebackup has exited successfully, so a consumer that
 * reaches the end has a complete backup; any failure errors the stream instead.
 *
 * Choices: `-c fast` (an immediate checkpoint: the backup starts at once rather than
 * after a spread checkpoint); the manifest is kept, because its WAL-Ranges carry the
 * stop LSN (with `-X none`, `-v` does not print the WAL end point) and it lets
 * pg_verifybackup check a restored directory; no `-P`, since its size estimate costs
 * the server an extra pass over the data directory and the byte count is known here.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs'
import { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { TidemarkError } from '../../errors.ts'
import { parseBackupLabel } from './backup-label.ts'
import { silentLogger, toolConnection, type PgLogger } from './conn.ts'
import { classifyToolFailure, describeExit, tail } from './pg-errors.ts'
import { toolMissing } from './run.ts'
import { SocketBody } from '../../net/socket-body.ts'
import { TarScan, TarScanner, type TarScanResult } from './tar-scan.ts'

/** How to run pg_basebackup. */
export interface BaseBackupOptions {
  /** Connection URL of a role with REPLICATION. */
  url: string
  /** Path of pg_basebackup (see tools.ts). */
  pgBasebackup: string
  label?: string
  /** Passed as --max-rate (for example "100M"), to spare the server's disks. */
  maxRate?: string
  signal?: AbortSignal
  logger?: PgLogger
  now?: () => Date
}

/** What a finished base backup needs for its manifest. */
export interface BaseBackupResult {
  startLsn: bigint
  stopLsn: bigint
  timeline: number
  stopTimeline: number
  startWalFile: string
  /** From backup_label, converted to UTC. */
  startTime: Date
  startTimeExact: boolean
  /** Our clock when pg_basebackup exited: the backup was consistent by then. */
  endTime: Date
  label: string
  /** The backup_label file as PostgreSQL wrote it. */
  backupLabel: string
  bytes: number
}

/** A running base backup. Read `stream` to the end; `done` settles when pg_basebackup has exited. */
export interface BaseBackup {
  stream: Readable
  done: Promise<BaseBackupResult>
  abort(reason?: string): void
}

/** Derives the result from what the scan saw; throws TM_ERR_POSTGRES_FORMAT when the stream lacks a label or WAL range. */
export function backupResult(scan: TarScanResult, near: Date, endTime: Date): BaseBackupResult {
  if (scan.backupLabel === undefined) throw new TidemarkError('TM_ERR_POSTGRES_FORMAT', 'the base backup stream has no backup_label')
  const label = parseBackupLabel(scan.backupLabel, { near })
  const ranges = scan.walRanges
  const last = ranges?.at(-1)
  if (!ranges || !last) throw new TidemarkError('TM_ERR_POSTGRES_FORMAT', 'the base backup stream has no backup_manifest with WAL-Ranges (was --no-manifest used?)')
  if ((ranges[0] as (typeof ranges)[0]).startLsn !== label.startLsn || last.endLsn < label.startLsn) {
    throw new TidemarkError('TM_ERR_POSTGRES_FORMAT', 'the backup_manifest WAL range does not match the backup_label start')
  }
  return {
    startLsn: label.startLsn,
    stopLsn: last.endLsn,
    timeline: label.timeline,
    stopTimeline: last.timeline,
    startWalFile: label.startWalFile,
    startTime: label.startTime,
    startTimeExact: label.startTimeExact,
    endTime,
    label: label.label,
    backupLabel: scan.backupLabel,
    bytes: scan.bytes,
  }
}

/** The pg_basebackup arguments for a streamed tar backup without WAL. */
export function baseBackupArgs(connString: string, label: string, maxRate?: string): string[] {
  const args = ['-D', '-', '-F', 't', '-X', 'none', '-c', 'fast', '-v', '-w', '-l', label, '-d', connString]
  if (maxRate) args.push('-r', maxRate)
  return args
}

/** Bytes per read of the FIFO: read into one buffer, reused for every read. */
const READ_BUFFER_BYTES = 256 * 1024

/**
 * The two ends of a new FIFO (its name is removed at once; the ends stay open). The read
 * end, non-blocking, becomes a socket that reads into one fixed buffer (`onread`) and
 * hands each read to the pipeline without allocating (src/net/socket-body.ts): a child's stdout
 * pipe gives no such option and allocates a buffer per 64 KiB read, which kept the
 * garbage collector busy for a third of the main thread. Undefined where no FIFO can be
 * made (then stdout is a pipe, as before).
 */
function makeFifo(): { readFd: number; writeFd: number } | undefined {
  let dir: string | undefined
  try {
    dir = mkdtempSync(join(tmpdir(), 'tidemark-basebackup-'))
    const path = join(dir, 'stdout')
    execFileSync('mkfifo', ['-m', '600', path], { stdio: 'ignore' })
    const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
    try {
      return { readFd, writeFd: openSync(path, constants.O_WRONLY) }
    } catch (err) {
      closeSync(readFd)
      throw err
    }
  } catch {
    return undefined
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true })
  }
}

/** The tar from the FIFO's read end, scanned as it arrives; ends only once `beforeEnd` passed and the archive is whole. */
function fifoStream(readFd: number, beforeEnd: (r: TarScanResult) => Promise<void>): SocketBody {
  const scanner = new TarScanner()
  const socket = new Socket({
    fd: readFd,
    readable: true,
    writable: false,
    onread: {
      buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
      callback: (n: number, buf: Uint8Array) => {
        const bytes = (buf as Buffer).subarray(0, n)
        try {
          scanner.scan(bytes)
        } catch (err) {
          body.destroy(err as Error)
          return false
        }
        body.deliver(bytes, false)
        return true
      },
    },
  })
  const body: SocketBody = new SocketBody(socket)
  // The hook first: the tool's exit status says more than "truncated".
  body.endCheck = async () => {
    await beforeEnd(scanner.result())
    return scanner.check()
  }
  socket.on('end', () => body.finish())
  socket.on('error', (err) => body.destroy(err))
  return body
}

/** The tar from a pipe (where no FIFO could be made), through the TarScan transform. */
function pipeStream(stdout: Readable, beforeEnd: (r: TarScanResult) => Promise<void>): Readable {
  const scan = new TarScan({ beforeEnd })
  stdout.pipe(scan)
  return scan
}

/** Starts pg_basebackup. Aborting (signal or abort()) kills it and fails both the stream and `done` with TM_ERR_ABORTED. */
export function startBaseBackup(opts: BaseBackupOptions): BaseBackup {
  const now = opts.now ?? (() => new Date())
  const log = opts.logger ?? silentLogger
  const conn = toolConnection(opts.url)
  const near = now()
  const fifo = makeFifo()
  let child: ChildProcess
  try {
    child = spawn(opts.pgBasebackup, baseBackupArgs(conn.connString, opts.label ?? 'tidemark', opts.maxRate), {
      env: { ...process.env, ...conn.env },
      stdio: ['ignore', fifo ? fifo.writeFd : 'pipe', 'pipe'],
    })
  } finally {
    // The child has its own copy; the stream ends when the child's is closed.
    if (fifo) closeSync(fifo.writeFd)
  }
  let stderr = ''
  const errors = child.stderr as Readable // stdio[2] is 'pipe'
  errors.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-16_384)
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })))
  let settle!: { resolve: (r: BaseBackupResult) => void; reject: (e: unknown) => void }
  const done = new Promise<BaseBackupResult>((resolve, reject) => (settle = { resolve, reject }))
  // The caller may only read the stream; a rejection must not crash the process unobserved.
  done.catch(() => {})
  let failure: TidemarkError | undefined

  const beforeEnd = async (r: TarScanResult): Promise<void> => {
    const { code, signal } = await exited
    if (failure) throw failure
    if (code !== 0) throw classifyToolFailure('pg_basebackup', stderr, describeExit(code, signal))
    if (r.endOffset === undefined) return // the scan reports the truncation
    const result = backupResult(r, near, now())
    log.info({ startLsn: result.startLsn.toString(16), stopLsn: result.stopLsn.toString(16), bytes: result.bytes }, 'pg_basebackup finished')
    settle.resolve(result)
  }
  const stream = fifo ? fifoStream(fifo.readFd, beforeEnd) : pipeStream(child.stdout as Readable, beforeEnd)
  const fail = (err: TidemarkError): void => {
    failure ??= err
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    stream.destroy(failure)
    settle.reject(failure)
  }
  child.once('error', (err) => fail(toolMissing(opts.pgBasebackup, err)))
  stream.once('error', (err) => settle.reject(err))
  // A consumer that stops reading early (its upload failed) must not leave the backup running.
  stream.once('close', () => fail(new TidemarkError('TM_ERR_ABORTED', 'the base backup stream was closed before it ended')))
  const abort = (reason = 'base backup aborted'): void => fail(new TidemarkError('TM_ERR_ABORTED', reason))
  opts.signal?.addEventListener('abort', () => abort(), { once: true })
  if (opts.signal?.aborted) abort()
  exited.then(({ code, signal }) => {
    if (code !== 0) log.warn({ status: describeExit(code, signal), stderr: tail(stderr) }, 'pg_basebackup failed')
  })
  return { stream, done, abort }
}
