/**
 * Supervision of a long-running service (the WAL archive): start it, and when the
 * start fails (server unreachable, preflight refused) retry with exponential backoff
 * until it runs or the daemon stops. Once running, the service keeps itself alive
 * (the archiver restarts pg_receivewal itself); the supervisor records its failures
 * and the last time it proved progress, for /metrics and /readyz.
 */
import { asTidemarkError } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import type { Clock } from '../clock.ts'
import type { Service, ServiceStatus } from './facade.ts'

/** A started instance: how to stop it, and its events. */
export interface Running {
  stop(): Promise<void>
  abort(): void
}

/** Hooks the instance calls: progress proven (heartbeat, upload) and failures. */
export interface Reporter {
  progress(): void
  failure(err: unknown): void
}

export interface SuperviseOptions {
  name: string
  clock: Clock
  log: Logger
  /** Starts one instance; rejects when it cannot start. */
  create(report: Reporter): Promise<Running>
  minBackoffMs?: number
  maxBackoffMs?: number
}

/** The delay before retry number `n` (1-based): doubling from min, capped at max (pure). */
export function backoffDelay(n: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.max(0, n - 1))
}

/** A supervised service; `start` returns at once, retries run in the background. */
export function supervise(o: SuperviseOptions): Service {
  const min = o.minBackoffMs ?? 1000
  const max = o.maxBackoffMs ?? 60_000
  const status: ServiceStatus = { state: 'stopped', restarts: 0, failures: 0 }
  let lastProgress: number | undefined
  let running: Running | undefined
  let halted = false
  let timer: NodeJS.Timeout | undefined
  let attempt = 0
  let starting: Promise<void> = Promise.resolve()

  const reporter: Reporter = {
    progress: () => (lastProgress = o.clock.now().getTime()),
    failure: (err) => {
      status.failures++
      const e = asTidemarkError(err)
      status.lastError = { code: e.code, message: e.message }
    },
  }

  const tryStart = async (): Promise<void> => {
    status.state = attempt === 0 ? 'starting' : 'retrying'
    try {
      const r = await o.create(reporter)
      if (halted) return void (await r.stop())
      running = r
      status.state = 'running'
      delete status.lastError
      o.log.info({ service: o.name, attempt }, `${o.name} running`)
    } catch (err) {
      reporter.failure(err)
      attempt++
      status.restarts = attempt
      const delay = backoffDelay(attempt, min, max)
      o.log.warn({ service: o.name, err: status.lastError, retryInMs: delay }, `${o.name} could not start; retrying`)
      if (halted) return
      status.state = 'retrying'
      timer = setTimeout(() => (starting = tryStart()), delay)
    }
  }

  return {
    name: o.name,
    start: () => {
      if (status.state !== 'stopped' || halted) return
      starting = tryStart()
    },
    stop: async () => {
      halted = true
      clearTimeout(timer)
      await starting
      await running?.stop()
      running = undefined
      status.state = 'stopped'
    },
    abort: () => {
      halted = true
      clearTimeout(timer)
      running?.abort()
      status.state = 'stopped'
    },
    status: () => ({ ...status, ...(lastProgress === undefined ? {} : { lagSeconds: Math.max(0, (o.clock.now().getTime() - lastProgress) / 1000) }) }),
  }
}
