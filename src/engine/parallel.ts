/** Bounded parallelism for engine work (copies, reads, checks). */

/**
 * Runs `fn` over `items` with at most `limit` calls at once, in order of the items.
 * After the first failure no new call starts; calls already running are allowed to
 * finish (a copy that completes is not wasted), then the first error is thrown.
 * An aborted `signal` counts as a failure with its reason.
 */
export async function forEachLimit<T>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>, signal?: AbortSignal): Promise<void> {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`parallelism must be a positive integer, got ${limit}`)
  const it = items[Symbol.iterator]()
  let failure: { err: unknown } | undefined
  const worker = async () => {
    for (;;) {
      if (failure) return
      if (signal?.aborted) {
        failure ??= { err: signal.reason }
        return
      }
      const next = it.next()
      if (next.done) return
      try {
        await fn(next.value)
      } catch (err) {
        failure ??= { err }
      }
    }
  }
  await Promise.all(Array.from({ length: limit }, worker))
  if (failure) throw failure.err
}

/** `fn` over `items` with at most `limit` at once; results in the items' order. Fails like forEachLimit. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>, signal?: AbortSignal): Promise<R[]> {
  const out: R[] = new Array(items.length)
  await forEachLimit(items.keys(), limit, async (i) => {
    out[i] = await fn(items[i] as T)
  }, signal)
  return out
}

/**
 * A gate for work that arrives over time (forEachLimit needs the items up front): the
 * returned function runs at most `limit` of the calls given to it at once, the others
 * waiting in order of arrival. A freed slot passes straight to the next waiter.
 */
export function limiter(limit: number): <T>(fn: () => Promise<T>) => Promise<T> {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`parallelism must be a positive integer, got ${limit}`)
  let active = 0
  const waiting: (() => void)[] = []
  return async (fn) => {
    if (active < limit) active++
    else await new Promise<void>((resolve) => waiting.push(resolve))
    try {
      return await fn()
    } finally {
      const next = waiting.shift()
      if (next) next()
      else active--
    }
  }
}
