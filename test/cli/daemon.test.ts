import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { captureOutput, removeTempDir, spawnServer, stopProcess, tempDir, waitFor } from '../harness/proc.ts'
import { BIN, cleanEnv, tidemark } from './run.ts'

const SECRETS = {
  CLICKHOUSE_PASSWORD: 'ch-secret-d41d',
  POSTGRES_DATABASE_URI: 'tidemark:pg-secret-8f00@127.0.0.1:1/postgres',
  TIDEMARK_API_ADMIN_TOKEN: 'admin-secret-b204',
  TIDEMARK_API_READ_TOKEN: 'read-secret-e980',
  TIDEMARK_PASSPHRASE: 'pass-secret-0998',
}

t.test('daemon: opens the embedded default repository, runs until SIGTERM, exits 0, logs no secret', async (t) => {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  const child = spawnServer(BIN, ['daemon'], { cwd: dir, env: cleanEnv({ ...SECRETS, CLICKHOUSE_HOST: '127.0.0.1', TIDEMARK_LOG_LEVEL: 'debug' }) })
  t.teardown(() => stopProcess(child, 2000))
  const output = captureOutput(child)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  await waitFor('the daemon to be up', async () => output().includes('tidemark daemon up'), 30_000)

  const repoConfig = JSON.parse(await readFile(join(dir, 'tidemark-repo', 'config.json'), 'utf8')) as { encryption: unknown }
  t.ok(repoConfig.encryption, 'created on first start, encrypted with the configured passphrase')

  const sentAt = Date.now()
  child.kill('SIGTERM')
  const code = await exited
  t.equal(code, 0, 'exit 0 on SIGTERM')
  t.ok(Date.now() - sentAt < 5000, 'stops within a few seconds')

  const lines = output().trim().split('\n')
  const records = lines.map((l) => JSON.parse(l) as { msg: string; config?: { clickhouse: { password: string } } })
  t.ok(records.some((r) => r.msg === 'stopped'))
  t.equal(records.find((r) => r.config)?.config?.clickhouse.password, '***', 'the configuration is logged, redacted')
  for (const [name, value] of Object.entries(SECRETS)) {
    const secret = name === 'POSTGRES_DATABASE_URI' ? 'pg-secret-8f00' : value
    t.notOk(output().includes(secret), `${name} is not in the log`)
  }

  // A second start opens the same repository instead of creating another.
  const info = await tidemark(['repo', 'info', '--json'], { cwd: dir, env: { TIDEMARK_PASSPHRASE: SECRETS.TIDEMARK_PASSPHRASE } })
  t.equal(info.code, 0, info.stderr)
  t.ok((await stat(join(dir, 'tidemark-repo'))).isDirectory())
})

t.test('daemon: a bad configuration is refused at start with exit 2', async (t) => {
  const r = await tidemark(['daemon'], { env: { TIDEMARK_API_PORT: '99999' } })
  t.equal(r.code, 2)
  t.match(r.stderr, /^TM_ERR_CONFIG_INVALID .*api\.port \(environment variable TIDEMARK_API_PORT\)/)
})
