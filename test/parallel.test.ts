import t from 'tap'
import { limiter } from '../src/engine/parallel.ts'

/** A promise and the function that resolves it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open = () => {}
  const wait = new Promise<void>((resolve) => (open = resolve))
  return { wait, open }
}

t.test('limiter: at most `limit` calls at once, the others started in order of arrival as slots free', async (t) => {
  const limit = limiter(2)
  let running = 0
  let most = 0
  const started: number[] = []
  const gates = Array.from({ length: 5 }, gate)
  const calls = gates.map((g, i) => limit(async () => {
    started.push(i)
    most = Math.max(most, ++running)
    await g.wait
    running--
    return i * 10
  }))
  await new Promise((resolve) => setImmediate(resolve))
  t.same(started, [0, 1], 'two start, three wait')
  gates[1]!.open()
  await calls[1]
  // A call arriving now must not overtake the three already waiting.
  const late = limit(async () => {
    started.push(99)
    return 990
  })
  await new Promise((resolve) => setImmediate(resolve))
  t.same(started, [0, 1, 2], 'the freed slot went to the first waiter')
  for (const g of gates) g.open()
  t.same(await Promise.all([...calls, late]), [0, 10, 20, 30, 40, 990])
  t.same(started, [0, 1, 2, 3, 4, 99])
  t.equal(most, 2)
})

t.test('limiter: a failed call frees its slot and rejects only its own promise', async (t) => {
  const limit = limiter(1)
  const failed = limit(async () => {
    throw new Error('boom')
  })
  const next = limit(async () => 'ran')
  await t.rejects(failed, { message: 'boom' })
  t.equal(await next, 'ran')
  t.throws(() => limiter(0), RangeError)
})
