import t from 'tap'
import { access } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { startClickHouse } from '../harness/clickhouse.ts'
import { freePort } from '../harness/proc.ts'
import { createHttpDriver } from '../../src/engine/clickhouse/http-driver.ts'

t.test('two servers at once, independent, stopped and cleaned up', async (t) => {
  const started = Date.now()
  const [a, b] = await Promise.all([startClickHouse(t), startClickHouse(t)])
  t.ok(Date.now() - started < 15_000, `both started in ${Date.now() - started} ms`)
  t.not(a.httpPort, b.httpPort)
  t.not(a.dataDir, b.dataDir)
  await a.query('CREATE TABLE default.only_a (x UInt8) ENGINE = Log')
  t.match(await a.query("SELECT count() FROM system.tables WHERE name = 'only_a'"), /^1/)
  t.match(await b.query("SELECT count() FROM system.tables WHERE name = 'only_a'"), /^0/)
  await t.rejects(a.query('SELECT * FROM nope'), /clickhouse 404|doesn't exist/)
  const noPassword = await fetch(`${a.url}/?query=SELECT%201`)
  t.equal((await noPassword.text()).trim(), '1', 'user default without password exists')
  await a.stop()
  await a.stop() // idempotent
  await t.rejects(fetch(`${a.url}/?query=SELECT%201`), 'port closed after stop')
  await t.rejects(access(a.dataDir), 'directory removed after stop')
  t.equal((await b.query('SELECT 1')).trim(), '1', 'the other server is unaffected')
})

t.test('killed mid-stream: the reader gets TM_ERR_CLICKHOUSE_UNREACHABLE; restart keeps the data', async (t) => {
  const ch = await startClickHouse(t)
  const driver = createHttpDriver({ url: ch.url, user: ch.user, password: ch.password, requestTimeoutMs: 10_000 })
  t.teardown(() => driver.close())
  await driver.command('CREATE TABLE default.keep (x UInt64) ENGINE = MergeTree ORDER BY x')
  await driver.command('INSERT INTO default.keep SELECT number FROM numbers(1000)')
  const stream = await driver.queryStream('SELECT number FROM system.numbers', 'Native', { settings: { max_block_size: 1000 } })
  const reading = (async () => {
    for await (const _chunk of stream) await new Promise((r) => setTimeout(r, 5))
  })()
  await new Promise((r) => setTimeout(r, 200))
  await ch.kill()
  await t.rejects(reading, { code: 'TM_ERR_CLICKHOUSE_UNREACHABLE' })
  await t.rejects(driver.queryRows('SELECT 1'), { code: 'TM_ERR_CLICKHOUSE_UNREACHABLE' })
  await ch.restart()
  t.same(await driver.queryRows('SELECT count() AS n FROM default.keep'), [{ n: '1000' }])
})

t.test('a port taken between choosing and binding: the server starts on other ports at once', async (t) => {
  // It accepts and never answers: the harness must not wait on it for ever either.
  const held: Socket[] = []
  const taken = createServer((socket) => void held.push(socket))
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of held) socket.destroy()
    taken.close()
  })
  const busy = (taken.address() as { port: number }).port
  let calls = 0
  const started = Date.now()
  const ch = await startClickHouse(t, { port: () => (calls++ === 0 ? Promise.resolve(busy) : freePort()) })
  t.ok(Date.now() - started < 20_000, `started in ${Date.now() - started} ms, without waiting out the first attempt`)
  t.not(ch.httpPort, busy)
  t.equal(calls, 6, 'a second set of three ports')
  t.equal((await ch.query('SELECT 1')).trim(), '1')
})
