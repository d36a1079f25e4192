/**
 * Supervises `pg_receivewal`, which streams WAL from the server into a local directory
 * through a physical replication slot. The supervisor restarts it with exponential
 * backoff whenever it exits, logs why (exit status and the tail of its stderr), and
 * reports each completed segment and timeline history file as it appears. It uploads
 * nothing: the consumer takes the reported files, stores them, then calls `remove`.
 *
 * Choices:
 * - `-n` (no loop): pg_receivewal exits on a lost connection instead of retrying
 *   silently, so every interruption is logged and backed off here.
 * - `--synchronous`: received WAL is flushed at once and the flush position reported
 *   back, so the local `.partial` file is durable as soon as it is read for upload and
 *   the server's view of the archive's progress (pg_stat_replication) is current.
 * - The slot is created (if missing) before every start, with RESERVE_WAL: it holds
 *   WAL from the moment it exists, so everything after `start()` resolves is archived
 *   even if pg_receivewal connects later (`pg_receivewal --create-slot` does not
 *   reserve, and an unreserved slot makes pg_receivewal begin at the server's current
 *   position). A slot dropped by an operator is recreated; WAL already gone then shows
 *   up as a gap in the archive, never silently.
 * - pg_receivewal resumes from the newest file in the directory, else from the slot's
 *   restart point rounded down to its segment. A segment already stored and removed may
 *   therefore be streamed and reported again: storing by name must be idempotent.
 * - pg_receivewal reports its start position as flushed before the server can refuse
 *   it, so a start at removed WAL can move the slot back onto removed WAL; the archiver
 *   then drops the slot (`dropSlot`) and the next start creates it from WAL that exists.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { TidemarkError } from '../../errors.ts'
import { silentLogger, toolConnection, type PgLogger } from './conn.ts'
import { describeExit, tail } from './pg-errors.ts'
import { psqlReplication } from './psql.ts'
import { WalDir, type PartialSegment, type WalFileEvent } from './wal-dir.ts'

export type { PartialSegment, WalFileEvent } from './wal-dir.ts'
export { walOrder } from './wal-dir.ts'

/** How to run and supervise pg_receivewal. */
export interface ReceiveWalOptions {
  /** Connection URL of a role with REPLICATION. */
  url: string
  /** Local directory pg_receivewal writes into (created if missing). */
  dir: string
  slot: string
  /** Path of pg_receivewal (see tools.ts). */
  pgReceivewal: string
  /** Path of psql, which creates the slot (default: psql on PATH). */
  psqlPath?: string
  /** The server's wal_segment_size in bytes. */
  segSize: number
  logger?: PgLogger
  minBackoffMs?: number
  maxBackoffMs?: number
  /** A run at least this long resets the backoff. */
  stableMs?: number
  /** Directory rescan interval; file system events trigger scans in between. */
  pollMs?: number
  now?: () => number
}

/** Why pg_receivewal stopped and when it will be started again. */
export interface ReceiveWalExit {
  code: number | null
  signal: NodeJS.Signals | null
  stderr: string
  ranForMs: number
  restartInMs: number
}

/** Throws TM_ERR_CONFIG_INVALID unless `name` is a valid replication slot name (PostgreSQL's own rule). */
export function validateSlotName(name: string): string {
  if (!/^[a-z0-9_]{1,63}$/.test(name)) {
    throw new TidemarkError('TM_ERR_CONFIG_INVALID', `replication slot name "${name}" is invalid: use 1-63 lower-case letters, digits and underscores`)
  }
  return name
}

/** Delay before restart number `failures` (1-based): min, doubling, capped at max. */
export function restartDelay(failures: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.max(0, failures - 1))
}

/**
 * The supervisor. Events: `file` (WalFileEvent), `spawn` (pid), `exit` (ReceiveWalExit).
 * `start` and `stop` are idempotent; after `stop` it cannot be started again.
 */
export class ReceiveWal extends EventEmitter {
  readonly #o: Required<Omit<ReceiveWalOptions, 'logger' | 'psqlPath'>> & { logger: PgLogger; psqlPath: string | undefined }
  readonly #dir: WalDir
  #child: ChildProcess | undefined
  #childClosed: Promise<void> = Promise.resolve()
  #timer: NodeJS.Timeout | undefined
  #failures = 0
  #restarts = 0
  #state: 'new' | 'running' | 'stopping' | 'stopped' = 'new'
  #stopped: Promise<void> | undefined

  constructor(opts: ReceiveWalOptions) {
    super()
    validateSlotName(opts.slot)
    this.#o = { minBackoffMs: 1000, maxBackoffMs: 60_000, stableMs: 30_000, pollMs: 500, now: Date.now, ...opts, psqlPath: opts.psqlPath, logger: opts.logger ?? silentLogger }
    this.#dir = new WalDir(opts.dir, opts.segSize, this.#o.logger)
    this.#dir.on('file', (e: WalFileEvent) => this.emit('file', e))
  }

  /** The pid of the running pg_receivewal, if any. */
  get pid(): number | undefined {
    return this.#child?.exitCode === null && this.#child.signalCode === null ? this.#child.pid : undefined
  }

  /** How many times pg_receivewal has been started again after exiting. */
  get restarts(): number {
    return this.#restarts
  }

  /** Creates the directory, reports files already in it, then starts pg_receivewal. */
  async start(): Promise<void> {
    if (this.#state !== 'new') return
    this.#state = 'running'
    await this.#dir.open(this.#o.pollMs)
    await this.#launch()
  }

  /** Stops pg_receivewal (SIGINT, its clean stop), reports what completed, and ends the `files()` iterator. */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop()
    return this.#stopped
  }

  async #stop(): Promise<void> {
    this.#state = 'stopping'
    clearTimeout(this.#timer)
    const child = this.#child
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT')
      const force = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await this.#childClosed
      clearTimeout(force)
    }
    await this.#dir.close()
    this.#state = 'stopped'
  }

  /** Every completed file, in the order found, from construction until stop (one consumer). */
  files(): AsyncIterableIterator<WalFileEvent> {
    return this.#dir.files()
  }

  /** Deletes a stored file from the directory. Idempotent. Refuses names that are not segments or history files. */
  remove(name: string): Promise<void> {
    return this.#dir.remove(name)
  }

  /** The newest `.partial` segment and its current bytes, or undefined when there is none. */
  currentPartial(): Promise<PartialSegment | undefined> {
    return this.#dir.currentPartial()
  }

  /**
   * Drops the slot so that the next start creates it again with RESERVE_WAL, i.e. from WAL
   * the server still has. Only for a slot that points at removed WAL (pg_receivewal moves
   * a slot back to where it asks to start, even when the server then refuses that WAL).
   * Returns false when the slot is in use (pg_receivewal running again) or already gone.
   */
  async dropSlot(): Promise<boolean> {
    try {
      await psqlReplication(this.#o.url, [`DROP_REPLICATION_SLOT "${this.#o.slot}"`], { psqlPath: this.#o.psqlPath, timeoutMs: 60_000 })
      return true
    } catch (err) {
      if (/replication slot ".*" (is active|does not exist)/.test((err as Error).message)) return false
      throw err
    }
  }

  async #ensureSlot(): Promise<void> {
    try {
      await psqlReplication(this.#o.url, [`CREATE_REPLICATION_SLOT "${this.#o.slot}" PHYSICAL RESERVE_WAL`], { psqlPath: this.#o.psqlPath, timeoutMs: 60_000 })
      this.#o.logger.info({ slot: this.#o.slot }, 'replication slot created')
    } catch (err) {
      if (!/replication slot ".*" already exists/.test((err as Error).message)) throw err
    }
  }

  async #launch(): Promise<void> {
    if (this.#state !== 'running') return
    const conn = toolConnection(this.#o.url)
    const startedAt = this.#o.now()
    try {
      await this.#ensureSlot()
    } catch (err) {
      const e = err as TidemarkError
      this.#scheduleRestart({ code: null, signal: null, stderr: e.message, ranForMs: 0 }, startedAt)
      return
    }
    if (this.#state !== 'running') return
    const args = ['-D', this.#o.dir, '--slot', this.#o.slot, '-n', '--synchronous', '-v', '-w', '-d', conn.connString]
    const child = spawn(this.#o.pgReceivewal, args, { env: { ...process.env, ...conn.env }, stdio: ['ignore', 'ignore', 'pipe'] })
    this.#child = child
    let stderr = ''
    child.stderr.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-16_384)
    })
    child.once('error', (err) => this.#o.logger.error({ err }, 'pg_receivewal could not be started'))
    this.#childClosed = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        resolve()
        // The segment completed right before the exit is reported without waiting for a poll.
        void this.#dir.scan()
        if (this.#state === 'running') this.#scheduleRestart({ code, signal, stderr: tail(stderr), ranForMs: this.#o.now() - startedAt }, startedAt)
      })
    })
    if (child.pid !== undefined) {
      this.#o.logger.info({ pid: child.pid, slot: this.#o.slot }, 'pg_receivewal started')
      this.emit('spawn', child.pid)
    }
  }

  #scheduleRestart(exit: Omit<ReceiveWalExit, 'restartInMs'>, startedAt: number): void {
    if (this.#state !== 'running') return
    this.#failures = this.#o.now() - startedAt >= this.#o.stableMs ? 1 : this.#failures + 1
    const restartInMs = restartDelay(this.#failures, this.#o.minBackoffMs, this.#o.maxBackoffMs)
    const info: ReceiveWalExit = { ...exit, restartInMs }
    this.#o.logger.warn({ status: describeExit(exit.code, exit.signal), stderr: exit.stderr, ranForMs: exit.ranForMs, restartInMs }, 'pg_receivewal stopped; restarting')
    this.emit('exit', info)
    this.#timer = setTimeout(() => {
      this.#restarts++
      void this.#launch()
    }, restartInMs)
  }
}
