import t from 'tap'
import { createServer, type Socket } from 'node:net'
import { Writable } from 'node:stream'
import pino from 'pino'
import { testRepository } from './backup-helpers.ts'
import { backupClickHouse } from '../../src/engine/clickhouse/backup.ts'
import { createHttpDriver } from '../../src/engine/clickhouse/http-driver.ts'
import { listAll } from '../../src/sinks/sink.ts'

// Injected fault: a server that accepts connections and never answers (no ClickHouse needed).
const sockets = new Set<Socket>()
const silent = createServer((s) => {
  sockets.add(s)
  s.on('close', () => sockets.delete(s))
})
await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
t.teardown(async () => {
  for (const s of sockets) s.destroy()
  await new Promise((resolve) => silent.close(resolve))
})
const port = (silent.address() as { port: number }).port
const url = `http://127.0.0.1:${port}`

t.test('abort during discovery: rejects promptly with TM_ERR_ABORTED, the lease is released, the job logger carries the lines', async (t) => {
  const { repo } = await testRepository(t)
  // The driver's own timeout is the 600 s default: only the abort can end the wait.
  const driver = createHttpDriver({ url, user: 'default', password: '', requestTimeoutMs: 600_000 })
  t.teardown(() => driver.close())
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({ write: (c: Buffer, _e, cb) => { lines.push(JSON.parse(c.toString()) as Record<string, unknown>); cb() } })
  const logger = pino({ level: 'info' }, sink).child({ jobId: 'job-1', store: 'clickhouse' })
  const ac = new AbortController()
  const started = Date.now()
  const running = backupClickHouse({ driver, repo, url, parallelism: 1, signal: ac.signal, logger })
  // Wait until the backup's first request has reached the server: the abort then hits a request in flight.
  while (sockets.size === 0) await new Promise((r) => setTimeout(r, 20))
  ac.abort()
  await t.rejects(running, { code: 'TM_ERR_ABORTED' })
  t.ok(Date.now() - started < 5000, `returned ${Date.now() - started} ms after the start`)
  const locks: string[] = []
  for await (const o of listAll(repo.sink, 'locks/')) locks.push(o.key)
  t.same(locks, [], 'the lease was released')
  t.same(await repo.listManifestIds('clickhouse'), [], 'no manifest')
  // The lease can be taken again at once.
  const lease = await repo.lock('after the abort')
  await lease.release()
  const failed = lines.find((l) => l.msg === 'clickhouse backup failed')
  t.match(failed, { jobId: 'job-1', store: 'clickhouse', backupId: /-ch-|clickhouse/, code: 'TM_ERR_ABORTED' }, 'the failure line carries job, store and backup id')
  t.ok(lines.some((l) => l.msg === 'clickhouse backup started' && l.jobId === 'job-1'), 'a start line')
})
