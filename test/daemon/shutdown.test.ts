/**
 * The daemon as a real process (bin/tidemark daemon with a configuration file):
 * SIGTERM during a backup (and the next run, against a real ClickHouse), a second
 * signal, and the refusal to expose an API with no token. To hold a backup open,
 * ClickHouse is first a TCP server that accepts connections and never answers: an
 * injected fault, standing for no ClickHouse behaviour.
 */
import { createServer, type Socket } from 'node:net'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startClickHouse } from '../harness/clickhouse.ts'
import { captureOutput, freePort, removeTempDir, spawnServer, stopProcess, tempDir, waitFor } from '../harness/proc.ts'
import { BIN, cleanEnv, tidemark } from '../cli/run.ts'

const ADMIN = 'admin-token-5e1f'


async function blackhole(t: Test): Promise<number> {
  const sockets = new Set<Socket>()
  const server = createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy()
    server.close(() => r())
  }))
  return (server.address() as { port: number }).port
}

interface DaemonRun {
  child: ReturnType<typeof spawnServer>
  output: () => string
  exited: Promise<{ code: number | null; at: number }>
  api: (path: string, body?: unknown) => Promise<{ status: number; body: Record<string, any> }> // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Starts `bin/tidemark daemon` on `dir` (its repository under dir/repo) with every schedule off. */
async function startDaemon(t: Test, dir: string, o: { graceSeconds: number; clickhouse: Record<string, string> }): Promise<DaemonRun> {
  const port = await freePort()
  const config = [
    `repository: { url: ${join(dir, 'repo')}, lease: { ttlSeconds: 5 } }`,
    `clickhouse: ${JSON.stringify(o.clickhouse)}`,
    `schedules: { clickhouse: { incremental: "off", full: "off" }, postgres: { base: "off" }, prune: "off" }`,
    `api: { host: 127.0.0.1, port: ${port}, adminToken: ${ADMIN} }`,
    `daemon: { shutdownGraceSeconds: ${o.graceSeconds} }`,
  ].join('\n')
  await writeFile(join(dir, 'tidemark.yaml'), config)
  const child = spawnServer(BIN, ['daemon', '--config', join(dir, 'tidemark.yaml')], { cwd: dir, env: cleanEnv() })
  t.teardown(() => stopProcess(child, 1000))
  const output = captureOutput(child)
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.once('exit', (code) => resolve({ code, at: Date.now() })))
  await waitFor('the daemon to be up', async () => output().includes('tidemark daemon up'), 30_000)
  const api = async (path: string, body?: unknown) => {
    const init = body === undefined ? { headers: { authorization: `Bearer ${ADMIN}` } } : { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }
    const res = await fetch(`http://127.0.0.1:${port}${path}`, init)
    return { status: res.status, body: (await res.json()) as Record<string, any> } // eslint-disable-line @typescript-eslint/no-explicit-any
  }
  return { child, output, exited, api }
}

/** A daemon whose ClickHouse never answers, with a backup running. */
async function daemonWithStuckBackup(t: Test, graceSeconds: number) {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  const d = await startDaemon(t, dir, { graceSeconds, clickhouse: { url: `http://127.0.0.1:${await blackhole(t)}` } })
  const res = await d.api('/v1/backups', { source: 'clickhouse' })
  t.equal(res.status, 202)
  await waitFor('the backup to run', async () => (await d.api(`/v1/jobs/${res.body.job.id}`)).body.job.state === 'running')
  return { dir, ...d }
}

t.test('SIGTERM during a backup: the job is aborted after the grace period, no manifest, exit 0; the next run succeeds', async (t) => {
  const { dir, child, output, exited } = await daemonWithStuckBackup(t, 1)
  const sent = Date.now()
  child.kill('SIGTERM')
  const { code, at } = await exited
  t.equal(code, 0, code === 0 ? 'exit 0' : output())
  t.ok(at - sent >= 1000, 'waited for the grace period')
  t.ok(at - sent < 1000 + 5000 + 3000, `exited within grace + abort wait (${at - sent} ms)`)
  t.match(output(), /grace period over: aborting running jobs/)
  const manifests = async () => readdir(join(dir, 'repo', 'manifests', 'clickhouse')).catch(() => [] as string[])
  t.same(await manifests(), [], 'no manifest for the unfinished backup')

  // The next run, against a ClickHouse that answers, on the same repository.
  const ch = await startClickHouse(t)
  await ch.query('CREATE DATABASE s')
  await ch.query('CREATE TABLE s.t (id UInt64) ENGINE = MergeTree ORDER BY id')
  await ch.query('INSERT INTO s.t SELECT number FROM system.numbers LIMIT 100')
  const next = await startDaemon(t, dir, { graceSeconds: 5, clickhouse: { url: ch.url, user: ch.user, password: ch.password } })
  // The stuck run's writer lease outlives its process until it expires (5 s here): runs fail with TM_ERR_REPO_LOCKED until then.
  const job = await waitFor('a backup to succeed', async () => {
    const r = await next.api('/v1/backups', { source: 'clickhouse' })
    if (r.status !== 202) return undefined
    const j = await waitFor('the job to end', async () => {
      const v = (await next.api(`/v1/jobs/${r.body.job.id}`)).body.job
      return v.state === 'running' || v.state === 'queued' ? undefined : v
    }, 30_000)
    return j.state === 'succeeded' ? j : undefined
  }, 30_000, 500)
  t.same(await manifests(), [`${job.result.id}.json`], 'the next run committed its backup')
})

t.test('a second signal exits at once', async (t) => {
  const { child, output, exited } = await daemonWithStuckBackup(t, 60)
  child.kill('SIGTERM')
  await waitFor('the shutdown to wait for the job', async () => output().includes('waiting for running jobs to finish'), 10_000)
  const sent = Date.now()
  child.kill('SIGTERM')
  const { code, at } = await exited
  t.equal(code, 143, '128 + SIGTERM')
  t.ok(at - sent < 2000, `exited at once (${at - sent} ms)`)
})

t.test('refuses to start with the API on a non-loopback address and no token', async (t) => {
  const r = await tidemark(['daemon'], { env: { TIDEMARK_API_HOST: '0.0.0.0' } })
  t.equal(r.code, 2)
  t.match(r.stderr, /^TM_ERR_CONFIG_INVALID .*no API token is configured/)
})
