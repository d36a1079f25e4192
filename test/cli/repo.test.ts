import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { startS3rver } from '../harness/s3rver.ts'
import { tidemark } from './run.ts'

t.test('repo init, then repo info, on a file:// repository', async (t) => {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  const url = pathToFileURL(join(dir, 'repo')).href
  const init = await tidemark(['repo', 'init', '--repo', url, '--json'])
  t.equal(init.code, 0, init.stderr)
  const created = JSON.parse(init.stdout) as { id: string; encryption: string; formatVersion: number }
  t.match(created, { encryption: 'none', formatVersion: 1, sink: url })
  const info = await tidemark(['repo', 'info', '--repo', url, '--json'])
  t.equal(info.code, 0, info.stderr)
  t.same(JSON.parse(info.stdout), created, 'another process reads what the first wrote')
  const human = await tidemark(['repo', 'info', '--repo', join(dir, 'repo')])
  t.equal(human.code, 0, human.stderr)
  t.match(human.stdout, new RegExp(`^location\\s+${url}$`, 'm'))
  t.match(human.stdout, new RegExp(`^id\\s+${created.id}$`, 'm'))
  t.match(human.stdout, /^encryption\s+none$/m)
  const again = await tidemark(['repo', 'init', '--repo', url])
  t.equal(again.code, 1)
  t.match(again.stderr, /^TM_ERR_REPO_EXISTS /)
})

t.test('the repository comes from --repo, else TIDEMARK_REPOSITORY', async (t) => {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  const a = join(dir, 'a')
  const b = join(dir, 'b')
  t.equal((await tidemark(['repo', 'init'], { env: { TIDEMARK_REPOSITORY: a } })).code, 0)
  const viaEnv = await tidemark(['repo', 'info', '--json'], { env: { TIDEMARK_REPOSITORY: a } })
  t.equal(JSON.parse(viaEnv.stdout).sink, pathToFileURL(a).href)
  const flagWins = await tidemark(['repo', 'info', '--repo', b], { env: { TIDEMARK_REPOSITORY: a } })
  t.equal(flagWins.code, 1, 'nothing at b')
  t.match(flagWins.stderr, /^TM_ERR_REPO_NOT_FOUND /)
  t.same(await readdir(dir), ['a'], 'opening a missing repository creates nothing')
})

t.test('bad repository URLs and wrong keys are clear errors', async (t) => {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  const ftp = await tidemark(['repo', 'info', '--repo', 'ftp://example.com/x'])
  t.equal(ftp.code, 2)
  t.match(ftp.stderr, /^TM_ERR_REPO_URL .*unsupported scheme/)
  const ftpJson = await tidemark(['repo', 'init', '--repo', 'ftp://example.com/x', '--json'])
  t.match(JSON.parse(ftpJson.stderr), { error: { code: 'TM_ERR_REPO_URL' } })
  const repo = join(dir, 'enc')
  const init = await tidemark(['repo', 'init', '--repo', repo, '--json'], { env: { TIDEMARK_PASSPHRASE: 'right-passphrase-1' } })
  t.equal(init.code, 0, init.stderr)
  t.equal(JSON.parse(init.stdout).encryption, 'aes-256-gcm')
  const wrong = await tidemark(['repo', 'info', '--repo', repo], { env: { TIDEMARK_PASSPHRASE: 'wrong-passphrase-2' } })
  t.equal(wrong.code, 1)
  t.match(wrong.stderr, /^TM_ERR_REPO_KEY /)
  t.notMatch(wrong.stderr, 'passphrase-2')
  const none = await tidemark(['repo', 'info', '--repo', repo])
  t.equal(none.code, 1)
  t.match(none.stderr, /^TM_ERR_REPO_KEY .*TIDEMARK_PASSPHRASE/)
  const right = await tidemark(['repo', 'info', '--repo', repo, '--json'], { env: { TIDEMARK_PASSPHRASE: 'right-passphrase-1' } })
  t.equal(right.code, 0, right.stderr)
})

t.test('an s3:// repository, with endpoint and credentials from the environment', async (t) => {
  const s3 = await startS3rver(t)
  const env = {
    TIDEMARK_S3_ENDPOINT: s3.endpoint,
    TIDEMARK_S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  }
  const url = `s3://${s3.bucket}/cli/repo`
  const init = await tidemark(['repo', 'init', '--repo', url, '--json'], { env })
  t.equal(init.code, 0, init.stderr)
  const info = await tidemark(['repo', 'info', '--json'], { env: { ...env, TIDEMARK_REPOSITORY: url } })
  t.equal(info.code, 0, info.stderr)
  t.equal(JSON.parse(info.stdout).id, JSON.parse(init.stdout).id)
  const badKey = await tidemark(['repo', 'info', '--repo', url], { env: { ...env, AWS_ACCESS_KEY_ID: 'WRONG', AWS_SECRET_ACCESS_KEY: 'wrong-sk-5150' } })
  t.equal(badKey.code, 1)
  t.match(badKey.stderr, /^TM_ERR_SINK_AUTH /)
  t.notMatch(badKey.stderr, 'wrong-sk-5150')
})
