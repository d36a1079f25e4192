/**
 * Waiting for the signal to stop. The first SIGTERM or SIGINT asks for a clean
 * stop; a second one exits at once (128 + signal number), for when the clean stop
 * hangs.
 */
import type { Logger } from '../log.ts'

const NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const
type StopSignal = keyof typeof NUMBERS

/** A pending wait for SIGTERM/SIGINT. */
export interface StopWaiter {
  /** Resolves with the first stop signal. */
  readonly stopped: Promise<StopSignal>
  /** Removes the handlers and lets the process exit. Idempotent. */
  dispose(): void
}

/** Installs the handlers and keeps the process alive until `dispose`. */
export function waitForStop(log: Logger): StopWaiter {
  let received: StopSignal | undefined
  let resolve!: (s: StopSignal) => void
  const stopped = new Promise<StopSignal>((r) => (resolve = r))
  // Signal handlers alone do not keep the event loop alive.
  const keepAlive = setInterval(() => {}, 1 << 30)
  const onSignal = (sig: StopSignal) => {
    if (received !== undefined) {
      log.warn({ signal: sig }, 'second signal: exiting at once')
      process.exit(128 + NUMBERS[sig])
    }
    received = sig
    resolve(sig)
  }
  const handlers = (Object.keys(NUMBERS) as StopSignal[]).map((sig) => [sig, () => onSignal(sig)] as const)
  for (const [sig, h] of handlers) process.on(sig, h)
  return {
    stopped,
    dispose: () => {
      clearInterval(keepAlive)
      for (const [sig, h] of handlers) process.off(sig, h)
    },
  }
}
