import t from 'tap'
import { scheduleEntries, Scheduler } from '../../src/engine/daemon/scheduler.ts'
import { gate, testDaemon } from './helpers.ts'

const SCHEDULES = { clickhouse: { incremental: '*/15 * * * *', full: '0 3 * * 0' }, postgres: { base: '0 2 * * *' }, prune: '0 4 * * *', replicate: undefined }

t.test('scheduleEntries: a schedule that is off or has nothing to run is left out', async (t) => {
  const noop = () => {}
  t.same(scheduleEntries(SCHEDULES, { clickhouseIncremental: noop, clickhouseFull: noop, prune: noop, replicate: noop }).map((e) => [e.name, e.cron]), [
    ['clickhouse-incremental', '*/15 * * * *'],
    ['clickhouse-full', '0 3 * * 0'],
    ['prune', '0 4 * * *'],
  ])
  t.same(scheduleEntries({ ...SCHEDULES, clickhouse: { incremental: undefined, full: undefined } }, { clickhouseIncremental: noop }), [])
})

t.test('Scheduler: node-cron tasks fire the entry; next runs are known', async (t) => {
  let fired = 0
  const s = new Scheduler([{ name: 'x', cron: '0 2 * * *', fire: () => fired++ }])
  t.teardown(() => s.stop())
  await s.start()
  t.match(s.nextRuns().x, /T02:00:00\.000Z$/)
  await s.fire('x')
  t.equal(fired, 1)
})

t.test('a scheduled run that finds the previous one running is skipped and counted in /metrics, not queued', async (t) => {
  const hold = gate()
  const { daemon, repo } = await testDaemon(t, { hold, config: { schedules: { ...SCHEDULES, postgres: { base: undefined }, prune: undefined } } })
  await daemon.start()
  await daemon.scheduler.fire('clickhouse-incremental')
  await daemon.scheduler.fire('clickhouse-incremental')
  await daemon.scheduler.fire('clickhouse-full')
  const jobs = daemon.listJobs({})
  t.equal(jobs.filter((j) => j.state === 'skipped').length, 2)
  t.equal(jobs.filter((j) => j.state === 'running' || j.state === 'queued').length, 1)
  t.match(await daemon.metrics(), /^tidemark_scheduled_runs_skipped_total\{kind="backup",store="clickhouse"\} 2$/m)
  hold.open()
  await daemon.jobs.idle()
  t.equal((await repo.listManifestIds('clickhouse')).length, 1, 'only the one run that started committed a backup')
  await daemon.scheduler.fire('clickhouse-incremental')
  await daemon.jobs.idle()
  t.equal((await repo.listManifestIds('clickhouse')).length, 2, 'the next firing runs again')
})
