/**
 * End to end with real servers: `bin/tidemark daemon` runs short schedules against a
 * real ClickHouse and a real PostgreSQL (WAL archive service + base backups) while a
 * writer commits a "project" row in PostgreSQL, then "run" rows in ClickHouse that
 * reference it, each carrying its write time. A dry-run plan for a time T in the past,
 * then the restore itself into a fresh ClickHouse server and an empty PostgreSQL data
 * directory: PostgreSQL holds exactly the projects committed at or before the plan's
 * PostgreSQL target, ClickHouse every row of the chosen backup, and every restored
 * run finds its project. The post-restore hook starts PostgreSQL on the restored
 * directory, so the smoke check (connections accepted, out of recovery) runs for real.
 *
 * The daemon runs without NODE_OPTIONS: tap's process tracking, injected into every
 * child of the test, would otherwise follow into the restored server's restore_command
 * and fail there (it runs as another OS user).
 */
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { join } from 'node:path'
import t from 'tap'
import { stringify } from 'yaml'
import { startClickHouse } from '../harness/clickhouse.ts'
import { PG_BIN, serverTempDir, startPostgres } from '../harness/postgres.ts'
import { freePort, removeTempDir, waitFor } from '../harness/proc.ts'
import { startDaemon } from './process.ts'
import { psql, rows } from '../../src/engine/postgres/psql.ts'
import { commitsOf } from '../postgres/archive-helpers.ts'

const ADMIN = 'e2e-admin-token-3a7c'
const run = promisify(execFile)

// The post-restore hook: start PostgreSQL on the restored directory (as the postgres user when root), without waiting.
const START_PG = `#!/bin/sh
set -e
D="$1"; PORT="$2"; SOCK="$3"
RUN=""
if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$D"; RUN="runuser -u postgres --"; fi
chmod 700 "$D"
exec $RUN ${PG_BIN}/pg_ctl -D "$D" -l "$SOCK/pg.log" -W -o "-p $PORT -k $SOCK -c listen_addresses=127.0.0.1" start
`

async function stopRestoredPg(dataDir: string): Promise<void> {
  const asPostgres = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : []
  const argv = [...asPostgres, `${PG_BIN}/pg_ctl`, '-D', dataDir, '-m', 'immediate', 'stop']
  await run(argv[0] as string, argv.slice(1)).catch(() => undefined)
}


t.test('daemon end to end: schedules, dry-run plan, time-aligned restore into fresh servers', async (t) => {
  const [ch, pg] = await Promise.all([startClickHouse(t), startPostgres(t, { settings: { track_commit_timestamp: 'on', autovacuum: 'off' } })])
  const root = await serverTempDir('tidemark-e2e-')
  t.teardown(() => removeTempDir(root))
  await pg.psql('CREATE TABLE project (id int PRIMARY KEY, written_at timestamptz NOT NULL)')
  await ch.query('CREATE DATABASE e2e')
  await ch.query('CREATE TABLE e2e.runs (id UInt64, project_id UInt64, written_at DateTime) ENGINE = MergeTree ORDER BY id')

  const port = await freePort()
  const pgPort = await freePort()
  const sockDir = await serverTempDir('tidemark-e2e-sock-')
  t.teardown(() => removeTempDir(sockDir))
  const dataDir = join(root, 'restored-pg')
  await writeFile(join(root, 'start-pg.sh'), START_PG, { mode: 0o755 })
  const cfg = join(root, 'tidemark.yaml')
  await writeFile(cfg, stringify({
    repository: { url: join(root, 'repo') },
    pipeline: { threads: 1 },
    clickhouse: { url: ch.url, user: ch.user, password: ch.password, parallelism: 2 },
    postgres: { url: pg.replicationUrl, binDir: PG_BIN, slot: 'tidemark_e2e', walDir: join(root, 'wal'), walPartialIntervalSeconds: 1, baseBackupWalTimeoutSeconds: 60 },
    schedules: { clickhouse: { incremental: '*/3 * * * * *', full: 'off' }, postgres: { base: '*/20 * * * * *' }, prune: 'off' },
    api: { host: '127.0.0.1', port, adminToken: ADMIN },
    daemon: { shutdownGraceSeconds: 10 },
    hooks: {
      preRestore: { command: ['/bin/sh', '-c', `cat > ${join(root, 'pre-restore.json')}`] },
      postRestore: { command: ['/bin/sh', join(root, 'start-pg.sh'), dataDir, String(pgPort), sockDir] },
    },
    log: { level: 'info' },
  }), { mode: 0o644 })
  const { api } = await startDaemon(t, { cfg, cwd: root, port, token: ADMIN })

  // The writer: a project in PostgreSQL, then its runs in ClickHouse.
  let writing = true
  let written = 0
  const writer = (async () => {
    for (let i = 1; writing; i++) {
      await pg.psql(`INSERT INTO project VALUES (${i}, clock_timestamp())`)
      await ch.query(`INSERT INTO e2e.runs VALUES (${i * 10 + 1}, ${i}, now()), (${i * 10 + 2}, ${i}, now())`)
      written = i
      await new Promise((r) => setTimeout(r, 100))
    }
  })()
  t.teardown(() => { writing = false })

  const points = await waitFor('three aligned restore points', async () => {
    const r = await api('/v1/restore-points?sources=clickhouse,postgres')
    const p = (r.body.points ?? []) as { at: string }[]
    return p.length >= 3 ? p : undefined
  }, 120_000, 1000)
  const [before, after] = [points.at(-2)!.at, points.at(-1)!.at]
  const T = new Date((Date.parse(before) + Date.parse(after)) / 2).toISOString()
  const dry = await api('/v1/restores', { at: T, sources: ['clickhouse', 'postgres'], dryRun: true })
  t.equal(dry.status, 200, dry.status === 200 ? 'dry run answered with the plan' : JSON.stringify(dry.body))
  const plan = dry.body.plan as { point: string; clickhouse: { backupId: string }; postgres: { target: string; baseBackupId: string } }
  t.equal(plan.point, before, 'the newest common point at or before T')
  t.equal(plan.postgres.target, plan.point, 'PostgreSQL recovers to the ClickHouse backup end')

  // Keep writing past T, so the restore must leave rows out.
  const writtenAtT = written
  await waitFor('rows written after T', async () => written > writtenAtT + 10, 30_000)
  writing = false
  await writer

  const target = await startClickHouse(t)
  t.teardown(() => stopRestoredPg(dataDir))
  const targetUrl = target.url.replace('://', `://${target.user}:${target.password}@`)
  const restoredUrl = `postgresql://postgres@127.0.0.1:${pgPort}/postgres`
  const started = await api('/v1/restores', { at: T, sources: ['clickhouse', 'postgres'], targets: { postgres: { dataDir, url: restoredUrl }, clickhouse: { url: targetUrl } } })
  t.equal(started.status, 202, started.status === 202 ? 'restore job started' : JSON.stringify(started.body))
  const job = await waitFor('the restore to end', async () => {
    const j = (await api(`/v1/jobs/${started.body.job.id}`)).body.job as { state: string }
    return ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : undefined
  }, 180_000, 500) as { state: string; error?: unknown; result: { totalMs: number; steps: { step: string; ok: boolean; durationMs: number; details?: Record<string, unknown> }[] } }
  t.equal(job.state, 'succeeded', job.state === 'succeeded' ? 'restore succeeded' : JSON.stringify(job.error))
  t.same(job.result.steps.map((s) => [s.step, s.ok]), [['pre-restore hook', true], ['postgres', true], ['clickhouse', true], ['post-restore hook', true], ['smoke checks', true]])
  t.match(job.result.steps.at(-1)?.details, { postgres: { acceptsConnections: true, inRecovery: false }, clickhouse: { rowCountsMatch: true } }, 'smoke checks ran against both restored servers')
  t.equal(JSON.parse(await readFile(join(root, 'pre-restore.json'), 'utf8')).plan.point, plan.point, 'the pre-restore hook got the plan')
  t.ok(job.result.steps.every((s) => Number.isFinite(s.durationMs)) && job.result.totalMs >= job.result.steps[1]!.durationMs, 'each step and the total are timed')

  const targetUs = BigInt(Date.parse(plan.postgres.target)) * 1000n
  const expected = (await commitsOf(pg, 'project')).filter((c) => c.us <= targetUs).map((c) => c.id)
  t.ok(expected.length > 0 && expected.length < written, `${expected.length} of ${written} projects committed by the target`)
  const pgIds = rows(await psql(restoredUrl, 'SELECT id FROM project ORDER BY id', { psqlPath: join(PG_BIN, 'psql') })).map(([id]) => Number(id))
  t.same(pgIds, expected, 'PostgreSQL: exactly the projects committed at or before the target')

  const backup = (await api(`/v1/backups/${plan.clickhouse.backupId}`)).body.backup as { manifest: { stats: { rows: number } } }
  const chRows = Number(await target.query('SELECT count() FROM e2e.runs'))
  t.equal(chRows, backup.manifest.stats.rows, 'ClickHouse: every row of the chosen backup')
  const projects = (await target.query('SELECT DISTINCT project_id FROM e2e.runs ORDER BY project_id FORMAT TSV')).trim().split('\n').filter((x) => x !== '').map(Number)
  const missing = projects.filter((p) => !pgIds.includes(p))
  t.same(missing, [], `every restored run's project exists in the restored PostgreSQL (${projects.length} projects referenced)`)
})
