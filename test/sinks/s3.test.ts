import t from 'tap'
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { Readable } from 'node:stream'
import { createS3Sink, type S3SinkOptions } from '../../src/sinks/s3.ts'
import { createS3Sink as createLazyS3Sink } from '../../src/sinks/s3-lazy.ts'
import { SinkError } from '../../src/sinks/sink.ts'
import { startS3rver, type S3rverInstance } from '../harness/s3rver.ts'
import { BIG, collect, runSinkConformance, streamOf } from './conformance.ts'

const MiB = 1024 * 1024
const s3 = await startS3rver(t)

function options(server: S3rverInstance, extra: Partial<S3SinkOptions> = {}): S3SinkOptions {
  return {
    bucket: server.bucket,
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    partSize: 5 * MiB,
    ...extra,
  }
}

function rawClient(server: S3rverInstance): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  })
}

let n = 0
await runSinkConformance(t, 's3 sink (s3rver)', async () => {
  // A fresh prefix per case keeps cases apart within one bucket.
  const sink = createS3Sink(options(s3, { prefix: `conf/${++n}` }))
  return { sink, cleanup: () => sink.close(), pendingUploads: s3.pendingUploads }
})

// What openSink gives: the same sink behind a first-use import of the AWS SDK.
await runSinkConformance(t, 's3 sink loaded on first use (s3rver)', async () => {
  const sink = createLazyS3Sink(options(s3, { prefix: `conf/${++n}` }))
  return { sink, cleanup: () => sink.close(), pendingUploads: s3.pendingUploads }
})

t.test('the harness sees an open multipart upload, and aborting it clears it', async (t) => {
  const client = rawClient(s3)
  t.teardown(() => client.destroy())
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: 'mpu/probe' }))
  t.equal(await s3.pendingUploads(), 1, 'one pending upload')
  await client.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key: 'mpu/probe', UploadId }))
  t.equal(await s3.pendingUploads(), 0, 'aborted')
})

t.test('the harness replaces an object whole: reads while the same key is rewritten see one complete version', async (t) => {
  const sink = createS3Sink(options(s3, { prefix: 'replace' }))
  t.teardown(() => sink.close())
  const versions = [Buffer.alloc(256 * 1024, 'a'), Buffer.alloc(256 * 1024, 'b')]
  await sink.put('k', versions[0]!)
  let writing = true
  const writes = (async () => {
    for (let i = 1; i <= 20; i++) await sink.put('k', versions[i % 2]!)
    writing = false
  })()
  const seen: string[] = []
  while (writing) {
    const body = await collect(await sink.get('k'))
    seen.push(versions.some((v) => v.equals(body)) ? 'whole' : `torn (${body.length} bytes)`)
  }
  await writes
  t.ok(seen.length > 0)
  t.same(seen.filter((s) => s !== 'whole'), [], `${seen.length} reads`)
})

t.test('prefixes isolate sinks; no prefix means the bucket root', async (t) => {
  const a = createS3Sink(options(s3, { prefix: 'iso/p1' }))
  const b = createS3Sink(options(s3, { prefix: 'iso/p1x' }))
  const root = createS3Sink(options(s3))
  t.teardown(() => Promise.all([a.close(), b.close(), root.close()]))
  await a.put('k', Buffer.from('a'))
  await b.put('k', Buffer.from('b'))
  t.same((await a.list('')).items.map((i) => i.key), ['k'], 'p1 sees only its key')
  t.same(await collect(await a.get('k')), Buffer.from('a'))
  t.same((await root.list('iso/')).items.map((i) => i.key), ['iso/p1/k', 'iso/p1x/k'], 'root sink sees full keys')
  t.equal(a.description, `s3://${s3.bucket}/iso/p1 at ${s3.endpoint}`)
})

t.test('server-side encryption is requested on put, multipart put and copy', async (t) => {
  const kms = createS3Sink(options(s3, { prefix: 'sse', sse: 'aws:kms', kmsKeyId: 'test-key-1' }))
  const plain = createS3Sink(options(s3, { prefix: 'sse' }))
  const client = rawClient(s3)
  t.teardown(() => Promise.all([kms.close(), plain.close(), client.destroy()]))
  await kms.put('small', Buffer.from('x'))
  await kms.put('big', streamOf(Buffer.alloc(6 * MiB, 1)))
  await plain.put('plain', Buffer.from('p'))
  await kms.copy('plain', 'copied')
  for (const k of ['small', 'big', 'copied']) {
    const h = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `sse/${k}` }))
    t.equal(h.ServerSideEncryption, 'aws:kms', `${k}: sse`)
    t.equal(h.SSEKMSKeyId, 'test-key-1', `${k}: kms key`)
  }
  const h = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: 'sse/plain' }))
  t.equal(h.ServerSideEncryption, undefined, 'no sse unless configured')
})

t.test('invalid options are configuration errors', async (t) => {
  t.throws(() => createS3Sink(options(s3, { partSize: 4 * MiB })), { code: 'TM_ERR_CONFIG_INVALID', message: /partSize/ })
  t.throws(() => createS3Sink(options(s3, { queueSize: 0 })), { code: 'TM_ERR_CONFIG_INVALID', message: /queueSize/ })
  t.throws(() => createS3Sink(options(s3, { kmsKeyId: 'k' })), { code: 'TM_ERR_CONFIG_INVALID', message: /kmsKeyId/ })
  t.throws(() => createS3Sink(options(s3, { prefix: '/p' })), { code: 'TM_ERR_CONFIG_INVALID', message: /prefix/ })
})

t.test('a killed server is transient and unreachable; after a restart the data is back', async (t) => {
  const own = await startS3rver(t)
  const sink = createS3Sink(options(own, { prefix: 'kill' }))
  t.teardown(() => sink.close())
  const data = Buffer.alloc(BIG % MiB, 3)
  await sink.put('k', data)
  // A put in flight when the server dies: the store's error, not the body's, and the body is released.
  let produced = 0
  let killed: Promise<unknown> | undefined
  const body = Readable.from(
    (async function* () {
      for (;;) {
        yield Buffer.alloc(64 * 1024, 9)
        produced += 64 * 1024
        if (produced === 7 * MiB) {
          own.child.kill('SIGKILL')
          killed = new Promise((r) => own.child.once('exit', r))
        }
        await new Promise((r) => setImmediate(r))
      }
    })(),
    { objectMode: false },
  )
  const inflight = await sink.put('inflight', body).catch((e: unknown) => e)
  t.ok(inflight instanceof SinkError, 'a SinkError')
  t.match(inflight, { kind: 'transient', code: /^TM_ERR_SINK_(UNREACHABLE|IO)$/ })
  t.ok(body.destroyed, 'the body stream was released')
  await killed
  const err = await sink.head('k').catch((e: unknown) => e)
  t.match(err, { code: 'TM_ERR_SINK_UNREACHABLE', kind: 'transient', message: new RegExp(`cannot reach the S3 endpoint ${own.endpoint}`) })
  t.notOk(sink.isPermanent(err), 'retryable')
  const again = await startS3rver(t, { port: own.port, dir: own.dir })
  t.equal(again.endpoint, own.endpoint, 'same endpoint')
  t.same(await collect(await sink.get('k')), data, 'the same sink works again')
  t.ok(sink.isNotFound(await sink.head('inflight').catch((e: unknown) => e)), 'the interrupted put left no object')
})

t.test('two servers run at once (two regions)', async (t) => {
  const other = await startS3rver(t, { bucket: 'tidemark-test-eu' })
  const us = createS3Sink(options(s3, { prefix: 'regions' }))
  const eu = createS3Sink(options(other, { prefix: 'regions', region: 'eu-west-1' }))
  t.teardown(() => Promise.all([us.close(), eu.close()]))
  await us.put('x', Buffer.from('us'))
  await eu.put('x', Buffer.from('eu'))
  t.same(await collect(await us.get('x')), Buffer.from('us'))
  t.same(await collect(await eu.get('x')), Buffer.from('eu'))
  t.not(other.port, s3.port)
})
