/**
 * The writer lease: one writer per repository at a time. Object stores give us no
 * compare-and-swap, so the protocol is restic's: write our lock object, then list
 * the locks; if a live lock older than ours exists, withdraw ours and refuse. Two
 * writers racing both see each other and the younger one withdraws. A lock lives
 * until its `expiresAt`; the holder rewrites it every ttl/3, and a holder that cannot
 * refresh before expiry aborts its work through `signal` rather than write unlocked.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { TidemarkError } from '../../errors.ts'
import { listAll, type Sink } from '../../sinks/sink.ts'
import type { Clock } from '../clock.ts'
import { LOCK_PREFIX } from './format.ts'
import { readJson } from './json.ts'

export interface LockRecord {
  owner: string
  host: string
  pid: number
  purpose: string
  acquiredAt: string
  expiresAt: string
}

export interface Lease {
  readonly record: LockRecord
  /** Aborted when the lease is lost (could not be refreshed before it expired). */
  readonly signal: AbortSignal
  /** Stops refreshing and deletes the lock. Idempotent. */
  release(): Promise<void>
}

export interface LeaseOptions {
  clock: Clock
  ttlMs: number
  purpose: string
}

function describe(l: LockRecord): string {
  return `${l.purpose} by ${l.host} pid ${l.pid} since ${l.acquiredAt} (expires ${l.expiresAt}, lock ${l.owner})`
}

async function readLocks(sink: Sink): Promise<LockRecord[]> {
  const out: LockRecord[] = []
  for await (const info of listAll(sink, LOCK_PREFIX)) {
    try {
      out.push(await readJson<LockRecord>(sink, info.key))
    } catch (err) {
      // A lock released between list and get is simply gone.
      if (!sink.isNotFound(err)) throw err
    }
  }
  return out
}

const lockKey = (owner: string) => `${LOCK_PREFIX}${owner}.json`
const older = (a: LockRecord, b: LockRecord) => a.acquiredAt < b.acquiredAt || (a.acquiredAt === b.acquiredAt && a.owner < b.owner)

/** The live locks held by others at `now`. */
export async function liveLocks(sink: Sink, now: Date, except?: string): Promise<LockRecord[]> {
  const locks = await readLocks(sink)
  return locks.filter((l) => l.owner !== except && new Date(l.expiresAt).getTime() > now.getTime())
}

/** Takes the writer lease or throws TM_ERR_REPO_LOCKED naming the holder. */
export async function acquireLease(sink: Sink, opts: LeaseOptions): Promise<Lease> {
  const { clock, ttlMs } = opts
  const first = await liveLocks(sink, clock.now())
  if (first.length > 0) throw lockedError(first)

  const now = clock.now()
  const record: LockRecord = {
    owner: `${now.toISOString().replace(/[-:.]/g, '')}-${randomBytes(4).toString('hex')}`,
    host: hostname(),
    pid: process.pid,
    purpose: opts.purpose,
    acquiredAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
  }
  const write = (r: LockRecord) => sink.put(lockKey(r.owner), Buffer.from(JSON.stringify(r, null, 2)))
  await write(record)

  const rivals = (await liveLocks(sink, clock.now(), record.owner)).filter((l) => older(l, record))
  if (rivals.length > 0) {
    await sink.delete([lockKey(record.owner)])
    throw lockedError(rivals)
  }

  const ac = new AbortController()
  let released = false
  let current = record
  const timer = setInterval(() => {
    const next = { ...current, expiresAt: new Date(clock.now().getTime() + ttlMs).toISOString() }
    write(next).then(
      () => {
        current = next
      },
      (err) => {
        if (clock.now().getTime() >= new Date(current.expiresAt).getTime() && !ac.signal.aborted) {
          ac.abort(new TidemarkError('TM_ERR_REPO_LOCKED', `the writer lease expired: it could not be refreshed (${(err as Error).message})`, { cause: err }))
        }
      },
    )
  }, Math.max(50, Math.floor(ttlMs / 3)))
  timer.unref()

  return {
    get record() {
      return current
    },
    signal: ac.signal,
    async release() {
      if (released) return
      released = true
      clearInterval(timer)
      await sink.delete([lockKey(record.owner)])
    },
  }
}

function lockedError(holders: LockRecord[]): TidemarkError {
  const h = holders[0] as LockRecord
  return new TidemarkError(
    'TM_ERR_REPO_LOCKED',
    `the repository is locked by another writer: ${describe(h)}; wait for it to finish, or remove the lock object ${lockKey(h.owner)} if that process is gone`,
    { details: { holder: h } },
  )
}
