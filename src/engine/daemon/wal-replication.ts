/**
 * Continuous copying of the WAL archive to the secondaries, as a supervised service:
 * every interval one pass copies what the secondaries lack (replicateWal per
 * secondary, given to the daemon as one function). A failing pass (a secondary
 * unreachable, wrong credentials) is counted as the service's failure and retried at
 * the next tick; it never touches the primary or the archive itself.
 */
import type { Logger } from '../../log.ts'
import type { Clock } from '../clock.ts'
import type { Service } from './facade.ts'
import { supervise, type Reporter, type Running } from './supervisor.ts'

export interface WalReplicationOptions {
  clock: Clock
  log: Logger
  /** One pass over every secondary; rejects when any failed (after trying them all). */
  pass: (signal: AbortSignal) => Promise<unknown>
  intervalMs: number
}

/** The service's name in /metrics and /readyz. */
export const WAL_REPLICATION_SERVICE = 'wal-replication'

/** Runs passes `intervalMs` apart until stopped; stop() aborts a pass in flight and waits for it to unwind. */
function loop(o: WalReplicationOptions, report: Reporter): Running {
  const ac = new AbortController()
  let timer: NodeJS.Timeout | undefined
  let current: Promise<void> = Promise.resolve()
  const tick = (): void => {
    current = o.pass(ac.signal).then(
      () => report.progress(),
      (err: unknown) => {
        if (ac.signal.aborted) return
        report.failure(err)
        o.log.warn({ service: WAL_REPLICATION_SERVICE, err: (err as Error).message }, 'WAL copy to a secondary failed; retrying at the next pass')
      },
    ).then(() => {
      if (!ac.signal.aborted) timer = setTimeout(tick, o.intervalMs)
    })
  }
  tick()
  const halt = () => {
    clearTimeout(timer)
    ac.abort(new Error('the WAL copy is stopping'))
  }
  return {
    // A pass in flight is aborted, not awaited to its end: copies are idempotent, and an aborted put stores nothing.
    stop: async () => {
      halt()
      await current
      clearTimeout(timer)
    },
    abort: halt,
  }
}

/** The supervised WAL-copy service; its status' lagSeconds is the time since the last complete pass. */
export function walReplicationService(o: WalReplicationOptions): Service {
  return supervise({ name: WAL_REPLICATION_SERVICE, clock: o.clock, log: o.log, create: async (report) => loop(o, report) })
}
