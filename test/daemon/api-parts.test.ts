/**
 * The parts method through the HTTP API of a running `bin/tidemark daemon`: a backup
 * started with POST /v1/backups uses frozen parts (clickhouse.method: parts), and
 * POST /v1/restores with targets.clickhouse.dataPath attaches them into another
 * server; without the data path the job fails with the error that says so.
 */
import { join } from 'node:path'
import { writeFile } from 'node:fs/promises'
import t from 'tap'
import { stringify } from 'yaml'
import { startClickHouse } from '../harness/clickhouse.ts'
import { freePort, removeTempDir, tempDir, waitFor } from '../harness/proc.ts'
import { startDaemon } from './process.ts'
import { driverFor, tableDigests } from '../clickhouse/backup-helpers.ts'

const ADMIN = 'parts-admin-token-9d1e'

t.test('parts backup and restore through the HTTP API', async (t) => {
  const [source, target] = await Promise.all([startClickHouse(t), startClickHouse(t)])
  const [src, dst] = [driverFor(t, source), driverFor(t, target)]
  await src.command('CREATE DATABASE ls')
  await src.command('CREATE TABLE ls.runs (d Date, id UInt64, project String) ENGINE = MergeTree PARTITION BY d ORDER BY id')
  await src.command("INSERT INTO ls.runs SELECT toDate('2024-03-01') + number % 4, number, concat('p', toString(number % 7)) FROM numbers(5000)")
  await src.command('CREATE VIEW ls.per_project AS SELECT project, count() AS n FROM ls.runs GROUP BY project')

  const root = await tempDir('tidemark-api-parts-')
  t.teardown(() => removeTempDir(root))
  const port = await freePort()
  const cfg = join(root, 'tidemark.yaml')
  await writeFile(cfg, stringify({
    repository: { url: join(root, 'repo') },
    pipeline: { threads: 1 },
    clickhouse: { url: source.url, user: source.user, password: source.password, parallelism: 2, method: 'parts', dataPath: join(source.dataDir, 'data') },
    schedules: { clickhouse: { incremental: 'off', full: 'off' }, prune: 'off' },
    api: { host: '127.0.0.1', port, adminToken: ADMIN },
    log: { level: 'info' },
  }))
  const { api } = await startDaemon(t, { cfg, cwd: root, port, token: ADMIN })
  type Job = { state: string; error?: { code: string; message: string }; result?: Record<string, any> } // eslint-disable-line @typescript-eslint/no-explicit-any
  const ended = (id: string) => waitFor(`job ${id} to end`, async () => {
    const j = (await api(`/v1/jobs/${id}`)).body.job as Job
    return ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : undefined
  }, 120_000, 200)

  const started = await api('/v1/backups', { source: 'clickhouse' })
  t.equal(started.status, 202, 'backup job started')
  const backupJob = await ended(started.body.job.id as string)
  t.equal(backupJob.state, 'succeeded', backupJob.state === 'succeeded' ? 'backup succeeded' : JSON.stringify(backupJob.error))
  const listed = (await api('/v1/backups?source=clickhouse')).body.backups as { id: string }[]
  t.equal(listed.length, 1)
  const manifest = (await api(`/v1/backups/${listed[0]!.id}`)).body.backup.manifest as { method?: string }
  t.equal(manifest.method, 'clickhouse-parts', 'the backup used the parts method')

  const targetUrl = target.url.replace('://', `://${target.user}:${target.password}@`)
  const refused = await api('/v1/restores', { at: 'latest', sources: ['clickhouse'], targets: { clickhouse: { url: targetUrl } } })
  t.equal(refused.status, 400, 'without the target data path the restore is refused at once')
  t.match(refused.body, { error: { code: 'TM_ERR_USAGE', message: /parts method: give targets\.clickhouse\.dataPath/ } }, 'with the error that says what to give')
  t.same(await dst.queryRows<{ name: string }>("SELECT name FROM system.databases WHERE name = 'ls'"), [], 'and nothing was created on the target')

  const restore = await api('/v1/restores', { at: 'latest', sources: ['clickhouse'], targets: { clickhouse: { url: targetUrl, dataPath: join(target.dataDir, 'data') } } })
  t.equal(restore.status, 202, restore.status === 202 ? 'restore job started' : JSON.stringify(restore.body))
  const restoreJob = await ended(restore.body.job.id as string)
  t.equal(restoreJob.state, 'succeeded', restoreJob.state === 'succeeded' ? 'restore succeeded' : JSON.stringify(restoreJob.error))
  t.same(await tableDigests(dst, ['ls']), await tableDigests(src, ['ls']), 'rows and content equal the source')
  t.equal((await dst.queryRows<{ n: string }>('SELECT sum(n) AS n FROM ls.per_project'))[0]?.n, '5000', 'the view reads the attached parts')
})
