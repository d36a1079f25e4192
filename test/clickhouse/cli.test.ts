import t from 'tap'
import { pathToFileURL } from 'node:url'
import { startClickHouse } from '../harness/clickhouse.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { tidemark } from '../cli/run.ts'

const [source, target] = await Promise.all([startClickHouse(t), startClickHouse(t)])
const root = await tempDir('tidemark-chcli-')
t.teardown(() => removeTempDir(root))
const repo = pathToFileURL(root).href
// The sidecar's environment: LangSmith's own variable names.
const env = { CLICKHOUSE_HOST: '127.0.0.1', CLICKHOUSE_PORT: String(source.httpPort), CLICKHOUSE_USER: source.user, CLICKHOUSE_PASSWORD: source.password }
const targetUrl = `http://${target.user}:${encodeURIComponent(target.password)}@127.0.0.1:${target.httpPort}`

await source.query('CREATE DATABASE ls')
await source.query('CREATE TABLE ls.runs (d Date, id UInt64, s String) ENGINE = MergeTree PARTITION BY d ORDER BY id')
await source.query("INSERT INTO ls.runs SELECT toDate('2024-01-01') + number % 3, number, toString(number) FROM numbers(300)")
await source.query('CREATE TABLE ls.lg (k String) ENGINE = Log')
await source.query("INSERT INTO ls.lg VALUES ('a'), ('b')")

const json = (s: string) => JSON.parse(s)

t.test('backup → list → restore through bin/tidemark', async (t) => {
  t.equal((await tidemark(['repo', 'init', '--repo', repo])).code, 0)
  const b1 = await tidemark(['backup', 'clickhouse', '--repo', repo, '--json'], { env })
  t.equal(b1.code, 0, b1.stderr)
  const first = json(b1.stdout)
  t.match(first, { id: /^\d{8}T\d{6}Z-ch-[0-9a-f]{4}$/, method: 'clickhouse-logical', full: false, stats: { partitionsTotal: 4, partitionsExported: 4, partitionsReused: 0, rows: 302 } })

  await source.query("INSERT INTO ls.runs VALUES ('2024-01-02', 1000, 'x')")
  const b2 = await tidemark(['backup', 'clickhouse', '--repo', repo], { env })
  t.equal(b2.code, 0, b2.stderr)
  t.match(b2.stdout, /^ClickHouse backup \S+ committed \(incremental, server [\d.]+\)\n {2}partitions: 4 total, 1 exported \(1 as a delta of the rows added\), 3 reused\n {2}rows: 303;/)

  const list = await tidemark(['list', '--source', 'clickhouse', '--repo', repo, '--json'])
  t.equal(list.code, 0, list.stderr)
  const backups = json(list.stdout).sources.clickhouse.backups
  t.same(backups.map((b: { id: string }) => b.id)[0], first.id)
  t.equal(backups.length, 2)
  t.equal(backups[0].restorePoint, first.endedAt)
  const text = await tidemark(['list', '--source', 'clickhouse', '--repo', repo])
  t.match(text.stdout, new RegExp(`${first.id}  restore point ${first.endedAt.replace(/[.]/g, '\\.')}  incremental`))

  // --at the first backup's restore point selects the first backup: 302 rows, not 303.
  const r = await tidemark(['restore', 'clickhouse', '--at', first.endedAt, '--target-url', targetUrl, '--repo', repo, '--json'], { env })
  t.equal(r.code, 0, r.stderr)
  const report = json(r.stdout)
  t.match(report, { backupId: first.id, ok: true, objectsLoaded: 4, rowsLoaded: 302 })
  t.same(report.tables.map((x: { table: string; status: string }) => `${x.table} ${x.status}`), ['ls.lg ok', 'ls.runs ok'])
  t.equal((await target.query('SELECT count() FROM ls.runs')).trim(), '300')
})

t.test('bad input through the CLI: clear codes, nothing changed', async (t) => {
  const tablesBefore = await target.query('SELECT database, name FROM system.tables ORDER BY database, name')
  const run = (args: string[]) => tidemark(['restore', 'clickhouse', ...args, '--target-url', targetUrl, '--repo', repo, '--json'], { env })
  const err = (r: { stderr: string }) => json(r.stderr).error

  const notEmpty = await run(['--at', 'latest'])
  t.equal(notEmpty.code, 1)
  t.match(err(notEmpty), { code: 'TM_ERR_RESTORE_TARGET_NOT_EMPTY', message: /ls\.runs holds 300 rows/ })

  const unknownId = await run(['--backup', '20200101T000000Z-ch-0000'])
  t.equal(unknownId.code, 1)
  t.match(err(unknownId), { code: 'TM_ERR_MANIFEST_NOT_FOUND' })

  const early = await run(['--at', '2000-01-01T00:00:00Z'])
  t.equal(early.code, 1)
  t.match(err(early), { code: 'TM_ERR_RESTORE_OUT_OF_WINDOW', message: /earliest restore point is/ })

  const table = await run(['--at', 'latest', '--tables', 'ls.nope', '--rename-db', 'ls=ls2'])
  t.equal(table.code, 2)
  t.match(err(table), { code: 'TM_ERR_RESTORE_UNKNOWN_TABLE' })

  const both = await run(['--at', 'latest', '--backup', '20200101T000000Z-ch-0000'])
  t.equal(both.code, 2)
  t.match(err(both), { code: 'TM_ERR_USAGE' })

  const wrong = await tidemark(['backup', 'clickhouse', '--repo', repo, '--json'], { env: { ...env, CLICKHOUSE_PASSWORD: 'wrong' } })
  t.equal(wrong.code, 1)
  t.match(err(wrong), { code: 'TM_ERR_CLICKHOUSE_AUTH', message: /CLICKHOUSE_PASSWORD/ })
  t.notMatch(wrong.stderr, source.password, 'no password in the output')

  const down = await tidemark(['backup', 'clickhouse', '--repo', repo, '--json'], { env: { ...env, CLICKHOUSE_PORT: '9' } })
  t.equal(down.code, 1)
  t.match(err(down), { code: 'TM_ERR_CLICKHOUSE_UNREACHABLE' })

  t.equal(await target.query('SELECT database, name FROM system.tables ORDER BY database, name'), tablesBefore, 'target unchanged')
  const list = json((await tidemark(['list', '--source', 'clickhouse', '--repo', repo, '--json'])).stdout)
  t.equal(list.sources.clickhouse.backups.length, 2, 'no backup recorded by the failures')
})
