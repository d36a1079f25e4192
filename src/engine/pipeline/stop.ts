import { TidemarkError } from '../../errors.ts'

/** The error a pipeline fails with when the caller's signal aborts: the reason itself if it is already a TidemarkError. */
export function abortedError(reason: unknown): TidemarkError {
  if (reason instanceof TidemarkError) return reason
  return new TidemarkError('TM_ERR_ABORTED', 'pipeline aborted', { cause: reason })
}

/** One pipeline run's stop switch: the caller's signal trips it, and tripping it stops the source. */
export interface Stopper {
  readonly signal: AbortSignal
  /** Trips the switch with `reason` unless it is already tripped. */
  stop(reason: unknown): void
  /** The error to report for `err`: the reason the switch was tripped for, if it was. */
  failure(err: unknown): Error
  /** Detaches from the caller's signal once the run is over. */
  release(): void
}

/** A Stopper that calls `onStop` once when tripped, by `signal` too when given. */
export function createStopper(onStop: () => void, signal: AbortSignal | undefined): Stopper {
  const controller = new AbortController()
  controller.signal.addEventListener('abort', onStop, { once: true })
  const onAbort = () => controller.abort(abortedError(signal?.reason))
  signal?.addEventListener('abort', onAbort, { once: true })
  if (signal?.aborted) onAbort()
  return {
    signal: controller.signal,
    stop: (reason) => controller.abort(reason),
    failure: (err) => {
      const chosen: unknown = controller.signal.aborted ? controller.signal.reason : err
      return chosen instanceof Error ? chosen : new Error(String(chosen))
    },
    release: () => signal?.removeEventListener('abort', onAbort),
  }
}

/**
 * What tripping does to a stream source. Destroyed without an error: an 'error' event that
 * nobody listens to any more would crash the process; the reason is reported by the Stopper.
 */
export function destroyer(stream: { destroyed: boolean; destroy(): void }): () => void {
  return () => {
    if (!stream.destroyed) stream.destroy()
  }
}
