/**
 * The writer lease: one writer per repository at a time. Object stores give us no
 * compare-and-swap, so the protocol is restic's: write our lock object, then list
 * the locks, and hold the lease only when ours is the one live lock.
 *
 * Writers that race see each other. One with an older lock in view withdraws and
 * refuses. One with only younger locks in view keeps its lock and waits for them to
 * go, because their writers see ours as older and withdraw. It must not take the
 * lease while they are there: "younger" compares timestamps taken before the writes,
 * and a writer whose clock read later may still have written first, listed before
 * our write and won. If a younger lock stays for `contentionWaitMs`, we withdraw and
 * refuse too. Mutual exclusion holds in every interleaving (a winner's listing ran
 * after its write and saw no other lock; any later writer's listing sees the
 * winner's). Only liveness rests on timing: racers may all refuse.
 *
 * A lock lives until its `expiresAt`; the holder rewrites it every ttl/3, and a
 * holder that cannot refresh before expiry aborts its work through `signal` rather
 * than write unlocked.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
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
  /** How long a writer waits for younger racing locks to withdraw. Default: the smaller of 5 s and ttl/3. */
  contentionWaitMs?: number
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

  const rivals = await awaitRivals(sink, record, clock, opts.contentionWaitMs ?? Math.min(5000, ttlMs / 3))
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

/**
 * Lists the other live locks after ours is written until none is left (returns [])
 * or one that must make us withdraw is found: an older lock at once, a younger one
 * once `waitMs` has passed.
 */
async function awaitRivals(sink: Sink, ours: LockRecord, clock: Clock, waitMs: number): Promise<LockRecord[]> {
  const deadline = performance.now() + waitMs
  for (;;) {
    const others = await liveLocks(sink, clock.now(), ours.owner)
    if (others.length === 0) return []
    const elder = others.filter((l) => older(l, ours))
    if (elder.length > 0) return elder
    if (performance.now() >= deadline) return others
    await delay(20 + Math.random() * 60)
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
