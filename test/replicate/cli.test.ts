import t from 'tap'
import { pathToFileURL } from 'node:url'
import { join } from 'node:path'
import { initRepository } from '../../src/engine/repository/index.ts'
import { tidemark } from '../cli/run.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { startS3rver, type S3rverInstance } from '../harness/s3rver.ts'
import { buildOverlapping, CHUNK, distinct, s3Sink, testPool } from './helpers.ts'

const pool = testPool()
t.teardown(() => pool.destroy())
const passphrase = 'cli replica passphrase'

const secondary = (name: string, s3: S3rverInstance, accessKeyId: string = s3.accessKeyId) => ({
  name,
  url: `s3://${s3.bucket}/${name}`,
  parallelism: 2,
  s3: { endpoint: s3.endpoint, forcePathStyle: true, accessKeyId, secretAccessKey: s3.secretAccessKey },
})

t.test('tidemark replicate to configured secondaries and to a URL; verify and read the secondary', async (t) => {
  const [a, b] = await Promise.all([startS3rver(t), startS3rver(t)])
  const primary = await initRepository(s3Sink(a, 'tm'), { passphrase, pipeline: { pool, chunkSize: CHUNK } })
  const built = await buildOverlapping(primary, new Date())
  await primary.close()
  const all = distinct(built.manifests)
  const env = {
    TIDEMARK_REPOSITORY: `s3://${a.bucket}/tm`,
    TIDEMARK_S3_ENDPOINT: a.endpoint,
    TIDEMARK_S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: a.accessKeyId,
    AWS_SECRET_ACCESS_KEY: a.secretAccessKey,
    TIDEMARK_PASSPHRASE: passphrase,
    TIDEMARK_SECONDARIES: JSON.stringify([secondary('dr', b)]),
  }

  const run = await tidemark(['replicate', '--json'], { env })
  t.equal(run.code, 0, run.stderr)
  const [dr] = JSON.parse(run.stdout).targets
  t.match(dr, { name: 'dr', ok: true, result: { created: true, objectsCopied: all.keys.size, bytesCopied: all.bytes }, lag: { ok: true, seconds: 0, bytes: 0 } })
  t.equal(dr.result.manifestsCopied.length, 4)
  const again = await tidemark(['replicate'], { env })
  t.equal(again.code, 0, again.stderr)
  t.match(again.stdout, /^dr {2}s3:\/\/\S+: 0 backups, 0 objects \(0 B\) copied, 0 objects already there; lag 0 s, 0 B/)

  const check = await tidemark(['verify', '--secondary', 'dr', '--read', '--json'], { env })
  t.equal(check.code, 0, check.stderr)
  t.match(JSON.parse(check.stdout), { ok: true, objects: all.keys.size, repository: `s3://${b.bucket}/dr` })
  const byUrl = await tidemark(['repo', 'info', '--repo', `s3://${b.bucket}/dr`, '--json'], { env: { ...env, TIDEMARK_S3_ENDPOINT: b.endpoint } })
  t.equal(byUrl.code, 0, byUrl.stderr)
  t.match(JSON.parse(byUrl.stdout), { manifests: { clickhouse: 3, postgres: 1 }, encryption: 'aes-256-gcm' }, 'the secondary is a repository of its own, opened with the same key')

  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  const local = pathToFileURL(join(dir, 'copy')).href
  const adhoc = await tidemark(['replicate', '--to', local, '--json'], { env })
  t.equal(adhoc.code, 0, adhoc.stderr)
  t.match(JSON.parse(adhoc.stdout).targets[0], { name: local, ok: true, result: { objectsCopied: all.keys.size } })
  const localCheck = await tidemark(['verify', '--read', '--repo', local], { env })
  t.equal(localCheck.code, 0, localCheck.stderr)
})

t.test('tidemark replicate: a failing secondary is reported, the others still copied, exit 1', async (t) => {
  const [a, b] = await Promise.all([startS3rver(t), startS3rver(t)])
  const primary = await initRepository(s3Sink(a, 'tm'), { pipeline: { pool, chunkSize: CHUNK } })
  await buildOverlapping(primary, new Date())
  await primary.close()
  const env = {
    TIDEMARK_REPOSITORY: `s3://${a.bucket}/tm`,
    TIDEMARK_S3_ENDPOINT: a.endpoint,
    TIDEMARK_S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: a.accessKeyId,
    AWS_SECRET_ACCESS_KEY: a.secretAccessKey,
    TIDEMARK_SECONDARIES: JSON.stringify([secondary('bad', b, 'WRONG-KEY'), secondary('good', b)]),
  }
  const run = await tidemark(['replicate', '--json'], { env })
  t.equal(run.code, 1)
  const [bad, good] = JSON.parse(run.stdout).targets
  t.match(bad, { name: 'bad', ok: false, error: { code: 'TM_ERR_SINK_AUTH' }, lag: { ok: false, error: { code: 'TM_ERR_SINK_AUTH' } } })
  t.match(good, { name: 'good', ok: true, lag: { ok: true, seconds: 0 } })
  t.match(JSON.parse(run.stderr), { error: { code: 'TM_ERR_SINK_AUTH', message: /^replication failed for bad: secondary bad \(s3:\/\/.*access denied/ } })
  t.notMatch(run.stdout + run.stderr, 'WRONG-KEY', 'the access key id is not printed')

  const none = await tidemark(['replicate'], { env: { ...env, TIDEMARK_SECONDARIES: '' } })
  t.equal(none.code, 2)
  t.match(none.stderr, /^TM_ERR_USAGE no secondaries are configured/)
  const slow = await tidemark(['replicate'], { env: { ...env, TIDEMARK_SECONDARIES: JSON.stringify([{ ...secondary('x', b), parallelism: 0 }]) } })
  t.equal(slow.code, 2)
  t.match(slow.stderr, /^TM_ERR_CONFIG_INVALID .*secondaries\[0\]\.parallelism/)
  const unknown = await tidemark(['replicate', '--to', 'nope'], { env })
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /^TM_ERR_USAGE no secondary named "nope" \(configured: bad, good\)/)
})
