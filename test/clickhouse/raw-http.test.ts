// The Native (bulk) path of the driver runs on raw-http.ts: its failures must map exactly as the client's do.
import t from 'tap'
import { createServer, type Socket } from 'node:net'
import type { Readable } from 'node:stream'
import { isTidemarkError } from '../../src/errors.ts'
import { createHttpDriver } from '../../src/engine/clickhouse/http-driver.ts'
import { startClickHouse } from '../harness/clickhouse.ts'
import { freePort } from '../harness/proc.ts'
import { readAllInto } from '../harness/read-into.ts'

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

const ch = await startClickHouse(t)
const settings = { url: ch.url, user: ch.user, password: ch.password, requestTimeoutMs: 30_000 }
const driver = createHttpDriver(settings)
t.teardown(() => driver.close())

t.test('Native body equals the one the TSV path describes; settings reach the server', async (t) => {
  const body = await collect(await driver.queryStream('SELECT number AS n, toString(number) AS s FROM system.numbers LIMIT 100000', 'Native', { settings: { max_block_size: 1000 } }))
  // Native: per block, varint column count, varint row count; 1000-row blocks prove the setting was applied.
  t.equal(body[1], 0xe8, 'first block holds 1000 rows (varint 0xe8 0x07)')
  t.equal(body[2], 0x07)
  t.ok(body.length > 100000 * 8, `a whole body (${body.length} bytes)`)
})

t.test('read with readInto (straight into the caller\'s buffers), the body is the one the stream gives', async (t) => {
  const sql = 'SELECT number AS n, toString(number) AS s FROM system.numbers LIMIT 300000'
  const streamed = await collect(await driver.queryStream(sql, 'Native'))
  t.ok(streamed.length > 3_000_000)
  t.same(await readAllInto(await driver.queryStream(sql, 'Native')), streamed, 'read in 1 MiB buffers')
  t.same(await readAllInto(await driver.queryStream(sql, 'Native'), 1000), streamed, 'read in buffers smaller than a socket read')
})

t.test('readInto: an exception after the response started fails the read', async (t) => {
  const body = await driver.queryStream('SELECT number, throwIf(number = 300000) AS x FROM system.numbers LIMIT 400000', 'Native', { settings: { max_block_size: 1000 } })
  await t.rejects(readAllInto(body), { code: 'TM_ERR_CLICKHOUSE_QUERY', message: /throwIf|non zero/ })
})

t.test('server errors: query, auth, closed port', async (t) => {
  const q = await driver.queryStream('SELECT * FROM nope.nope', 'Native').catch((e: unknown) => e)
  t.ok(isTidemarkError(q, 'TM_ERR_CLICKHOUSE_QUERY'), String(q))
  t.equal((q as { details: { serverCode: number } }).details.serverCode, 81)
  const bad = createHttpDriver({ ...settings, password: 'not-the-password-xyz' })
  t.teardown(() => bad.close())
  const auth = await bad.queryStream('SELECT 1', 'Native').catch((e: unknown) => e)
  t.ok(isTidemarkError(auth, 'TM_ERR_CLICKHOUSE_AUTH'), String(auth))
  t.notMatch((auth as Error).message, /not-the-password-xyz/)
  const port = await freePort()
  const dead = createHttpDriver({ ...settings, url: `http://127.0.0.1:${port}` })
  t.teardown(() => dead.close())
  const down = await dead.queryStream('SELECT 1', 'Native').catch((e: unknown) => e)
  t.ok(isTidemarkError(down, 'TM_ERR_CLICKHOUSE_UNREACHABLE'), String(down))
})

t.test('a chunked body cut before its last chunk fails the stream (injected fault: a fake server)', async (t) => {
  const sockets = new Set<Socket>()
  const fake = createServer((s) => {
    sockets.add(s)
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n4\r\nef'))
  })
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => fake.close(resolve))
  })
  const d = createHttpDriver({ ...settings, url: `http://127.0.0.1:${(fake.address() as { port: number }).port}` })
  t.teardown(() => d.close())
  const stream = await d.queryStream('SELECT 1', 'Native')
  const err = await collect(stream).catch((e: unknown) => e)
  t.ok(isTidemarkError(err, 'TM_ERR_CLICKHOUSE_UNREACHABLE'), `truncated body → ${String(err)}`)
  const direct = await readAllInto(await d.queryStream('SELECT 1', 'Native')).catch((e: unknown) => e)
  t.ok(isTidemarkError(direct, 'TM_ERR_CLICKHOUSE_UNREACHABLE'), `truncated body, read with readInto → ${String(direct)}`)
})

t.test('abort before the response starts', async (t) => {
  const sockets = new Set<Socket>()
  const fake = createServer((s) => void sockets.add(s))
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => fake.close(resolve))
  })
  const d = createHttpDriver({ ...settings, url: `http://127.0.0.1:${(fake.address() as { port: number }).port}`, requestTimeoutMs: 600_000 })
  t.teardown(() => d.close())
  const ac = new AbortController()
  setTimeout(() => ac.abort(), 100)
  const started = Date.now()
  const err = await d.queryStream('SELECT 1', 'Native', { signal: ac.signal }).catch((e: unknown) => e)
  t.ok(isTidemarkError(err, 'TM_ERR_ABORTED'), String(err))
  t.ok(Date.now() - started < 5000, 'promptly')
})
