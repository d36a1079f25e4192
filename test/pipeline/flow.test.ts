import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createPipelinePool, decode, encode } from '../../src/engine/pipeline/index.ts'
import { sharedRecycler } from '../../src/engine/pipeline/chunker.ts'
import { KIB, collect, collectUntilError, compressible, encodeAll } from './helpers.ts'

const pool = createPipelinePool({ threads: 2 })
t.teardown(() => pool.destroy())

const CHUNK = 64 * KIB

/** A byte stream of `total` random (incompressible) bytes that counts what has been pulled from it. */
function countingSource(total: number, piece = 16 * KIB): Readable & { pulled: number } {
  const source = new Readable({
    read() {
      if (source.pulled >= total) return void this.push(null)
      source.pulled += piece
      this.push(randomBytes(piece))
    },
  }) as Readable & { pulled: number }
  source.pulled = 0
  return source
}

/** Waits until `value()` stops changing for a while (the pipeline has stalled). */
async function settle(value: () => number): Promise<number> {
  for (let last = -1; ; ) {
    await sleep(100)
    if (value() === last) return last
    last = value()
  }
}

t.test('backpressure reaches the source: read-ahead stays bounded by maxInFlight', async (t) => {
  const maxInFlight = 3
  const source = countingSource(64 * 1024 * KIB)
  const { stream, done } = encode(source, { pool, chunkSize: CHUNK, maxInFlight })
  const bound = (maxInFlight + 3) * CHUNK + source.readableHighWaterMark + 16 * KIB
  const stalled = await settle(() => source.pulled)
  t.ok(stalled > 0 && stalled <= bound, `consumer idle: pulled ${stalled} bytes of 64 MiB, bound ${bound}`)

  let consumed = 0
  for (let i = 0; i < 20; i++) {
    const part = stream.read() as Buffer | null
    if (part) consumed += part.length
    else await once(stream, 'readable')
  }
  const after = await settle(() => source.pulled)
  t.ok(after > stalled, 'consuming lets the source move on')
  t.ok(after <= consumed + bound + CHUNK, `consumed ${consumed}, pulled ${after}: still bounded`)

  stream.destroy()
  await t.rejects(done, /closed before its end/)
  t.ok(source.destroyed, 'the source is destroyed when the consumer gives up')
  t.equal(pool.pending, 0, 'no worker task left')
})

t.test('an abort destroys the output with TM_ERR_ABORTED, the source too, and leaves no task running', async (t) => {
  const source = countingSource(64 * 1024 * KIB)
  const controller = new AbortController()
  const { stream, done } = encode(source, { pool, chunkSize: CHUNK, signal: controller.signal, key: randomBytes(32), objectId: 'x' })
  let pendingAtError = -1
  stream.on('error', () => (pendingAtError = pool.pending))
  stream.resume()
  await sleep(50)
  controller.abort()
  const { error } = await collectUntilError(stream)
  t.match(error, { code: 'TM_ERR_ABORTED' })
  await t.rejects(done, { code: 'TM_ERR_ABORTED' })
  t.equal(pendingAtError, 0, 'every worker task had settled when the stream failed')
  t.ok(source.destroyed)
})

t.test('an already aborted signal fails at once', async (t) => {
  const source = countingSource(1024 * KIB)
  const { stream, done } = encode(source, { pool, signal: AbortSignal.abort() })
  t.match((await collectUntilError(stream)).error, { code: 'TM_ERR_ABORTED' })
  await t.rejects(done, { code: 'TM_ERR_ABORTED' })
  t.equal(source.pulled, 0)
})

t.test('a source error destroys the output with that same error', async (t) => {
  const boom = new Error('source broke')
  async function* broken() {
    yield compressible(3 * CHUNK)
    throw boom
  }
  const { stream, done } = encode(Readable.from(broken()), { pool, chunkSize: CHUNK })
  const { error } = await collectUntilError(stream)
  t.equal(error, boom)
  await t.rejects(done, boom)
  t.equal(pool.pending, 0)
})

t.test('decode: backpressure, abort, and a failing stored stream', async (t) => {
  const raw = randomBytes(40 * CHUNK)
  const { stored } = await encodeAll(raw, { pool, chunkSize: CHUNK })
  let pulled = 0
  const pieces = function* () {
    for (let at = 0; at < stored.length; at += 16 * KIB) {
      pulled += 16 * KIB
      yield stored.subarray(at, at + 16 * KIB)
    }
  }
  const controller = new AbortController()
  const out = decode(Readable.from(pieces(), { objectMode: false }), { pool, maxInFlight: 2, signal: controller.signal })
  const stalled = await settle(() => pulled)
  t.ok(stalled <= 8 * CHUNK, `consumer idle: pulled ${stalled} of ${stored.length} stored bytes`)
  controller.abort()
  t.match((await collectUntilError(out)).error, { code: 'TM_ERR_ABORTED' })
  t.equal(pool.pending, 0)

  const boom = new Error('network reset')
  async function* broken() {
    yield stored.subarray(0, 3 * CHUNK)
    throw boom
  }
  t.equal((await collectUntilError(decode(Readable.from(broken()), { pool }))).error, boom)

  const whole = await collect(decode(Readable.from([stored]), { pool }))
  t.ok(whole.equals(raw), 'and an undisturbed decode still works')
})

t.test('a pool destroyed under a running encode fails the stream instead of hanging', async (t) => {
  const own = createPipelinePool({ threads: 1 })
  const source = countingSource(64 * 1024 * KIB)
  const { stream, done } = encode(source, { pool: own, chunkSize: CHUNK })
  const collected = collectUntilError(stream)
  await sleep(30)
  await own.destroy()
  t.match((await collected).error, { code: 'TM_ERR_INTERNAL', message: /Terminating worker thread/ }, 'the stream fails')
  await t.rejects(done)
  t.ok(source.destroyed)
})

t.test('pool options are checked', async (t) => {
  t.throws(() => createPipelinePool({ threads: 0 }), { code: 'TM_ERR_USAGE', message: /threads/ })
})

t.test('objects encoded with one pool share its chunk buffers', async (t) => {
  const owner = {}
  const r = sharedRecycler(owner, CHUNK, 2)
  t.equal(sharedRecycler(owner, CHUNK, 4), r, 'one recycler per pool and chunk size')
  t.not(sharedRecycler(owner, 2 * CHUNK, 2), r, 'another chunk size has its own')
  t.not(sharedRecycler({}, CHUNK, 2), r, 'another pool has its own')
  const held = [r.take(), r.take(), r.take(), r.take(), r.take()]
  for (const b of held) r.give(b.buffer)
  const again = [r.take(), r.take(), r.take(), r.take(), r.take()]
  const reused = again.filter((b) => held.some((h) => h.buffer === b.buffer)).length
  t.equal(reused, 4, 'the largest keep asked for (4) bounds what is retained')
  // Through the pipeline: an object takes its chunk buffers from the pool's recycler (a buffer
  // left there is transferred to a worker, so detached here) and hands them back.
  const shared = sharedRecycler(pool, CHUNK, 1)
  const left = new ArrayBuffer(CHUNK)
  shared.give(left)
  const { result } = await encodeAll(compressible(3 * CHUNK), { pool, chunkSize: CHUNK })
  t.equal(result.chunks, 3)
  t.ok(left.detached, 'the buffer left by an earlier object was used')
  t.notOk(shared.take().buffer.detached, 'a buffer handed back is ready for the next object')
})

t.test('a failure before the consumer listens is held for it, not thrown at the process', async (t) => {
  const { stored } = await encodeAll(compressible(4 * CHUNK), { pool, chunkSize: CHUNK })
  const damaged = Buffer.from(stored)
  damaged[100]! ^= 0xff // in chunk 0: nothing is emitted before the failure
  const out = decode(Readable.from([damaged]), { pool })
  // A consumer that awaits something else between getting the stream and reading it.
  await sleep(300)
  t.equal(out.listenerCount('error'), 0)
  t.match((await collectUntilError(out)).error, { code: 'TM_ERR_INTEGRITY' })

  const boom = new Error('source broke before anyone read')
  const { stream, done } = encode(Readable.from((async function* () {
    yield compressible(CHUNK)
    throw boom
  })()), { pool, chunkSize: CHUNK })
  await t.rejects(done, boom)
  await sleep(100)
  t.equal((await collectUntilError(stream)).error, boom)
  t.equal(pool.pending, 0)
})
