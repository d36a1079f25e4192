import t from 'tap'
import { initRepository, openRepository } from '../../src/engine/repository/index.ts'
import { replicate, sameStoreCopier } from '../../src/engine/replicate.ts'
import { verify } from '../../src/engine/verify.ts'
import { withFaults } from '../../src/sinks/faulty.ts'
import { startS3rver } from '../harness/s3rver.ts'
import { buildOverlapping, CHUNK, distinct, testPool } from './helpers.ts'
import { openSink } from '../../src/sinks/url.ts'

const pool = testPool()
t.teardown(() => pool.destroy())

t.test('same store is detected from bucket and endpoint', async (t) => {
  const s = { endpoint: 'http://127.0.0.1:9000', forcePathStyle: true }
  const loc = (url: string, settings: object = s) => ({ url, settings })
  const yes = sameStoreCopier(loc('s3://bkt/primary'), loc('s3://bkt/dr', { endpoint: 'http://127.0.0.1:9000/' }))
  t.ok(yes, 'same bucket, same endpoint')
  await yes?.close()
  t.equal(sameStoreCopier(loc('s3://bkt/a'), loc('s3://other/a')), undefined, 'other bucket')
  t.equal(sameStoreCopier(loc('s3://bkt/a'), loc('s3://bkt/b', { endpoint: 'http://127.0.0.1:9001' })), undefined, 'other endpoint')
  t.equal(sameStoreCopier(loc('s3://bkt/a', {}), loc('s3://bkt/b', { region: 'eu-west-1' })), undefined, 'AWS, other region')
  t.equal(sameStoreCopier(loc('s3://bkt/a'), loc('s3://bkt/a')), undefined, 'the same prefix is not a copy')
  t.equal(sameStoreCopier(loc('file:///x/a'), loc('file:///x/b')), undefined, 'local directories stream')
})

t.test('within one bucket, objects are copied server-side and never flow through tidemark', async (t) => {
  const s3 = await startS3rver(t)
  const settings = { endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } }
  const gets: string[] = []
  const primarySink = withFaults(openSink(`s3://${s3.bucket}/prod`, settings), { failWhen: (c) => void (c.op === 'get' && gets.push(c.key)) })
  const primary = await initRepository(primarySink, { pipeline: { pool, chunkSize: CHUNK } })
  t.teardown(() => primary.close())
  const built = await buildOverlapping(primary, new Date())
  const serverCopy = sameStoreCopier({ url: `s3://${s3.bucket}/prod`, settings }, { url: `s3://${s3.bucket}/copy`, settings })
  t.ok(serverCopy)
  t.teardown(() => serverCopy?.close())
  const sink = openSink(`s3://${s3.bucket}/copy`, settings)
  t.teardown(() => sink.close())
  gets.length = 0
  const res = await replicate(primary, { name: 'copy', sink, serverCopy })
  const all = distinct(built.manifests)
  t.equal(res.serverSideCopies, all.keys.size)
  t.equal(res.objectsCopied, all.keys.size)
  t.equal(res.bytesCopied, all.bytes)
  t.same(gets.filter((k) => k.startsWith('data/')), [], 'no data object was read from the primary')
  const copy = await openRepository(openSink(`s3://${s3.bucket}/copy`, settings), { pipeline: { pool, chunkSize: CHUNK } })
  t.teardown(() => copy.close())
  const report = await verify(copy, { read: true })
  t.equal(report.ok, true, JSON.stringify(report.problems))
  t.equal(report.backups.length, 4)
})
