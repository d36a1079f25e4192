import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { configFromSources, loadConfig, redactConfig } from '../../src/config.ts'
import { TidemarkError } from '../../src/errors.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'

const SECRETS = {
  CLICKHOUSE_PASSWORD: 'ch-pw-7f3a',
  AWS_ACCESS_KEY_ID: 'AKID-9c2e',
  AWS_SECRET_ACCESS_KEY: 'aws-sk-41d0',
  AWS_SESSION_TOKEN: 'aws-st-88b1',
  TIDEMARK_PASSPHRASE: 'passphrase-5e6f',
  TIDEMARK_API_READ_TOKEN: 'read-tok-2b7c',
  TIDEMARK_API_ADMIN_TOKEN: 'admin-tok-0a9d',
  POSTGRES_DATABASE_URI: 'postgres:pg-pw-33aa@db:5432/postgres',
}
const VALUES = ['ch-pw-7f3a', 'AKID-9c2e', 'aws-sk-41d0', 'aws-st-88b1', 'passphrase-5e6f', 'read-tok-2b7c', 'admin-tok-0a9d', 'pg-pw-33aa']

function errorOf(fn: () => unknown): TidemarkError {
  try {
    fn()
  } catch (err) {
    if (err instanceof TidemarkError) return err
    throw err
  }
  throw new Error('expected an error')
}

function assertNoSecret(t: Test, text: string, what: string): void {
  for (const v of VALUES) t.notOk(text.includes(v), `${what} does not contain ${v}`)
}

t.test('redactConfig masks every secret and credentials in URLs', async (t) => {
  const c = configFromSources(undefined, undefined, SECRETS, '/w', 2)
  t.equal(c.clickhouse.password, 'ch-pw-7f3a', 'the real config keeps the values')
  const r = redactConfig(c)
  const text = JSON.stringify(r)
  assertNoSecret(t, text, 'redacted config')
  t.equal(r.clickhouse.password, '***')
  t.equal(r.repository.s3.secretAccessKey, '***')
  t.equal(r.repository.encryption.passphrase, '***')
  t.equal(r.api.adminToken, '***')
  t.equal(r.postgres.url, 'postgresql://postgres:***@db:5432/postgres')
  t.equal(r.clickhouse.port, c.clickhouse.port, 'other values are kept')
  t.equal(c.clickhouse.password, 'ch-pw-7f3a', 'the original is unchanged')
})

t.test('secrets never appear in errors', async (t) => {
  // Every secret set, plus faults that make errors mention the keys holding them.
  const badFile = [
    'clickhouse:',
    '  url: "http://admin:ch-pw-7f3a@"',
    'postgres:',
    '  replicationUrl: "postgres://rep:pg-pw-33aa@"',
    'secondaries:',
    '  - name: dr',
    '    url: s3://b/p',
    '    s3: { accessKeyId: AKID-9c2e }',
    '    encryption: { passphrase: 12345, keyFile: /k }',
    '',
  ].join('\n')
  const e = errorOf(() => configFromSources(badFile, '/c.yaml', SECRETS, '/w', 2))
  t.match(e.message, 'clickhouse.url')
  t.match(e.message, 'postgres.replicationUrl')
  t.match(e.message, 'secondaries[0].s3')
  t.match(e.message, 'secondaries[0].encryption.passphrase')
  t.match(e.message, 'value not shown')
  assertNoSecret(t, e.message, 'message')
  assertNoSecret(t, JSON.stringify(e.toJSON()), 'error JSON')
  const envOnly = errorOf(() => configFromSources(undefined, undefined, { ...SECRETS, TIDEMARK_SECONDARIES: '[{name: x, url: /x, s3: {secretAccessKey: [aws-sk-41d0]}}]' }, '/w', 2))
  t.match(envOnly.message, 'secondaries[0].s3.secretAccessKey (environment variable TIDEMARK_SECONDARIES)')
  const emptyToken = errorOf(() => configFromSources('api:\n  readToken: ""\n', '/c.yaml', {}, '/w', 2))
  t.match(emptyToken.message, 'api.readToken (file /c.yaml line 2): expected a non-empty string')
  assertNoSecret(t, envOnly.message, 'message from the environment')
})

t.test('loadConfig: --config, then TIDEMARK_CONFIG, else no file', async (t) => {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  await writeFile(join(dir, 'a.yaml'), 'api:\n  port: 1111\n')
  await writeFile(join(dir, 'b.yaml'), 'api:\n  port: 2222\n')
  const byArg = await loadConfig({ argvConfigPath: 'a.yaml', env: { TIDEMARK_CONFIG: join(dir, 'b.yaml') }, cwd: dir })
  t.equal(byArg.api.port, 1111, '--config wins, relative to the working directory')
  const byEnv = await loadConfig({ env: { TIDEMARK_CONFIG: join(dir, 'b.yaml') }, cwd: dir })
  t.equal(byEnv.api.port, 2222)
  const none = await loadConfig({ env: {}, cwd: dir })
  t.equal(none.api.port, 7575)
  await t.rejects(loadConfig({ argvConfigPath: 'missing.yaml', env: {}, cwd: dir }), {
    code: 'TM_ERR_CONFIG_PARSE',
    message: `configuration file ${join(dir, 'missing.yaml')} (from --config) does not exist`,
  })
  await writeFile(join(dir, 'bad.yaml'), 'log:\n  level: info\n  lvl: debug\n')
  await t.rejects(loadConfig({ env: { TIDEMARK_CONFIG: 'bad.yaml' }, cwd: dir }), {
    code: 'TM_ERR_CONFIG_INVALID',
    message: new RegExp(`log\\.lvl \\(file ${join(dir, 'bad.yaml').replace(/[.]/g, '\\.')} line 3\\)`),
  })
})
