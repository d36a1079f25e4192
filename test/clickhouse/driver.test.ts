import t from 'tap'
import { Readable } from 'node:stream'
import { isTidemarkError } from '../../src/errors.ts'
import { createHttpDriver } from '../../src/engine/clickhouse/http-driver.ts'
import type { ClickHouseDriver } from '../../src/engine/clickhouse/driver.ts'
import { startClickHouse } from '../harness/clickhouse.ts'
import { freePort } from '../harness/proc.ts'

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

const ch = await startClickHouse(t)
const settings = { url: ch.url, user: ch.user, password: ch.password, requestTimeoutMs: 30_000 }
const driver: ClickHouseDriver = createHttpDriver(settings)
t.teardown(() => driver.close())

t.test('rows, parameters bound client-side, version', async (t) => {
  const rows = await driver.queryRows<{ n: string; s: string }>(
    'SELECT number AS n, {s:String} AS s FROM numbers(10) WHERE has({ns:Array(UInt64)}, number) ORDER BY n',
    { s: "it's \\ 'quoted'", ns: [2, 5] },
  )
  t.same(rows, [{ n: '2', s: "it's \\ 'quoted'" }, { n: '5', s: "it's \\ 'quoted'" }], '64-bit integers arrive as strings')
  t.match(await driver.serverVersion(), /^\d+\.\d+/)
})

t.test('Native out, Native in: byte-identical round trip with settings per call', async (t) => {
  await driver.command('CREATE DATABASE rt')
  await driver.command("CREATE TABLE rt.a (d Date, k UInt32, s String, arr Array(Nullable(Int8))) ENGINE = MergeTree PARTITION BY d ORDER BY k")
  await driver.command("INSERT INTO rt.a SELECT toDate('2024-01-01') + number % 3, number, concat('v', toString(number), unhex('00FF0A')), [NULL, toInt8(number % 100)] FROM numbers(5000)")
  await driver.command('CREATE TABLE rt.b AS rt.a')
  const native = await collect(await driver.queryStream('SELECT * FROM rt.a ORDER BY k', 'Native'))
  t.ok(native.length > 5000, 'got a Native body')
  // The same block twice: deduplication would silently drop the second one; insert_deduplicate=0 must keep it.
  await driver.insertStream('INSERT INTO rt.b (d, k, s, arr) FORMAT Native', Readable.from([native]), { settings: { insert_deduplicate: 0 } })
  await driver.insertStream('INSERT INTO rt.b (d, k, s, arr) FORMAT Native', Readable.from([native]), { settings: { insert_deduplicate: 0 } })
  const [counts] = await driver.queryRows<{ a: string; b: string }>('SELECT (SELECT count() FROM rt.a) AS a, (SELECT count() FROM rt.b) AS b')
  t.same(counts, { a: '5000', b: '10000' })
  const again = await collect(await driver.queryStream('SELECT * FROM rt.b WHERE _part IN (SELECT name FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active) LIMIT 0', 'Native', { params: { db: 'rt', t: 'b' } }))
  t.ok(again.length < native.length, 'params work in queryStream too')
  const sums = await driver.queryRows<{ h: string }>("SELECT sum(cityHash64(toString(tuple(*)))) * 2 AS h FROM rt.a UNION ALL SELECT sum(cityHash64(toString(tuple(*)))) AS h FROM rt.b")
  t.equal(sums[0]?.h, sums[1]?.h, 'content of the copy equals the source twice')
})

t.test('an exception after the response started fails the stream', async (t) => {
  const stream = await driver.queryStream('SELECT number, throwIf(number = 300000) AS x FROM system.numbers LIMIT 400000', 'Native', { settings: { max_block_size: 1000 } })
  await t.rejects(collect(stream), { code: 'TM_ERR_CLICKHOUSE_QUERY', message: /throwIf|non zero/ })
})

t.test('a consumer that stops reading cancels the query', async (t) => {
  const stream = await driver.queryStream('SELECT number FROM system.numbers LIMIT 100000000', 'Native')
  for await (const _chunk of stream) break
  t.ok(stream.destroyed)
  t.same(await driver.queryRows('SELECT 1 AS x'), [{ x: 1 }], 'the driver is still usable')
})

t.test('query error → TM_ERR_CLICKHOUSE_QUERY with the server message', async (t) => {
  const err = await driver.command('SELECT * FROM nope.nope').catch((e: unknown) => e)
  t.ok(isTidemarkError(err, 'TM_ERR_CLICKHOUSE_QUERY'))
  t.match((err as Error).message, /doesn't exist|does not exist|UNKNOWN_DATABASE/)
  t.equal((err as { details: { serverCode: number } }).details.serverCode, 81)
})

t.test('wrong password → TM_ERR_CLICKHOUSE_AUTH, password never in the message', async (t) => {
  const bad = createHttpDriver({ ...settings, password: 'not-the-password-xyz' })
  t.teardown(() => bad.close())
  for (const call of [() => bad.queryRows('SELECT 1'), () => bad.command('SELECT 1'), () => bad.insertStream('INSERT INTO rt.b FORMAT Native', Readable.from([Buffer.alloc(0)]))]) {
    const err = await call().catch((e: unknown) => e)
    t.ok(isTidemarkError(err, 'TM_ERR_CLICKHOUSE_AUTH'), String(err))
    t.match((err as Error).message, /CLICKHOUSE_USER and CLICKHOUSE_PASSWORD/)
    t.notMatch((err as Error).message, /not-the-password-xyz/)
  }
})

t.test('closed port → TM_ERR_CLICKHOUSE_UNREACHABLE naming host:port', async (t) => {
  const port = await freePort()
  const dead = createHttpDriver({ ...settings, url: `http://127.0.0.1:${port}` })
  t.teardown(() => dead.close())
  const err = await dead.queryRows('SELECT 1').catch((e: unknown) => e)
  t.ok(isTidemarkError(err, 'TM_ERR_CLICKHOUSE_UNREACHABLE'), String(err))
  t.match((err as Error).message, `127.0.0.1:${port}`)
  t.notMatch((err as Error).message, ch.password)
})

t.test('an aborted call rejects with TM_ERR_ABORTED; a failed insert destroys its source', { timeout: 30_000 }, async (t) => {
  const ac = new AbortController()
  ac.abort()
  await t.rejects(driver.queryRows('SELECT 1', undefined, { signal: ac.signal }), { code: 'TM_ERR_ABORTED' })
  const late = new AbortController()
  const stream = await driver.queryStream('SELECT number FROM system.numbers', 'Native', { signal: late.signal })
  setTimeout(() => late.abort(), 100)
  await t.rejects(collect(stream), { code: 'TM_ERR_ABORTED' })
  const source = Readable.from((function* () {
    for (let i = 0; i < 1000; i++) yield Buffer.from('not native data at all\n'.repeat(100))
  })())
  await t.rejects(driver.insertStream('INSERT INTO rt.b (d, k, s, arr) FORMAT Native', source), { code: 'TM_ERR_CLICKHOUSE_QUERY' })
  t.ok(source.destroyed, 'source stopped')
  const endless = new AbortController()
  const forever = new Readable({ read() {} }) // a source that stalls: only the abort can end this insert
  setTimeout(() => endless.abort(), 100)
  await t.rejects(driver.insertStream('INSERT INTO rt.b (d, k, s, arr) FORMAT Native', forever, { signal: endless.signal }), { code: 'TM_ERR_ABORTED' })
})
