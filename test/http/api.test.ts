import { createServer } from 'node:http'
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { build } from '../../src/http/app.ts'
import { commitTestBackup, gate, testDaemon, testPostgres, type Calls } from '../daemon/helpers.ts'
import { waitFor } from '../harness/proc.ts'
import { parseProm } from './prom.ts'

const READ = 'read-token-1c9e'
const ADMIN = 'admin-token-77b2'
const auth = (token: string) => ({ authorization: `Bearer ${token}` })


/** The body is {error:{code,message}} with the expected status and code. */
function isError(t: Test, res: LightMyRequestResponse, status: number, code: string): Record<string, unknown> {
  t.equal(res.statusCode, status, `status ${status}: ${res.body}`)
  const body = res.json() as { error: { code: string; message: string; details?: Record<string, unknown> } }
  t.equal(body.error.code, code)
  t.type(body.error.message, 'string')
  t.ok(body.error.message.length > 0)
  return body.error.details ?? {}
}

/** The job once it has ended, read through the API. */
function finished(app: ReturnType<typeof build>, id: string): Promise<Record<string, unknown>> {
  return waitFor(`job ${id} to end`, async () => {
    const j = (await app.inject({ url: `/v1/jobs/${id}`, headers: auth(READ) })).json().job as Record<string, unknown>
    return j.state === 'queued' || j.state === 'running' ? undefined : j
  }, 10_000, 10)
}

async function setup(t: Test, o: { metricsAuth?: boolean; bodyLimitBytes?: number; postgres?: boolean; hold?: ReturnType<typeof gate>; restoreHold?: ReturnType<typeof gate>; calls?: Calls } = {}) {
  const postgres = o.postgres ? testPostgres({ from: '2026-11-28T08:00:00.000Z', to: '2026-11-28T08:59:00.000Z' }, o.calls) : undefined
  const d = await testDaemon(t, { postgres, hold: o.hold, restoreHold: o.restoreHold, calls: o.calls })
  const app = build({ engine: d.daemon, auth: { readToken: READ, adminToken: ADMIN, metricsAuth: o.metricsAuth ?? false }, logger: false, bodyLimitBytes: o.bodyLimitBytes })
  t.teardown(() => app.close())
  return { ...d, app }
}

t.test('health, readiness, openapi are open; readiness says which store is down', async (t) => {
  const { app } = await setup(t, { postgres: true })
  const h = await app.inject({ url: '/healthz' })
  t.equal(h.statusCode, 200)
  t.same(h.json(), { status: 'ok', version: '0.0.0-test' })
  const r = await app.inject({ url: '/readyz' })
  t.equal(r.statusCode, 503)
  const ready = r.json() as { ready: boolean; checks: Record<string, { ok: boolean; error?: string }> }
  t.equal(ready.ready, false)
  t.equal(ready.checks.repository?.ok, true)
  t.equal(ready.checks.clickhouse?.ok, true)
  t.match(ready.checks.postgres?.error, /TM_ERR_POSTGRES_UNREACHABLE/)

  const doc = (await app.inject({ url: '/openapi.json' })).json() as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { additionalProperties?: boolean } }> }; parameters: unknown[] }>> }
  t.equal(doc.openapi, '3.0.3')
  t.same(Object.keys(doc.paths).sort(), ['/healthz', '/metrics', '/readyz', '/v1/backups', '/v1/backups/{id}', '/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/cancel', '/v1/repository', '/v1/restore-points', '/v1/restores'])
  t.equal(doc.paths['/v1/restores']?.post?.requestBody?.content['application/json']?.schema.additionalProperties, false, 'the body schema fastify validates with is the one published')
  t.ok(doc.paths['/v1/backups']?.get?.parameters.length === 3)
})

t.test('readiness is 200 when every dependency answers', async (t) => {
  const { app } = await setup(t)
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 200)
})

t.test('auth: missing or wrong token 401, read token on a write route 403, read token reads, admin token does everything', async (t) => {
  const { app } = await setup(t)
  isError(t, await app.inject({ url: '/v1/jobs' }), 401, 'TM_ERR_AUTH_REQUIRED')
  isError(t, await app.inject({ url: '/v1/jobs', headers: auth('nope') }), 401, 'TM_ERR_AUTH_REQUIRED')
  isError(t, await app.inject({ url: '/v1/jobs', headers: { authorization: ADMIN } }), 401, 'TM_ERR_AUTH_REQUIRED')
  t.equal((await app.inject({ url: '/v1/jobs', headers: auth(READ) })).statusCode, 200)
  t.equal((await app.inject({ url: '/v1/jobs', headers: auth(ADMIN) })).statusCode, 200)
  isError(t, await app.inject({ method: 'POST', url: '/v1/backups', headers: auth(READ), payload: { source: 'clickhouse' } }), 403, 'TM_ERR_AUTH_FORBIDDEN')
  isError(t, await app.inject({ method: 'POST', url: '/v1/backups', payload: { source: 'clickhouse' } }), 401, 'TM_ERR_AUTH_REQUIRED')
  isError(t, await app.inject({ url: '/v1/nothing-here', headers: auth(READ) }), 404, 'TM_ERR_ROUTE_NOT_FOUND')
})

t.test('/metrics parses as Prometheus text and is open unless api.metricsAuth', async (t) => {
  const { app, daemon } = await setup(t, { postgres: true })
  const job = daemon.startBackup('clickhouse', false)
  await daemon.jobs.idle()
  t.equal(daemon.getJob(job.id).state, 'succeeded')
  const res = await app.inject({ url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const samples = parseProm(res.body)
  const get = (name: string, labels: Record<string, string> = {}) => samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
  t.equal(get('tidemark_repository_up'), 1)
  t.equal(get('tidemark_store_up', { store: 'clickhouse' }), 1)
  t.equal(get('tidemark_store_up', { store: 'postgres' }), 0, 'an unreachable store is reported')
  t.equal(get('tidemark_backup_last_bytes', { store: 'clickhouse' }), 123)
  t.equal(get('tidemark_backup_last_duration_seconds', { store: 'clickhouse' }), 1)
  t.equal(get('tidemark_backup_last_success_timestamp_seconds', { store: 'clickhouse' }), Date.parse('2026-11-28T09:00:01Z') / 1000)
  t.equal(get('tidemark_rpo_seconds', { store: 'clickhouse' }), 0, 'the manual clock stands at the backup start: RPO clamps at 0')
  t.equal(get('tidemark_rpo_seconds', { store: 'postgres' }), 60, 'now minus the end of the recovery window')
  t.equal(get('tidemark_jobs_total', { kind: 'backup', store: 'clickhouse', state: 'succeeded' }), 1)
  t.equal(get('tidemark_backup_failures_total', { store: 'postgres' }), 0)

  const { app: locked } = await setup(t, { metricsAuth: true })
  isError(t, await locked.inject({ url: '/metrics' }), 401, 'TM_ERR_AUTH_REQUIRED')
  t.equal((await locked.inject({ url: '/metrics', headers: auth(READ) })).statusCode, 200)
})

t.test('backups: list with filters, one by id, bad input', async (t) => {
  const { app, repo } = await setup(t)
  const a = await commitTestBackup(repo, 'clickhouse', new Date('2026-11-28T08:00:00Z'), new Date('2026-11-28T08:10:00Z'))
  const b = await commitTestBackup(repo, 'clickhouse', new Date('2026-11-28T08:30:00Z'), new Date('2026-11-28T08:40:00Z'))
  const list = (q: string) => app.inject({ url: `/v1/backups${q}`, headers: auth(READ) })
  t.same((await list('')).json().backups.map((x: { id: string }) => x.id), [a.id, b.id])
  t.same((await list('?from=2026-11-28T08:20:00Z')).json().backups.map((x: { id: string }) => x.id), [b.id])
  t.same((await list('?to=2026-11-28T09:20:00%2B01:00&source=clickhouse')).json().backups.map((x: { id: string }) => x.id), [a.id], 'an offset other than Z')
  t.same((await list('?source=postgres')).json().backups, [])
  const d1 = isError(t, await list('?from=2026-11-28T08:20:00'), 400, 'TM_ERR_USAGE')
  t.match(d1.accepted, /ISO 8601 with an offset/, 'a time without offset: 400 naming the accepted format')
  isError(t, await list('?from=yesterday'), 400, 'TM_ERR_USAGE')
  isError(t, await list('?from=2026-11-28T09:00:00Z&to=2026-11-28T08:00:00Z'), 400, 'TM_ERR_USAGE')
  isError(t, await list('?colour=blue'), 400, 'TM_ERR_USAGE')
  isError(t, await list('?source=mysql'), 400, 'TM_ERR_USAGE')

  const one = await app.inject({ url: `/v1/backups/${a.id}`, headers: auth(READ) })
  t.equal(one.statusCode, 200)
  t.equal(one.json().backup.id, a.id)
  t.equal(one.json().backup.manifest.method, 'test')
  isError(t, await app.inject({ url: '/v1/backups/20261128T000000Z-ch-ffff', headers: auth(READ) }), 404, 'TM_ERR_MANIFEST_NOT_FOUND')
  isError(t, await app.inject({ url: '/v1/backups/not-an-id', headers: auth(READ) }), 404, 'TM_ERR_MANIFEST_NOT_FOUND')
})

t.test('POST /v1/backups: 202 with a job; 409 while it runs; 400 for bad bodies; 413 over the limit', async (t) => {
  const hold = gate()
  const { app, repo } = await setup(t, { hold, bodyLimitBytes: 2048 })
  const post = (payload: unknown, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url: '/v1/backups', headers: { ...auth(ADMIN), ...headers }, payload: payload as string })
  const res = await post({ source: 'clickhouse', full: true })
  t.equal(res.statusCode, 202)
  const job = res.json().job as { id: string; kind: string; store: string; params: { full: boolean } }
  t.match(job, { kind: 'backup', store: 'clickhouse', params: { full: true } })
  const busy = isError(t, await post({ source: 'clickhouse' }), 409, 'TM_ERR_JOB_BUSY')
  t.equal(busy.running, job.id)
  isError(t, await post({ source: 'postgres' }), 400, 'TM_ERR_STORE_NOT_CONFIGURED')
  isError(t, await post({ source: 'clickhouse', colour: 'blue' }), 400, 'TM_ERR_USAGE')
  isError(t, await post({ full: true }), 400, 'TM_ERR_USAGE')
  isError(t, await post('{"source": "clickhouse"', { 'content-type': 'application/json' }), 400, 'TM_ERR_USAGE')
  isError(t, await post({ source: 'clickhouse', pad: 'x'.repeat(4096) }), 413, 'TM_ERR_BODY_TOO_LARGE')
  hold.open()
  const final = await finished(app, job.id) as { state: string; result: { id: string } }
  t.equal(final.state, 'succeeded')
  t.same(await repo.listManifestIds('clickhouse'), [final.result.id], 'the backup was committed; the refused requests changed nothing')
})

t.test('jobs: list, get, cancel (202), cancel of a finished job 409, unknown 404', async (t) => {
  const hold = gate()
  const { app, repo } = await setup(t, { hold })
  const job = (await app.inject({ method: 'POST', url: '/v1/backups', headers: auth(ADMIN), payload: { source: 'clickhouse' } })).json().job as { id: string }
  const listed = (await app.inject({ url: '/v1/jobs?kind=backup', headers: auth(READ) })).json().jobs as { id: string }[]
  t.same(listed.map((j) => j.id), [job.id])
  isError(t, await app.inject({ url: '/v1/jobs?state=exploded', headers: auth(READ) }), 400, 'TM_ERR_USAGE')
  isError(t, await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel`, headers: auth(READ) }), 403, 'TM_ERR_AUTH_FORBIDDEN')
  const c = await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel`, headers: auth(ADMIN) })
  t.equal(c.statusCode, 202)
  const after = await finished(app, job.id) as { state: string; error: { code: string } }
  t.equal(after.state, 'cancelled')
  t.equal(after.error.code, 'TM_ERR_ABORTED')
  t.same(await repo.listManifestIds('clickhouse'), [], 'a cancelled backup commits nothing')
  isError(t, await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/cancel`, headers: auth(ADMIN) }), 409, 'TM_ERR_JOB_FINISHED')
  isError(t, await app.inject({ url: '/v1/jobs/nope', headers: auth(READ) }), 404, 'TM_ERR_JOB_NOT_FOUND')
  isError(t, await app.inject({ method: 'POST', url: '/v1/jobs/nope/cancel', headers: auth(ADMIN) }), 404, 'TM_ERR_JOB_NOT_FOUND')
})

t.test('restore points and restores: dry run plan, 202 job with a timed report, one at a time, target not empty', async (t) => {
  const calls: Calls = { restores: [], checks: [] }
  const restoreHold = gate()
  const { app, repo } = await setup(t, { postgres: true, calls, restoreHold })
  const b1 = await commitTestBackup(repo, 'clickhouse', new Date('2026-11-28T08:10:00Z'), new Date('2026-11-28T08:15:00Z'))
  const b2 = await commitTestBackup(repo, 'clickhouse', new Date('2026-11-28T08:40:00Z'), new Date('2026-11-28T08:45:00Z'))
  await commitTestBackup(repo, 'clickhouse', new Date('2026-11-28T09:00:00Z'), new Date('2026-11-28T09:05:00Z'))

  const rp = await app.inject({ url: '/v1/restore-points?sources=clickhouse,postgres&to=2026-11-28T08:50:00Z', headers: auth(READ) })
  t.equal(rp.statusCode, 200)
  t.same(rp.json().points, [{ at: '2026-11-28T08:15:00.000Z' }, { at: '2026-11-28T08:45:00.000Z' }], 'the 09:05 backup is outside the PostgreSQL window and after `to`')
  t.same(rp.json().postgres.windows, [{ timeline: 1, from: '2026-11-28T08:00:00.000Z', to: '2026-11-28T08:59:00.000Z' }])
  t.same((await app.inject({ url: '/v1/restore-points?sources=clickhouse', headers: auth(READ) })).json().points.length, 3)
  isError(t, await app.inject({ url: '/v1/restore-points?sources=redis', headers: auth(READ) }), 400, 'TM_ERR_USAGE')
  isError(t, await app.inject({ url: '/v1/restore-points?from=2026-11-28T09:00:00Z&to=2026-11-28T08:00:00Z', headers: auth(READ) }), 400, 'TM_ERR_USAGE')

  const post = (payload: unknown, token = ADMIN) => app.inject({ method: 'POST', url: '/v1/restores', headers: auth(token), payload: payload as Record<string, unknown> })
  const targets = { postgres: { dataDir: '/restore/pg' }, clickhouse: { url: 'http://ch-dr:8123' } }
  const dry = await post({ at: '2026-11-28T09:50:00+01:00', sources: ['clickhouse', 'postgres'], dryRun: true })
  t.equal(dry.statusCode, 200)
  t.match(dry.json().plan, { point: '2026-11-28T08:45:00.000Z', clickhouse: { backupId: b2.id }, postgres: { method: 'physical', target: '2026-11-28T08:45:00.000Z' } })
  t.equal(dry.json().plan.clickhouse.loss.seconds, 300)
  isError(t, await post({ at: '2026-11-28T08:50:00', dryRun: true }), 400, 'TM_ERR_USAGE')
  isError(t, await post({ at: '2026-11-28T07:00:00Z', dryRun: true }), 422, 'TM_ERR_NO_RESTORE_POINT')
  isError(t, await post({ at: 'latest', dryRun: true, sources: ['clickhouse'], extra: 1 }), 400, 'TM_ERR_USAGE')
  isError(t, await post({ at: 'latest', targets: { clickhouse: { url: 'http://x:8123', user: 'u' } } }), 400, 'TM_ERR_USAGE')
  isError(t, await post({ at: 'latest', targets }, READ), 403, 'TM_ERR_AUTH_FORBIDDEN')

  const occupied = isError(t, await post({ at: '2026-11-28T08:16:00Z', targets: { ...targets, clickhouse: { url: 'http://occupied:8123' } } }), 409, 'TM_ERR_RESTORE_TARGET_NOT_EMPTY')
  t.same(occupied.conflicts, [{ table: 'db.runs', reason: 'holds 3 rows' }], 'says what is there')
  t.same(calls.restores, [], 'nothing restored')

  const callbacks: string[] = []
  const hook = createServer((req, res) => {
    let b = ''
    req.on('data', (c: Buffer) => (b += c.toString()))
    req.on('end', () => (callbacks.push(b), res.end()))
  })
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise((r) => hook.close(r)))
  const callbackUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/done`
  isError(t, await post({ at: '2026-11-28T08:16:00Z', targets, callbackUrl: 'ftp://x' }), 400, 'TM_ERR_USAGE')
  const started = await post({ at: '2026-11-28T08:16:00Z', targets, callbackUrl })
  t.equal(started.statusCode, 202)
  const job = started.json().job as { id: string; kind: string }
  t.equal(job.kind, 'restore')
  isError(t, await post({ at: '2026-11-28T08:16:00Z', targets }), 409, 'TM_ERR_JOB_BUSY')
  restoreHold.open()
  const done = await finished(app, job.id) as { state: string; result: { ok: boolean; totalMs: number; steps: { step: string; durationMs: number }[] } }
  t.equal(done.state, 'succeeded', JSON.stringify(done))
  t.same(done.result.steps.map((s) => s.step), ['postgres', 'clickhouse', 'smoke checks'])
  t.ok(done.result.steps.every((s) => typeof s.durationMs === 'number'))
  t.same(calls.restores, ['postgres 2026-11-28T08:15:00.000Z', `clickhouse ${b1.id}`], 'PostgreSQL first, both at the common point')
  await waitFor('the callback', async () => callbacks.length > 0, 5000, 10)
  t.match(JSON.parse(callbacks[0] as string), { job: { id: job.id, state: 'succeeded' } }, 'callbackUrl receives the finished job')
})

t.test('over a real listening socket', async (t) => {
  const { app } = await setup(t)
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const h = await fetch(`${address}/healthz`)
  t.equal(h.status, 200)
  t.equal(((await h.json()) as { status: string }).status, 'ok')
  const unauth = await fetch(`${address}/v1/jobs`)
  t.equal(unauth.status, 401)
  t.equal(((await unauth.json()) as { error: { code: string } }).error.code, 'TM_ERR_AUTH_REQUIRED')
  const post = await fetch(`${address}/v1/backups`, { method: 'POST', headers: { ...auth(ADMIN), 'content-type': 'application/json' }, body: JSON.stringify({ source: 'clickhouse' }) })
  t.equal(post.status, 202)
})
