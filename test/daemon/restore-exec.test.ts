import { createServer } from 'node:http'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pino } from 'pino'
import t from 'tap'
import { manualClock } from '../../src/engine/clock.ts'
import type { ClickHouseSource } from '../../src/engine/daemon/facade.ts'
import { executeRestore, type RestoreDeps } from '../../src/engine/daemon/restore-exec.ts'
import { plan } from '../../src/engine/planner.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { testPostgres, type Calls } from './helpers.ts'

const PLAN = plan(
  { clickhouse: { backups: [{ id: '20261128T081000Z-ch-0001', startedAt: '2026-11-28T08:10:00Z', endedAt: '2026-11-28T08:15:00Z' }] }, postgres: { method: 'physical', windows: [{ timeline: 1, from: '2026-11-28T08:00:00.000Z', to: '2026-11-28T08:59:00.000Z' }], baseBackups: [{ id: 'b', timeline: 1, endedAt: '2026-11-28T08:00:00.000Z' }] } },
  new Date('2026-11-28T08:20:00Z'),
)
const TARGETS = { postgres: { dataDir: '/x/pg', url: 'postgresql://u:secret@db:5432/postgres' }, clickhouse: { url: 'http://ch:8123' } }

function deps(calls: Calls, clock = manualClock('2026-11-28T10:00:00Z'), over: Partial<RestoreDeps> = {}, chOk = true): RestoreDeps {
  const clickhouse: ClickHouseSource = {
    backup: async () => { throw new Error('unused') },
    catalog: async () => ({ backups: [] }),
    checkTarget: async () => {},
    restore: async ({ backupId }) => {
      clock.advance(2000)
      calls.restores.push(`clickhouse ${backupId}`)
      return chOk ? { ok: true, details: { tables: [{ table: 'db.runs' }] } } : { ok: false, details: { mismatched: ['db.runs'] } }
    },
    ping: async () => {},
  }
  return { clickhouse, postgres: testPostgres({ from: '2026-11-28T08:00:00.000Z', to: '2026-11-28T08:59:00.000Z' }, calls), hookTimeoutMs: 5000, smokeTimeoutMs: 1000, clock, ...over }
}

const run = () => ({ signal: new AbortController().signal, log: pino({ level: 'silent' }) })

t.test('steps run in runbook order; the report times each step and the total from the clock', async (t) => {
  const calls: Calls = { restores: [], checks: [] }
  const r = await executeRestore(PLAN, TARGETS, deps(calls), run())
  t.same(r.steps.map((s) => [s.step, s.ok]), [['postgres', true], ['clickhouse', true], ['smoke checks', true]])
  t.equal(r.steps[1]?.durationMs, 2000)
  t.equal(r.totalMs, 2000)
  t.same(calls.restores, ['postgres 2026-11-28T08:15:00.000Z', 'clickhouse 20261128T081000Z-ch-0001'])
  t.same(calls.checks, ['pg /x/pg'], 'targets checked first')
})

t.test('a failing pre-restore command fails the restore before anything is touched', async (t) => {
  const calls: Calls = { restores: [], checks: [] }
  const err = await executeRestore(PLAN, TARGETS, deps(calls, undefined, { preRestore: { command: ['sh', '-c', 'echo scaling failed >&2; exit 3'] } }), run()).catch((e: unknown) => e)
  t.match(err, { code: 'TM_ERR_HOOK_FAILED', message: /pre-restore.*exited 3.*scaling failed/ })
  t.same(calls.restores, [], 'no store was restored')
  t.same((err as { details: { report: { steps: { step: string; ok: boolean }[] } } }).details.report.steps.map((s) => [s.step, s.ok]), [['pre-restore hook', false]])
})

t.test('hooks get the plan (command: stdin and environment; webhook: JSON POST); a non-2xx webhook fails the post-restore step', async (t) => {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  const bodies: string[] = []
  let status = 204
  const server = createServer((req, res) => {
    let b = ''
    req.on('data', (c: Buffer) => (b += c.toString()))
    req.on('end', () => {
      bodies.push(b)
      res.statusCode = status
      res.end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise((r) => server.close(r)))
  const port = (server.address() as { port: number }).port
  const pre = { command: ['sh', '-c', `cat > ${join(dir, 'stdin.json')}; printf %s "$TIDEMARK_RESTORE_PLAN" > ${join(dir, 'env.json')}`] }
  const post = { webhook: `http://127.0.0.1:${port}/hook` }
  const calls: Calls = { restores: [], checks: [] }
  const r = await executeRestore(PLAN, TARGETS, deps(calls, undefined, { preRestore: pre, postRestore: post }), run())
  t.same(r.steps.map((s) => s.step), ['pre-restore hook', 'postgres', 'clickhouse', 'post-restore hook', 'smoke checks'])
  const stdin = JSON.parse(await readFile(join(dir, 'stdin.json'), 'utf8')) as { phase: string; plan: { point: string }; targets: { postgres: { url: string } } }
  t.equal(stdin.phase, 'pre-restore')
  t.equal(stdin.plan.point, '2026-11-28T08:15:00.000Z')
  t.equal(stdin.targets.postgres.url, 'postgresql://u:***@db:5432/postgres', 'no password goes to a hook')
  t.same(JSON.parse(await readFile(join(dir, 'env.json'), 'utf8')), stdin)
  t.match(JSON.parse(bodies[0] as string), { phase: 'post-restore', plan: { point: '2026-11-28T08:15:00.000Z' } })

  status = 500
  const err = await executeRestore(PLAN, TARGETS, deps({ restores: [], checks: [] }, undefined, { postRestore: post }), run()).catch((e: unknown) => e)
  t.match(err, { code: 'TM_ERR_HOOK_FAILED', message: /post-restore.*answered 500/ })
})

t.test('smoke checks: ClickHouse row counts that do not match the manifest fail the restore', async (t) => {
  const err = await executeRestore(PLAN, TARGETS, deps({ restores: [], checks: [] }, undefined, {}, false), run()).catch((e: unknown) => e)
  t.match(err, { code: 'TM_ERR_SMOKE_CHECK_FAILED', message: /db\.runs/ })
})

t.test('a missing target is refused before anything runs', async (t) => {
  const calls: Calls = { restores: [], checks: [] }
  const err = await executeRestore(PLAN, { clickhouse: TARGETS.clickhouse }, deps(calls), run()).catch((e: unknown) => e)
  t.match(err, { code: 'TM_ERR_USAGE', message: /targets\.postgres/ })
  t.same(calls.restores, [])
})

t.test("a hook command's environment carries no tidemark secret", async (t) => {
  const { hookEnv } = await import('../../src/engine/daemon/hooks.ts')
  const env = hookEnv({ PATH: '/bin', KUBECONFIG: '/k', AWS_PROFILE: 'p', TIDEMARK_PASSPHRASE: 's', TIDEMARK_API_ADMIN_TOKEN: 's', CLICKHOUSE_PASSWORD: 's', POSTGRES_DATABASE_URI: 's', TIDEMARK_POSTGRES_REPLICATION_URL: 's', TIDEMARK_REPOSITORY_S3_SECRET_ACCESS_KEY: 's' })
  t.same(Object.keys(env).sort(), ['AWS_PROFILE', 'KUBECONFIG', 'PATH'])
})
