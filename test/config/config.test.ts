import t from 'tap'
import { clickhouseEndpoint, configFromSources, type Config } from '../../src/config.ts'
import { TidemarkError } from '../../src/errors.ts'

const FILE = '/etc/tidemark/tidemark.yaml'
const CWD = '/srv/tidemark'

function load(text: string | undefined, env: Record<string, string> = {}): Config {
  return configFromSources(text, FILE, env, CWD, 3)
}

/** The TidemarkError thrown by `fn` (fails the test if none). */
function errorOf(fn: () => unknown): TidemarkError {
  try {
    fn()
  } catch (err) {
    if (err instanceof TidemarkError) return err
    throw err
  }
  throw new Error('expected an error')
}

t.test('no file and no environment: every section with its defaults', async (t) => {
  const c = load(undefined)
  t.equal(c.repository.url, 'file:///srv/tidemark/tidemark-repo', 'embedded default: a local directory under the working directory')
  t.same(c.repository.s3, { region: 'us-east-1', forcePathStyle: false, sse: 'none', partSizeMiB: 8, queueSize: 4 })
  t.same(c.repository.encryption, {})
  t.equal(c.repository.lease.ttlSeconds, 60)
  t.same(c.secondaries, [])
  t.same(c.pipeline, { threads: 3, chunkSizeMiB: 4, level: 3, maxInFlight: 8 }, 'threads default to the CPU count')
  t.equal(c.clickhouse.enabled, false, 'no server configured: ClickHouse off')
  t.equal(c.clickhouse.port, 8123)
  t.equal(c.clickhouse.method, 'logical')
  t.same(c.clickhouse.databases, { include: [], exclude: [] })
  t.equal(c.postgres.enabled, false)
  t.equal(c.postgres.method, 'physical')
  t.equal(c.postgres.slot, 'tidemark')
  t.equal(c.postgres.walPartialIntervalSeconds, 10)
  t.equal(c.schedules.clickhouse.incremental, '*/15 * * * *')
  t.equal(c.schedules.postgres.base, '0 2 * * *')
  t.equal(c.schedules.replicate, undefined)
  t.same(c.retention, { keepLast: 7, keepDaily: 7, keepWeekly: 4, minAgeHours: 24, safetyMarginHours: 24 })
  t.same(c.api, { host: '0.0.0.0', port: 7575, metricsAuth: false, bodyLimitBytes: 1048576 })
  t.equal(c.log.level, 'info')
})

t.test('the result is deep-frozen', async (t) => {
  const c = load('secondaries:\n  - name: dr\n    url: s3://dr-bucket/tm\n')
  t.ok(Object.isFrozen(c))
  t.ok(Object.isFrozen(c.clickhouse.databases.include))
  t.ok(Object.isFrozen(c.secondaries[0]?.s3))
  t.throws(() => {
    ;(c.api as { port: number }).port = 1
  }, TypeError)
})

t.test('a file is read, types checked, paths and URLs normalised', async (t) => {
  const c = load(
    [
      'repository:',
      '  url: backups/repo',
      '  encryption:',
      '    keyFile: keys/repo.key',
      'clickhouse:',
      '  url: https://ch.internal:8443',
      '  databases:',
      '    include: [default]',
      '  method: parts',
      '  dataPath: /var/lib/clickhouse',
      'schedules:',
      '  clickhouse:',
      '    full: "off"',
      '    incremental: "0 */5 * * * *"',
      '',
    ].join('\n'),
  )
  t.equal(c.repository.url, 'file:///srv/tidemark/backups/repo', 'a bare path becomes an absolute file URL')
  t.equal(c.repository.encryption.keyFile, '/srv/tidemark/keys/repo.key')
  t.equal(c.clickhouse.enabled, true, 'a configured server turns ClickHouse on')
  t.same(c.clickhouse.databases.include, ['default'])
  t.equal(c.clickhouse.method, 'parts')
  t.equal(c.schedules.clickhouse.full, undefined, '"off" disables a schedule')
  t.equal(c.schedules.clickhouse.incremental, '0 */5 * * * *', 'six fields (seconds) accepted')
})

t.test('an unknown key is rejected, naming the key path, file and line', async (t) => {
  const e = errorOf(() => load('clickhouse:\n  host: ch\n  prot: 9000\n'))
  t.equal(e.code, 'TM_ERR_CONFIG_INVALID')
  t.equal(e.exit, 2)
  t.match(e.message, 'clickhouse.prot')
  t.match(e.message, `file ${FILE} line 3`)
  t.match(e.message, 'unknown key')
  t.match(e.message, 'did you mean "port"')
  const top = errorOf(() => load('clickhous:\n  host: ch\n'))
  t.match(top.message, `clickhous (file ${FILE} line 1): unknown key`)
})

t.test('malformed YAML names the line and does not quote the text', async (t) => {
  const text = 'api:\n  port: 7575\nclickhouse:\n  password: "hunter2-secret\n  host: ch\n'
  const e = errorOf(() => load(text))
  t.equal(e.code, 'TM_ERR_CONFIG_PARSE')
  t.match(e.message, `file ${FILE} line `)
  t.match(e.message, /line [4-6]\b/)
  t.notMatch(e.message, 'hunter2')
  const dup = errorOf(() => load('api:\n  port: 1\n  port: 2\n'))
  t.match(dup.message, 'line 3')
  const top = errorOf(() => load('- a\n- b\n'))
  t.equal(top.code, 'TM_ERR_CONFIG_INVALID', 'a list at the top level')
})

t.test('wrong types name the key, the source and what is expected', async (t) => {
  const e = errorOf(() => load('api:\n  port: "7575"\n'))
  t.match(e.message, `api.port (file ${FILE} line 2): expected an integer from 0 to 65535, got "7575"`)
  const env = errorOf(() => load(undefined, { TIDEMARK_API_PORT: 'seventy' }))
  t.match(env.message, 'api.port (environment variable TIDEMARK_API_PORT): expected an integer')
  const tls = errorOf(() => load(undefined, { CLICKHOUSE_TLS: 'maybe' }))
  t.match(tls.message, 'clickhouse.tls (environment variable CLICKHOUSE_TLS): expected true or false')
  const sse = errorOf(() => load('repository:\n  s3:\n    sse: kms\n'))
  t.match(sse.message, 'repository.s3.sse')
  t.match(sse.message, '"none", "AES256", "aws:kms"')
  const section = errorOf(() => load('pipeline: 4\n'))
  t.match(section.message, 'pipeline (file')
  t.match(section.message, 'expected a mapping')
  const cron = errorOf(() => load('schedules:\n  prune: "61 * * * *"\n'))
  t.match(cron.message, 'schedules.prune')
  t.match(cron.message, 'cron expression')
  const fields = errorOf(() => load(undefined, { TIDEMARK_SCHEDULES_POSTGRES_BASE: '* * *' }))
  t.match(fields.message, 'schedules.postgres.base (environment variable TIDEMARK_SCHEDULES_POSTGRES_BASE)')
  t.match(fields.message, 'found 3 fields')
})

t.test('every problem is reported at once', async (t) => {
  const e = errorOf(() => load('api:\n  port: -1\nlog:\n  level: loud\nextra: 1\n'))
  t.match(e.message, '3 problems')
  t.match(e.message, 'api.port')
  t.match(e.message, 'log.level')
  t.match(e.message, 'extra')
  t.equal((e.details?.problems as string[]).length, 3)
})

t.test('the environment overrides the file', async (t) => {
  const file = 'clickhouse:\n  host: from-file\n  port: 9000\napi:\n  port: 8000\n'
  const c = load(file, { CLICKHOUSE_PORT: '8443', TIDEMARK_API_PORT: '9100', TIDEMARK_PIPELINE_CHUNK_SIZE_MIB: '8' })
  t.equal(c.clickhouse.host, 'from-file', 'keys not in the environment stay')
  t.equal(c.clickhouse.port, 8443)
  t.equal(c.api.port, 9100)
  t.equal(c.pipeline.chunkSizeMiB, 8, 'canonical names are derived from the key path')
  const both = load(undefined, { CLICKHOUSE_PORT: '8123', TIDEMARK_CLICKHOUSE_PORT: '18123' })
  t.equal(both.clickhouse.port, 18123, 'the tidemark name wins over the LangSmith alias')
  const empty = load('clickhouse:\n  user: admin\n', { CLICKHOUSE_USER: '' })
  t.equal(empty.clickhouse.user, 'admin', 'an empty variable counts as unset')
  const list = load(undefined, { TIDEMARK_CLICKHOUSE_DATABASES_EXCLUDE: 'tmp, scratch' })
  t.same(list.clickhouse.databases.exclude, ['tmp', 'scratch'], 'lists from comma-separated values')
})

t.test("LangSmith chart variable names are honoured", async (t) => {
  const c = load(undefined, {
    CLICKHOUSE_HOST: 'langsmith-clickhouse',
    CLICKHOUSE_PORT: '8123',
    CLICKHOUSE_USER: 'default',
    CLICKHOUSE_PASSWORD: 'ch-pass',
    CLICKHOUSE_DB: 'default',
    CLICKHOUSE_TLS: 'true',
    // The chart writes user:password@host:port/db without a scheme and without encoding.
    POSTGRES_DATABASE_URI: 'postgres:p@ss/w:rd@langsmith-postgres:5432/postgres?sslmode=disable',
  })
  t.equal(c.clickhouse.enabled, true)
  t.equal(c.clickhouse.host, 'langsmith-clickhouse')
  t.equal(c.clickhouse.password, 'ch-pass')
  t.equal(c.clickhouse.tls, true)
  t.equal(c.postgres.enabled, true)
  const u = new URL(c.postgres.url as string)
  t.equal(u.protocol, 'postgresql:')
  t.equal(u.hostname, 'langsmith-postgres')
  t.equal(u.port, '5432')
  t.equal(u.pathname, '/postgres')
  t.equal(decodeURIComponent(u.username), 'postgres')
  t.equal(decodeURIComponent(u.password), 'p@ss/w:rd', 'the raw password survives')
  const full = load(undefined, { POSTGRES_DATABASE_URI: 'postgresql://a:b%40c@db/x' })
  t.equal(full.postgres.url, 'postgresql://a:b%40c@db/x', 'a URL with a scheme is kept as it is')
  const s3 = load(undefined, {
    TIDEMARK_REPOSITORY: 's3://backups/tm',
    TIDEMARK_S3_ENDPOINT: 'http://minio:9000',
    TIDEMARK_S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'aws-secret',
    AWS_REGION: 'eu-west-1',
  })
  t.equal(s3.repository.url, 's3://backups/tm')
  t.same(s3.repository.s3, {
    endpoint: 'http://minio:9000',
    region: 'eu-west-1',
    forcePathStyle: true,
    accessKeyId: 'AKIDEXAMPLE',
    secretAccessKey: 'aws-secret',
    sse: 'none',
    partSizeMiB: 8,
    queueSize: 4,
  })
})

t.test('repository URLs: unsupported schemes are refused at load time', async (t) => {
  const e = errorOf(() => load(undefined, { TIDEMARK_REPOSITORY: 'ftp://host/x' }))
  t.match(e.message, 'repository.url (environment variable TIDEMARK_REPOSITORY): unsupported scheme ftp:')
})

t.test('secondaries: from the file or one environment variable; names unique', async (t) => {
  const c = load('secondaries:\n  - name: dr\n    url: s3://dr/tm\n    s3: { region: eu-west-1 }\n    retention: { keepLast: 3 }\n')
  t.equal(c.secondaries[0]?.s3.region, 'eu-west-1')
  t.equal(c.secondaries[0]?.s3.partSizeMiB, 8, 'defaults filled inside list items')
  t.equal(c.secondaries[0]?.retention?.keepDaily, 7)
  t.equal(c.secondaries[0]?.encryption, undefined)
  const env = load(undefined, { TIDEMARK_SECONDARIES: '[{"name":"dr","url":"file:///mnt/dr"}]' })
  t.equal(env.secondaries[0]?.url, 'file:///mnt/dr')
  const dup = errorOf(() => load('secondaries:\n  - { name: dr, url: /a }\n  - { name: dr, url: /b }\n'))
  t.match(dup.message, 'secondaries[1].name')
  t.match(dup.message, 'duplicate')
  const missing = errorOf(() => load('secondaries:\n  - url: /a\n'))
  t.match(missing.message, `secondaries[0].name (file ${FILE} line 2): missing`)
  const bad = errorOf(() => load(undefined, { TIDEMARK_SECONDARIES: '[{name: "dr}]' }))
  t.equal(bad.code, 'TM_ERR_CONFIG_PARSE')
  t.match(bad.message, 'TIDEMARK_SECONDARIES')
})

t.test('cross-field checks name every source involved', async (t) => {
  const e = errorOf(() => load('repository:\n  encryption:\n    keyFile: /k\n', { TIDEMARK_PASSPHRASE: 'pp-secret' }))
  t.match(e.message, 'repository.encryption')
  t.match(e.message, `file ${FILE} line 2`)
  t.match(e.message, 'environment variable TIDEMARK_PASSPHRASE')
  t.match(e.message, 'not both')
  const s3 = errorOf(() => load(undefined, { AWS_ACCESS_KEY_ID: 'AKID' }))
  t.match(s3.message, 'repository.s3 (environment variable AWS_ACCESS_KEY_ID)')
})

t.test('an enabled store needs a server', async (t) => {
  const ch = errorOf(() => load('clickhouse:\n  enabled: true\n'))
  t.match(ch.message, `clickhouse.enabled (file ${FILE} line 2): ClickHouse is enabled but no server is set`)
  const pg = errorOf(() => load(undefined, { TIDEMARK_POSTGRES_ENABLED: 'true' }))
  t.match(pg.message, 'postgres.enabled (environment variable TIDEMARK_POSTGRES_ENABLED)')
  const off = load('clickhouse:\n  enabled: false\n', { CLICKHOUSE_HOST: 'ch' })
  t.equal(off.clickhouse.enabled, false, 'an explicit false wins over a configured server')
})

t.test('clickhouseEndpoint: url as given, else from host, port and tls', async (t) => {
  t.equal(clickhouseEndpoint(load(undefined, { CLICKHOUSE_HOST: 'ch', CLICKHOUSE_PORT: '8443', CLICKHOUSE_TLS: 'true' }).clickhouse), 'https://ch:8443')
  t.equal(clickhouseEndpoint(load(undefined, { CLICKHOUSE_HOST: '::1' }).clickhouse), 'http://[::1]:8123')
  t.equal(clickhouseEndpoint(load('clickhouse:\n  url: http://x:1\n', { CLICKHOUSE_HOST: 'ch' }).clickhouse), 'http://x:1')
})
