import t from 'tap'
import { randomBytes } from 'node:crypto'
import type { Readable } from 'node:stream'
import { withFaults } from '../../src/sinks/faulty.ts'
import { createFsSink } from '../../src/sinks/fs.ts'
import { Semaphore, withLimit } from '../../src/sinks/limit.ts'
import { backoffDelay, DEFAULT_RETRY, putWithRetry, withRetry, type RetryInfo } from '../../src/sinks/retry.ts'
import { createS3Sink } from '../../src/sinks/s3.ts'
import { SinkError } from '../../src/sinks/sink.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { startS3rver } from '../harness/s3rver.ts'
import { collect, runSinkConformance, streamOf } from './conformance.ts'

const MiB = 1024 * 1024
const fast = { attempts: 5, baseMs: 1, maxMs: 5 }

async function fsRoot(t: { teardown(fn: () => unknown): void }) {
  const root = await tempDir('tidemark-wrap-')
  t.teardown(() => removeTempDir(root))
  return root
}

await runSinkConformance(t, 'retry(limit(faulty(fs))) with no faults', async () => {
  const root = await tempDir('tidemark-wrap-')
  const sink = withRetry(withLimit(withFaults(createFsSink(root)), 4), fast)
  return { sink, cleanup: () => removeTempDir(root) }
})

const s3 = await startS3rver(t)
let n = 0
await runSinkConformance(t, 'retry(limit(faulty(s3))) with no faults', async () => {
  const inner = createS3Sink({
    bucket: s3.bucket,
    prefix: `wrapped/${++n}`,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    partSize: 5 * MiB,
  })
  const sink = withRetry(withLimit(withFaults(inner), 4), fast)
  return { sink, cleanup: () => sink.close(), pendingUploads: s3.pendingUploads }
})

t.test('two transient failures: retry succeeds on the third attempt', async (t) => {
  const faulty = withFaults(createFsSink(await fsRoot(t)), { failNext: [{ op: 'head', count: 2 }] })
  const retries: RetryInfo[] = []
  const sink = withRetry(faulty, { ...fast, onRetry: (i) => retries.push(i) })
  await faulty.put('k', Buffer.from('v'))
  t.equal((await sink.head('k')).size, 1)
  t.equal(faulty.calls.head, 3, 'three attempts reached the store')
  t.same(retries.map((r) => [r.op, r.key, r.attempt]), [['head', 'k', 1], ['head', 'k', 2]], 'onRetry saw both failures')
})

t.test('a permanent failure is not retried', async (t) => {
  const faulty = withFaults(createFsSink(await fsRoot(t)))
  const sink = withRetry(faulty, fast)
  faulty.failNext('get', 1, 'permanent')
  await t.rejects(sink.get('k'), { code: 'TM_ERR_SINK_IO', kind: 'permanent', message: 'injected permanent fault: get k (call 1)' })
  t.equal(faulty.calls.get, 1, 'one attempt')
  await t.rejects(sink.get('missing'), { code: 'TM_ERR_SINK_NOT_FOUND' })
  t.equal(faulty.calls.get, 2, 'not found is not retried either')
})

t.test('transient forever: gives up after N attempts, naming them', async (t) => {
  const faulty = withFaults(createFsSink(await fsRoot(t)), { failWhen: ({ op }) => (op === 'list' ? 'transient' : undefined) })
  const sink = withRetry(faulty, { attempts: 4, baseMs: 1, maxMs: 2 })
  const err = await sink.list('').catch((e: unknown) => e)
  t.match(err, { code: 'TM_ERR_SINK_IO', kind: 'transient', message: /^list "": gave up after 4 attempts: injected transient fault: list {2}\(call 4\)$/ })
  t.ok(err instanceof SinkError && err.cause instanceof SinkError, 'the last error is the cause')
  t.equal(faulty.calls.list, 4)
})

t.test('put: a Buffer body is retried, a stream body is not (it cannot be replayed)', async (t) => {
  const faulty = withFaults(createFsSink(await fsRoot(t)))
  const sink = withRetry(faulty, fast)
  faulty.failNext('put', 1)
  await sink.put('buf', Buffer.from('b'))
  t.equal(faulty.calls.put, 2, 'Buffer put retried')
  faulty.failNext('put', 1)
  await t.rejects(sink.put('str', streamOf(Buffer.from('s'))), { kind: 'transient', message: /injected transient fault/ })
  t.equal(faulty.calls.put, 3, 'stream put attempted once')
  t.ok(sink.isNotFound(await sink.head('str').catch((e: unknown) => e)))
})

t.test('putWithRetry reopens the body for each attempt after a connection cut midway', async (t) => {
  const faulty = withFaults(createFsSink(await fsRoot(t)))
  const data = randomBytes(300_000)
  let opened = 0
  faulty.truncateNextPut(100_000)
  const r = await putWithRetry(faulty, 'k', () => (opened++, streamOf(data)), { retry: fast })
  t.same(r, { size: data.length })
  t.equal(opened, 2, 'body factory called per attempt')
  t.equal(faulty.calls.put, 2)
  t.same(await collect(await faulty.get('k')), data)
})

t.test('a put cut midway on s3 leaves no object and no multipart upload', async (t) => {
  const inner = createS3Sink({ bucket: s3.bucket, prefix: 'cut', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, partSize: 5 * MiB })
  const faulty = withFaults(inner)
  t.teardown(() => faulty.close())
  faulty.truncateNextPut(7 * MiB)
  const err = await faulty.put('k', streamOf(Buffer.alloc(12 * MiB, 5))).catch((e: unknown) => e)
  t.match(err, { kind: 'transient', message: /cut after 7340032 bytes/ })
  t.ok(faulty.isNotFound(await faulty.head('k').catch((e: unknown) => e)), 'no object')
  t.equal(await s3.pendingUploads(), 0, 'no multipart upload left')
})

t.test('an abort during the backoff sleep stops retrying', async (t) => {
  const faulty = withFaults(createFsSink(await fsRoot(t)), { failWhen: () => 'transient' })
  const sink = withRetry(faulty, { attempts: 10, baseMs: 60_000, maxMs: 60_000, random: () => 0.99 })
  const ac = new AbortController()
  setTimeout(() => ac.abort(), 50)
  const started = Date.now()
  await t.rejects(sink.head('k', { signal: ac.signal }), { code: 'TM_ERR_ABORTED', kind: 'permanent' })
  t.ok(Date.now() - started < 5_000, 'promptly')
  t.equal(faulty.calls.head, 1)
})

t.test('backoff: full jitter under an exponential cap', async (t) => {
  const o = { baseMs: 100, maxMs: 1000 }
  t.equal(backoffDelay(1, o, () => 0), 0, 'jitter can be zero')
  t.same([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, o, () => 0.999999)), [99, 199, 399, 799, 999, 999], 'cap doubles, then maxMs')
  t.equal(backoffDelay(3, o, () => 0.5), 200)
  const slept: number[] = []
  const faulty = withFaults(createFsSink(await fsRoot(t)), { failWhen: () => 'transient' })
  const sink = withRetry(faulty, { attempts: 4, ...o, random: () => 0.5, sleep: async (ms) => void slept.push(ms) })
  await t.rejects(sink.head('k'), { message: /gave up after 4 attempts/ })
  t.same(slept, [50, 100, 200], 'sleeps between attempts, none after the last')
  const worst = Array.from({ length: DEFAULT_RETRY.attempts - 1 }, (_, i) => Math.min(DEFAULT_RETRY.maxMs, DEFAULT_RETRY.baseMs * 2 ** i)).reduce((a, b) => a + b, 0)
  t.ok(worst < 60_000, `default worst-case total backoff ${worst} ms stays under a minute`)
})

t.test('withLimit never exceeds its limit', async (t) => {
  const faulty = withFaults(createFsSink(await fsRoot(t)), { latencyMs: 15 })
  const sink = withLimit(faulty, 3)
  await Promise.all(Array.from({ length: 12 }, (_, i) => sink.put(`k${i}`, Buffer.from([i]))))
  await Promise.all(Array.from({ length: 12 }, (_, i) => sink.head(`k${i}`)))
  t.equal(faulty.maxActive, 3, 'reached, never exceeded, 3 concurrent calls')
  t.equal(faulty.calls.put + faulty.calls.head, 24)
})

t.test('withLimit holds a get slot until its stream is consumed or destroyed', async (t) => {
  const root = await fsRoot(t)
  const sink = withLimit(createFsSink(root), 2)
  await Promise.all(['a', 'b', 'c'].map((k) => sink.put(k, Buffer.from(k))))
  const a = await sink.get('a')
  const b = await sink.get('b')
  let third: Readable | undefined
  const pending = sink.get('c').then((s) => (third = s))
  await new Promise((r) => setTimeout(r, 50))
  t.equal(third, undefined, 'third get waits while two streams are open')
  t.same(await collect(a), Buffer.from('a'))
  await pending
  t.ok(third, 'third get proceeds once a stream ended')
  b.destroy()
  t.same(await collect(third!), Buffer.from('c'))
  t.same(await collect(await sink.get('a')), Buffer.from('a'), 'destroyed stream released its slot')
})

t.test('Semaphore hands slots over in FIFO order', async (t) => {
  const sem = new Semaphore(1)
  const order: number[] = []
  const first = await sem.acquire()
  const waiters = [1, 2, 3].map((i) => sem.acquire().then((release) => (order.push(i), release())))
  first()
  first() // idempotent: must not free a second slot
  await Promise.all(waiters)
  t.same(order, [1, 2, 3])
  t.throws(() => new Semaphore(0), RangeError)
})
