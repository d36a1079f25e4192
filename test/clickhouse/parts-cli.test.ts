import t from 'tap'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { startClickHouse } from '../harness/clickhouse.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { tidemark } from '../cli/run.ts'

const [source, target] = await Promise.all([startClickHouse(t), startClickHouse(t)])
const root = await tempDir('tidemark-chpcli-')
t.teardown(() => removeTempDir(root))
const repo = pathToFileURL(root).href
const base = { CLICKHOUSE_HOST: '127.0.0.1', CLICKHOUSE_PORT: String(source.httpPort), CLICKHOUSE_USER: source.user, CLICKHOUSE_PASSWORD: source.password }
const targetUrl = `http://${target.user}:${encodeURIComponent(target.password)}@127.0.0.1:${target.httpPort}`

await source.query('CREATE DATABASE ls')
await source.query('CREATE TABLE ls.runs (d Date, id UInt64, s String) ENGINE = MergeTree PARTITION BY d ORDER BY id')
await source.query("INSERT INTO ls.runs SELECT toDate('2024-01-01') + number % 3, number, toString(number) FROM numbers(300)")

t.test('method from the environment; restore needs --target-data-path', async (t) => {
  t.equal((await tidemark(['repo', 'init', '--repo', repo])).code, 0)
  const auto = await tidemark(['backup', 'clickhouse', '--repo', repo, '--json'], { env: { ...base, TIDEMARK_CLICKHOUSE_METHOD: 'auto', TIDEMARK_CLICKHOUSE_DATA_PATH: join(target.dataDir, 'data') } })
  t.equal(auto.code, 0, auto.stderr)
  t.equal(JSON.parse(auto.stdout).method, 'clickhouse-logical', 'auto with another server\'s data path: logical')
  const b = await tidemark(['backup', 'clickhouse', '--repo', repo, '--json'], { env: { ...base, TIDEMARK_CLICKHOUSE_METHOD: 'parts', TIDEMARK_CLICKHOUSE_DATA_PATH: join(source.dataDir, 'data') } })
  t.equal(b.code, 0, b.stderr)
  const m = JSON.parse(b.stdout)
  t.match(m, { method: 'clickhouse-parts', stats: { rows: 300 } })
  const refused = await tidemark(['restore', 'clickhouse', '--backup', m.id, '--target-url', targetUrl, '--repo', repo], { env: base })
  t.equal(refused.code, 1)
  t.match(refused.stderr, /TM_ERR_CLICKHOUSE_DATA_PATH.*--target-data-path/s)
  const r = await tidemark(['restore', 'clickhouse', '--backup', m.id, '--target-url', targetUrl, '--target-data-path', join(target.dataDir, 'data'), '--repo', repo, '--json'], { env: base })
  t.equal(r.code, 0, r.stderr)
  t.match(JSON.parse(r.stdout), { backupId: m.id, ok: true, rowsLoaded: 300 })
  t.equal((await target.query('SELECT count(), sum(id) FROM ls.runs')).trim(), (await source.query('SELECT count(), sum(id) FROM ls.runs')).trim())
})
