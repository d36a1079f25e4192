/**
 * The directory pg_receivewal writes into, seen from the archive's side: which
 * completed segments and history files are there to be stored (each reported once
 * while it stays; again if it comes back after removal), the `.partial` segment being
 * written, and removal of stored files. Found by file system events plus polling.
 */
import { EventEmitter } from 'node:events'
import { watch, type FSWatcher } from 'node:fs'
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { TidemarkError } from '../../errors.ts'
import { AsyncQueue } from './async-queue.ts'
import type { PgLogger } from './conn.ts'
import { classifyWalName, type WalName } from './wal.ts'

/** A completed segment or history file in the directory, ready to be stored. */
export interface WalFileEvent {
  type: 'segment' | 'history'
  name: string
  path: string
}

/** The segment pg_receivewal is writing: full segment size, zero past the received WAL. */
export interface PartialSegment {
  name: string
  segmentName: string
  timeline: number
  segno: bigint
  data: Buffer
}

/** Orders history files before segments, then by timeline and segment number, as they must be stored. */
export function walOrder(a: WalName, b: WalName): number {
  if (a.kind === 'history' || b.kind === 'history') return a.kind === b.kind ? a.timeline - b.timeline : a.kind === 'history' ? -1 : 1
  if (a.timeline !== b.timeline) return a.timeline - b.timeline
  const sa = (a as { segno: bigint }).segno
  const sb = (b as { segno: bigint }).segno
  return sa < sb ? -1 : sa > sb ? 1 : 0
}

/** Watches one WAL directory. Emits `file` (WalFileEvent); `files()` yields the same events to one consumer. */
export class WalDir extends EventEmitter {
  readonly dir: string
  readonly #segSize: number
  readonly #logger: PgLogger
  readonly #queue = new AsyncQueue<WalFileEvent>()
  readonly #reported = new Set<string>()
  /** Listings started so far; a removal remembers the count, so a listing begun before it cannot bring the name back. */
  #listings = 0
  readonly #removedAt = new Map<string, number>()
  #poll: NodeJS.Timeout | undefined
  #watcher: FSWatcher | undefined
  #scanning: Promise<void> | undefined
  #rescan = false

  constructor(dir: string, segSize: number, logger: PgLogger) {
    super()
    this.dir = dir
    this.#segSize = segSize
    this.#logger = logger
  }

  /** Creates the directory, reports what is already there, and starts watching. */
  async open(pollMs: number): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    await this.scan()
    this.#watcher = watch(this.dir, () => void this.scan())
    this.#watcher.on('error', (err) => this.#logger.warn({ err }, 'watching the WAL directory failed; polling continues'))
    this.#poll = setInterval(() => void this.scan(), pollMs)
  }

  /** A last scan, then the end of `files()`. */
  async close(): Promise<void> {
    clearInterval(this.#poll)
    this.#watcher?.close()
    await this.scan()
    this.#queue.end()
  }

  /** Every completed file, in the order found, from construction until close (one consumer). */
  files(): AsyncIterableIterator<WalFileEvent> {
    return this.#queue[Symbol.asyncIterator]()
  }

  /** Deletes a stored file. Idempotent. Refuses names that are not segments or history files. */
  async remove(name: string): Promise<void> {
    const c = classifyWalName(name, this.#segSize)
    if (c?.kind !== 'segment' && c?.kind !== 'history') throw new TidemarkError('TM_ERR_POSTGRES_WAL_NAME', `"${name}" is not a completed WAL file`)
    await unlink(join(this.dir, name)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err
    })
    // A scan whose listing began before the unlink may still hold the name: it must not report it again.
    this.#removedAt.set(name, this.#listings)
    this.#reported.delete(name)
  }

  /** The newest `.partial` segment and its current bytes, or undefined when there is none. */
  async currentPartial(): Promise<PartialSegment | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const newest = (await readdir(this.dir))
        .map((n) => classifyWalName(n, this.#segSize))
        .filter((c): c is Extract<WalName, { kind: 'partial' }> => c?.kind === 'partial')
        .sort(walOrder)
        .at(-1)
      if (!newest) return undefined
      try {
        const data = await readFile(join(this.dir, newest.name))
        return { name: newest.name, segmentName: newest.segmentName, timeline: newest.timeline, segno: newest.segno, data }
      } catch (err) {
        // Completed and renamed between listing and reading: look again.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      }
    }
    return undefined
  }

  /** Rescans and reports new completed files. Scans never overlap; a request during a scan runs another after it. */
  async scan(): Promise<void> {
    if (this.#scanning) {
      this.#rescan = true
      return await this.#scanning
    }
    this.#scanning = this.#scanOnce().finally(() => {
      this.#scanning = undefined
      if (this.#rescan) {
        this.#rescan = false
        void this.scan()
      }
    })
    return await this.#scanning
  }

  async #scanOnce(): Promise<void> {
    let names: string[]
    const listing = ++this.#listings
    try {
      names = await readdir(this.dir)
    } catch (err) {
      this.#logger.warn({ err }, 'reading the WAL directory failed')
      return
    }
    const present = new Set(names)
    // A name that disappeared (stored and removed) is reported again if it comes back.
    for (const n of this.#reported) if (!present.has(n)) this.#reported.delete(n)
    const stale = (name: string) => {
      const removed = this.#removedAt.get(name)
      if (removed === undefined) return false
      if (removed >= listing) return true
      // This listing began after the removal: a file of that name now is a new one.
      this.#removedAt.delete(name)
      return false
    }
    for (const n of this.#removedAt.keys()) if (!present.has(n)) stale(n)
    const found = names
      .map((n) => classifyWalName(n, this.#segSize))
      .filter((c): c is Extract<WalName, { kind: 'segment' | 'history' }> => c !== undefined && c.kind !== 'partial' && !this.#reported.has(c.name) && !stale(c.name))
      .sort(walOrder)
    for (const c of found) {
      this.#reported.add(c.name)
      const event: WalFileEvent = { type: c.kind, name: c.name, path: join(this.dir, c.name) }
      this.#queue.push(event)
      this.emit('file', event)
    }
  }
}
