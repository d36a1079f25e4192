interface Slot {
  result: Promise<Buffer>
  settled: boolean
}

/**
 * Runs `work` on each unit with at most `maxInFlight` units between being pulled and being
 * emitted, and emits results in unit order. Units are pulled only when a slot is free, so a slow
 * consumer (a slow `emit`) slows the source down. Finished results at the head are emitted
 * whenever a unit arrives (or the units end), so with a slow source a finished chunk may wait
 * for the next one to be read: a delay, never a stall. On any failure it waits until every started `work` has
 * settled before rethrowing, so no task outlives the call.
 */
export async function orderedMap<U>(
  units: AsyncIterable<U>,
  work: (unit: U) => Promise<Buffer>,
  emit: (result: Buffer) => Promise<void>,
  maxInFlight: number,
): Promise<void> {
  const queue: Slot[] = []
  const emitHead = async () => emit(await queue.shift()!.result)
  try {
    for await (const unit of units) {
      const slot: Slot = { result: work(unit), settled: false }
      slot.result.then(
        () => (slot.settled = true),
        () => (slot.settled = true),
      )
      queue.push(slot)
      while (queue.length >= maxInFlight || queue[0]?.settled) await emitHead()
    }
    while (queue.length > 0) await emitHead()
  } finally {
    await Promise.allSettled(queue.map((slot) => slot.result))
  }
}
