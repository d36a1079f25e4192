import t from 'tap'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { createS3Sink } from '../../src/sinks/s3.ts'
import { openSink, parseRepoUrl } from '../../src/sinks/url.ts'
import { freePort, removeTempDir, tempDir } from '../harness/proc.ts'
import { startS3rver } from '../harness/s3rver.ts'
import { collect } from './conformance.ts'

t.test('parseRepoUrl: accepted forms', async (t) => {
  t.same(parseRepoUrl('file:///var/lib/tidemark/repo'), { kind: 'fs', path: '/var/lib/tidemark/repo' })
  t.same(parseRepoUrl('file://localhost/srv/x%20y'), { kind: 'fs', path: '/srv/x y' }, 'percent-decoded, localhost allowed')
  t.same(parseRepoUrl('/srv/backups/../repo'), { kind: 'fs', path: '/srv/repo' }, 'bare absolute path, normalised')
  t.same(parseRepoUrl('s3://my-bucket/prod/tidemark'), { kind: 's3', bucket: 'my-bucket', prefix: 'prod/tidemark' })
  t.same(parseRepoUrl('s3://my-bucket/prod/'), { kind: 's3', bucket: 'my-bucket', prefix: 'prod' }, 'trailing slash dropped')
  t.same(parseRepoUrl('s3://my-bucket'), { kind: 's3', bucket: 'my-bucket', prefix: '' }, 'bucket root')
  t.same(parseRepoUrl('S3://my.bucket/p'), { kind: 's3', bucket: 'my.bucket', prefix: 'p' }, 'scheme is case-insensitive')
})

t.test('parseRepoUrl: everything else is TM_ERR_REPO_URL naming the problem and the accepted forms', async (t) => {
  const forms = /accepted forms: file:\/\/\/absolute\/path, \/absolute\/path, s3:\/\/bucket\/prefix/
  const cases: [string, RegExp][] = [
    ['gs://bucket/p', /unsupported scheme "gs:"/],
    ['http://minio:9000/bucket', /unsupported scheme "http:"/],
    ['relative/dir', /a bare path must be absolute/],
    ['', /empty/],
    ['file://otherhost/x', /must name a local path/],
    ['s3://', /invalid bucket name ""/],
    ['s3://b/p', /invalid bucket name "b"/],
    ['s3://bucket/a/../b', /prefix/],
    ['s3://bucket/a b', /prefix/],
  ]
  for (const [url, why] of cases) {
    t.throws(() => parseRepoUrl(url), { code: 'TM_ERR_REPO_URL', message: why }, url)
    t.throws(() => parseRepoUrl(url), { message: forms }, `${url}: lists the forms`)
  }
  const err = (() => {
    try {
      parseRepoUrl('https://user:hunter2@example.com/x')
    } catch (e) {
      return e as Error
    }
  })()
  t.ok(err && !err.message.includes('hunter2'), 'credentials in a URL are not echoed')
})

t.test('openSink: a file URL gives a working fs sink', async (t) => {
  const root = await tempDir('tidemark-url-')
  t.teardown(() => removeTempDir(root))
  const sink = openSink(`file://${join(root, 'repo')}`)
  await sink.put('config.json', Buffer.from('{}'))
  t.same(await collect(await sink.get('config.json')), Buffer.from('{}'))
  t.equal(sink.description, `file://${join(root, 'repo')}`)
  t.throws(() => openSink('ftp://x/y'), { code: 'TM_ERR_REPO_URL' })
})

const creds = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }

t.test('unreachable endpoint (closed port): TM_ERR_SINK_UNREACHABLE within seconds, after the retries', async (t) => {
  const port = await freePort()
  const sink = openSink('s3://some-bucket/p', { endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, credentials: creds, retry: { attempts: 3, baseMs: 20, maxMs: 100 } })
  t.teardown(() => sink.close())
  const started = Date.now()
  const err = await sink.list('').catch((e: unknown) => e)
  t.match(err, { code: 'TM_ERR_SINK_UNREACHABLE', kind: 'transient', message: new RegExp(`gave up after 3 attempts: .*cannot reach the S3 endpoint http://127.0.0.1:${port} \\(ECONNREFUSED`) })
  t.ok(Date.now() - started < 5_000, `failed in ${Date.now() - started} ms`)
})

t.test('a server that accepts but never answers times out (transient, unreachable)', async (t) => {
  const sockets = new Set<Socket>()
  const server = createServer((s) => void sockets.add(s))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise((r) => server.close(r))
  })
  const { port } = server.address() as { port: number }
  const sink = openSink('s3://some-bucket/p', { endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, credentials: creds, idleTimeoutMs: 300, retry: false })
  t.teardown(() => sink.close())
  const started = Date.now()
  const err = await sink.head('k').catch((e: unknown) => e)
  t.match(err, { code: 'TM_ERR_SINK_UNREACHABLE', kind: 'transient', message: /TimeoutError/ })
  t.ok(Date.now() - started < 3_000, `timed out in ${Date.now() - started} ms`)
})

t.test('against s3rver: wrong credentials, missing bucket', async (t) => {
  const s3 = await startS3rver(t)
  const base = { endpoint: s3.endpoint, forcePathStyle: true, retry: { attempts: 5, baseMs: 1000, maxMs: 1000 } }
  // s3rver checks that the access key id exists but does not verify V4 signatures,
  // so a wrong secret is only detectable on real S3; an unknown key id is detected.
  const wrong = openSink(`s3://${s3.bucket}/p`, { ...base, credentials: { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'nope-secret' } })
  t.teardown(() => wrong.close())
  const started = Date.now()
  const authErr = await wrong.list('').catch((e: unknown) => e)
  t.match(authErr, { code: 'TM_ERR_SINK_AUTH', kind: 'permanent', message: /InvalidAccessKeyId.*check the S3 credentials/ })
  t.ok(Date.now() - started < 900, 'permanent: not retried')
  t.notMatch(String((authErr as Error).message), /nope-secret/, 'secret not in the message')
  const missing = openSink('s3://no-such-bucket/p', { ...base, credentials: creds })
  t.teardown(() => missing.close())
  t.match(await missing.list('').catch((e: unknown) => e), { code: 'TM_ERR_SINK_NO_BUCKET', kind: 'permanent', message: /bucket no-such-bucket does not exist/ })
  t.match(await missing.put('k', Buffer.from('x')).catch((e: unknown) => e), { code: 'TM_ERR_SINK_NO_BUCKET' }, 'put too')
  const ok = openSink(`s3://${s3.bucket}/p`, { ...base, credentials: creds })
  t.teardown(() => ok.close())
  await ok.put('k', Buffer.from('fine'))
  t.same(await collect(await ok.get('k')), Buffer.from('fine'), 'right settings work')
})

t.test('description never contains credentials', async (t) => {
  const sink = createS3Sink({ bucket: 'bkt', prefix: 'p', endpoint: 'http://user:pa55word@127.0.0.1:9/', credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'SECRETEXAMPLE', sessionToken: 'TOKENEXAMPLE' } })
  t.teardown(() => sink.close())
  t.equal(sink.description, 's3://bkt/p at http://127.0.0.1:9')
  const aws = createS3Sink({ bucket: 'bkt', region: 'eu-west-1' })
  t.teardown(() => aws.close())
  t.equal(aws.description, 's3://bkt/ at AWS S3 eu-west-1')
})
