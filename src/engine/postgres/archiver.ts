/**
 * The continuous WAL archive: pg_receivewal (supervised by ReceiveWal) streams into a
 * local directory; each completed segment and history file is stored in the
 * repository (WalStore), then removed locally. Every interval a tick commits a
 * heartbeat on the server, waits briefly for the archive to receive it, uploads the
 * open `.partial` segment with the coverage the replication slot proves, and records
 * the heartbeat: so the achieved RPO is about one interval.
 *
 * Failures to store are retried with backoff, in order, and never skipped: the local
 * file stays until it is stored. A segment that arrives with earlier ones missing
 * from the repository is a gap: reported (log and `gap` event), never papered over.
 * The WAL directory is claimed for the cluster, and a segment whose header names
 * another cluster is set aside (`.foreign`), never archived under this one.
 *
 * The archiver takes no writer lease: it only adds content-named objects and rewrites
 * its own partial/heartbeat records, and prune never sweeps the WAL prefix as
 * unreferenced (FORMAT.md rule 7).
 */
import { EventEmitter } from 'node:events'
import { access, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Repository } from '../repository/index.ts'
import { partialCoverage } from './archive-rules.ts'
import { silentLogger, type PgLogger } from './conn.ts'
import { addHeartbeat, type Heartbeat } from './heartbeats.ts'
import { ReceiveWal, type ReceiveWalExit, type ReceiveWalOptions, type WalFileEvent } from './receivewal.ts'
import { commitHeartbeat, slotFlushLsn, type SqlTarget } from './server-probe.ts'
import { GapWatch } from './gap-watch.ts'
import { claimWalDir, fileSystemId, setAside } from './wal-dir-guard.ts'
import type { PartialRecord } from './wal-format.ts'
import { walDataEnd } from './wal-page.ts'
import { WalStore } from './wal-store.ts'
import { classifyWalName, formatLsn, parseLsn, segmentStartLsn, type Gap } from './wal.ts'

/** How to run the archive. */
export interface WalArchiverOptions {
  repo: Repository
  /** The cluster's system identifier (IDENTIFY_SYSTEM), which names its part of the archive. */
  systemId: string
  segSize: number
  /** A role with REPLICATION, for pg_receivewal. */
  replicationUrl: string
  /** Any role on the same server, for the heartbeat and the slot's position. */
  sqlUrl: string
  dir: string
  slot: string
  pgReceivewal: string
  psqlPath?: string
  /** Between ticks (partial upload and heartbeat). */
  intervalMs: number
  /** Commit a heartbeat every tick (default true); without it no time after a backup is provable. */
  heartbeat?: boolean
  logger?: PgLogger
  /** First delay before a failed store is retried (doubling, at most 30 s). */
  retryMs?: number
  /** pg_receivewal supervision tuning. */
  receive?: Partial<Pick<ReceiveWalOptions, 'minBackoffMs' | 'maxBackoffMs' | 'stableMs' | 'pollMs'>>
}

/** Counters for logs and tests. */
export interface ArchiverStats {
  stored: number
  reused: number
  partialUploads: number
  heartbeats: number
  gaps: Gap[]
  failures: number
}

// pg_receivewal resumes from the newest file in its directory; once the server has removed that WAL it fails so for ever.
const WAL_REMOVED = /requested WAL segment (\S+) has already been removed/

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true })
  })

/** Events: `stored` ({name, type, reused}), `partial` (PartialRecord), `heartbeat` (Heartbeat & {timeline}), `gap` (Gap), `failure` (Error). */
export class WalArchiver extends EventEmitter {
  readonly stats: ArchiverStats = { stored: 0, reused: 0, partialUploads: 0, heartbeats: 0, gaps: [], failures: 0 }
  readonly #o: WalArchiverOptions
  readonly #log: PgLogger
  readonly #store: WalStore
  readonly #sup: ReceiveWal
  readonly #sql: SqlTarget
  readonly #halt = new AbortController()
  readonly #points = new Map<number, Heartbeat[]>()
  readonly #gaps: GapWatch
  #partial: PartialRecord | undefined | null = null
  #serverTimeline: number | undefined
  #state: 'new' | 'running' | 'stopping' | 'stopped' = 'new'
  #consumer: Promise<void> = Promise.resolve()
  #ticking: Promise<void> = Promise.resolve()
  #timer: NodeJS.Timeout | undefined
  #stopped: Promise<void> | undefined
  #settingAside: Promise<void> | undefined
  #setAsideAgain = false
  #removedSegment = ''

  constructor(opts: WalArchiverOptions) {
    super()
    this.#o = opts
    this.#log = opts.logger ?? silentLogger
    this.#store = new WalStore(opts.repo, opts.systemId)
    this.#gaps = new GapWatch(this.#store, opts.segSize)
    this.#sql = { url: opts.sqlUrl, psqlPath: opts.psqlPath }
    this.#sup = new ReceiveWal({
      url: opts.replicationUrl, dir: opts.dir, slot: opts.slot, pgReceivewal: opts.pgReceivewal, psqlPath: opts.psqlPath, segSize: opts.segSize, logger: this.#log, ...opts.receive,
    })
    this.#sup.on('exit', (e: ReceiveWalExit) => {
      const removed = WAL_REMOVED.exec(e.stderr)?.[1]
      if (removed === undefined) return
      this.#removedSegment = removed
      // Exits while a set-aside runs are not lost: it runs once more afterwards.
      this.#setAsideAgain = this.#settingAside !== undefined
      this.#settingAside ??= this.#setAsideLoop().finally(() => (this.#settingAside = undefined))
    })
  }

  /** The running pg_receivewal's pid (for tests that kill it). */
  get receiverPid(): number | undefined {
    return this.#sup.pid
  }

  /** How many times pg_receivewal was restarted. */
  get receiverRestarts(): number {
    return this.#sup.restarts
  }

  /** Starts pg_receivewal, the store loop and the ticks. Idempotent. */
  async start(): Promise<void> {
    if (this.#state !== 'new') return
    await claimWalDir(this.#o.dir, this.#o.systemId)
    this.#state = 'running'
    await this.#sup.start()
    this.#consumer = this.#consume()
    this.#schedule(Math.min(this.#o.intervalMs, 1000))
    this.#log.info({ systemId: this.#o.systemId, slot: this.#o.slot, dir: this.#o.dir, intervalMs: this.#o.intervalMs }, 'WAL archive started')
  }

  /**
   * Stops cleanly: a last heartbeat is committed and received, pg_receivewal stops,
   * every completed file is stored, and the open segment is uploaded a last time.
   * Idempotent; resolves when done.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop()
    return this.#stopped
  }

  /** Stops without the last uploads (a second signal): pending stores are abandoned, local files stay for the next start. */
  abort(): void {
    this.#halt.abort()
    void this.stop()
  }

  async #stop(): Promise<void> {
    if (this.#state === 'new') {
      this.#state = 'stopped'
      return
    }
    this.#state = 'stopping'
    clearTimeout(this.#timer)
    await this.#ticking
    const hb = this.#halt.signal.aborted ? undefined : await this.#heartbeat()
    if (hb) await this.#awaitFlush(hb.lsn, 5000)
    await this.#sup.stop()
    await this.#consumer
    if (!this.#halt.signal.aborted) {
      await this.#uploadPartial().catch((err) => this.#failed(err, 'the last upload of the open segment failed'))
      if (hb) await this.#recordHeartbeat(hb).catch((err) => this.#failed(err, 'recording the last heartbeat failed'))
    }
    this.#state = 'stopped'
    this.#log.info({ ...this.stats, gaps: this.stats.gaps.length }, 'WAL archive stopped')
  }

  #failed(err: unknown, msg: string): void {
    this.stats.failures++
    this.#log.warn({ err }, msg)
    this.emit('failure', err)
  }

  #schedule(ms: number): void {
    if (this.#state !== 'running') return
    this.#timer = setTimeout(() => {
      this.#ticking = this.#tick().finally(() => this.#schedule(this.#o.intervalMs))
    }, ms)
  }

  async #tick(): Promise<void> {
    const hb = await this.#heartbeat()
    if (hb) await this.#awaitFlush(hb.lsn, Math.min(2000, this.#o.intervalMs / 2))
    try {
      await this.#uploadPartial()
      if (hb) await this.#recordHeartbeat(hb)
    } catch (err) {
      this.#failed(err, 'uploading the open segment failed; retrying at the next tick')
    }
  }

  async #setAsideLoop(): Promise<void> {
    do {
      this.#setAsideAgain = false
      await this.#setAsideStale()
        .then(() => this.#resetSlotIfBehind(this.#removedSegment))
        .catch((err) => this.#failed(err, 'setting aside the WAL the server no longer has failed; retrying at the next exit'))
    } while (this.#setAsideAgain && this.#state === 'running')
  }

  /**
   * The server removed WAL the archive never received (its slot was dropped while the
   * archive was down), and pg_receivewal asks for it again and again because it resumes
   * from the newest file in its directory. Everything that points it there is moved out
   * of the way, so it starts again from the slot: the open segment is uploaded as far as
   * it holds WAL, then renamed `<name>.stale`; completed segments already stored are
   * removed (those not stored yet are left to the store loop, which removes them once
   * stored). The lost WAL is reported as a gap when the next segment is stored.
   */
  async #setAsideStale(): Promise<void> {
    const open = await this.#sup.currentPartial()
    if (open) {
      await this.#uploadPartial().catch((err) => this.#failed(err, 'uploading the stale open segment failed'))
      await setAside(join(this.#o.dir, open.name), 'stale').catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err
      })
      this.#log.error({ name: open.name }, `the server no longer has the WAL after ${open.name}: the archive missed it (was its replication slot dropped?). The local file is kept as ${open.name}.stale; archiving resumes from the slot's position, with a gap`)
    }
    const names = await readdir(this.#o.dir)
    const completed = names.map((n) => classifyWalName(n, this.#o.segSize)).filter((c) => c?.kind === 'segment')
    const removed: string[] = []
    for (const c of completed) {
      if (!(await this.#store.has(c.name))) continue
      await this.#sup.remove(c.name)
      removed.push(c.name)
    }
    if (removed.length > 0) this.#log.warn({ removed }, 'the server no longer has the WAL after these stored segments; their local copies were removed so that pg_receivewal starts from the slot')
    if (!open && removed.length === 0) this.#log.warn({ files: names }, 'pg_receivewal asks for WAL the server has removed, and nothing in the WAL directory points it there (completed segments not stored yet are waited for); the slot is checked next')
  }

  /**
   * pg_receivewal reports its start position as flushed before the server refuses it,
   * and the server moves the slot back there: from then on the slot itself points at
   * removed WAL. Such a slot is dropped; the next start creates it again from WAL the
   * server has. A slot still pointing at WAL the server has is left alone.
   */
  async #resetSlotIfBehind(removed: string): Promise<void> {
    const seg = classifyWalName(removed, this.#o.segSize)
    if (seg?.kind !== 'segment') return
    const slotLsn = await slotFlushLsn(this.#sql, this.#o.slot)
    if (slotLsn === undefined || slotLsn >= segmentStartLsn(seg.segno + 1n, this.#o.segSize)) return
    if (await this.#sup.dropSlot()) this.#log.error({ slot: this.#o.slot, slotLsn: formatLsn(slotLsn), removed }, 'the replication slot points at WAL the server has removed; it was dropped and is created again from WAL the server still has')
  }

  async #heartbeat(): Promise<(Heartbeat & { timeline: number }) | undefined> {
    if (this.#o.heartbeat === false) return undefined
    try {
      const hb = await commitHeartbeat(this.#sql)
      this.#serverTimeline = hb.timeline
      return hb
    } catch (err) {
      this.#failed(err, 'the heartbeat failed (the server may be down, read-only, or refuse SQL to this role); times after the last heartbeat cannot be proven restorable')
      return undefined
    }
  }

  /** Polls the slot until the archive has flushed `lsn` or `ms` pass. */
  async #awaitFlush(lsn: bigint, ms: number): Promise<void> {
    const deadline = Date.now() + ms
    while (Date.now() < deadline && !this.#halt.signal.aborted) {
      const f = await slotFlushLsn(this.#sql, this.#o.slot).catch(() => undefined)
      if (f !== undefined && f >= lsn) return
      await sleep(50, this.#halt.signal)
    }
  }

  async #uploadPartial(): Promise<void> {
    const flushed = await slotFlushLsn(this.#sql, this.#o.slot).catch(() => undefined)
    const open = await this.#sup.currentPartial()
    if (!open) return
    if (this.#partial === null || this.#partial?.timeline !== open.timeline) this.#partial = await this.#store.partialRecord(open.timeline)
    const previous = this.#partial?.segment === open.segmentName ? parseLsn(this.#partial.coversLsn) : undefined
    const held = walDataEnd(open.data, segmentStartLsn(open.segno, this.#o.segSize))
    const coversLsn = partialCoverage(open, this.#o.segSize, flushed, this.#serverTimeline, previous, held)
    const { record, uploaded } = await this.#store.storePartial({ timeline: open.timeline, segment: open.segmentName, data: open.data, coversLsn })
    this.#partial = record
    if (uploaded) {
      this.stats.partialUploads++
      this.#log.debug({ segment: record.segment, coversLsn: record.coversLsn }, 'open segment uploaded')
      this.emit('partial', record)
    }
  }

  async #recordHeartbeat(hb: Heartbeat & { timeline: number }): Promise<void> {
    const points = this.#points.get(hb.timeline) ?? (await this.#store.heartbeats(hb.timeline))
    const next = addHeartbeat(points, { us: hb.us, lsn: hb.lsn }, this.#o.segSize)
    await this.#store.writeHeartbeats(hb.timeline, next)
    this.#points.set(hb.timeline, next)
    this.stats.heartbeats++
    this.emit('heartbeat', hb)
  }

  async #consume(): Promise<void> {
    for await (const f of this.#sup.files()) {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#storeOne(f)
          break
        } catch (err) {
          this.#failed(err, `storing ${f.name} failed (attempt ${attempt}); it stays in the WAL directory and is retried`)
          if (this.#halt.signal.aborted || (this.#state !== 'running' && attempt >= 3)) {
            this.#log.error({ name: f.name }, `${f.name} was not stored; it is stored when the archive next starts`)
            break
          }
          await sleep(Math.min(30_000, (this.#o.retryMs ?? 1000) * 2 ** (attempt - 1)), this.#halt.signal)
        }
      }
      if (this.#halt.signal.aborted) return
    }
  }

  async #storeOne(f: WalFileEvent): Promise<void> {
    const exists = await access(f.path).then(() => true, () => false)
    if (!exists) {
      this.#log.warn({ name: f.name }, 'a WAL file vanished from the WAL directory before it was stored')
      return
    }
    const seg = f.type === 'segment' ? classifyWalName(f.name, this.#o.segSize) : undefined
    if (seg?.kind === 'segment') {
      const owner = await fileSystemId(f.path, segmentStartLsn(seg.segno, this.#o.segSize))
      if (owner !== this.#o.systemId) {
        await setAside(f.path, 'foreign')
        this.#log.error({ name: f.name, found: owner ?? 'no valid header' }, `${f.name} in the WAL directory is not WAL of cluster ${this.#o.systemId}; it was set aside as ${f.name}.foreign and not archived`)
        return
      }
      const gap = await this.#gaps.check(seg.timeline, seg.segno)
      if (gap) this.#reportGap(gap, f.name)
    }
    const { reused } = await this.#store.storeFile(f.name, f.path, this.#halt.signal)
    await this.#sup.remove(f.name)
    if (seg?.kind === 'segment') this.#gaps.stored(seg.timeline, seg.segno)
    if (reused) this.stats.reused++
    else this.stats.stored++
    this.#log.debug({ name: f.name, reused }, 'WAL file stored')
    this.emit('stored', { name: f.name, type: f.type, reused })
  }

  #reportGap(gap: Gap, next: string): void {
    this.stats.gaps.push(gap)
    this.#log.error({ from: gap.from, to: gap.to, count: Number(gap.count), next }, 'gap in the WAL archive: these segments were never received (WAL removed before it was streamed, e.g. the replication slot was dropped); restores cannot cross it until a new base backup is taken after it')
    this.emit('gap', gap)
  }
}
