import t from 'tap'
import { manualClock } from '../../src/engine/clock.ts'
import { JobRegistry } from '../../src/engine/daemon/jobs.ts'
import { TidemarkError } from '../../src/errors.ts'
import { gate } from './helpers.ts'

const spec = { kind: 'backup' as const, store: 'clickhouse', trigger: 'api' as const }

t.test('a job runs, reports progress, and ends with its result and times from the clock', async (t) => {
  const clock = manualClock('2026-11-28T09:00:00Z')
  const reg = new JobRegistry({ clock, historySize: 10 })
  const g = gate()
  const v = reg.start(spec, async (ctx) => {
    ctx.progress({ unitsTotal: 4, unitsDone: 1, bytesDone: 10 })
    await g.wait(ctx.signal)
    clock.advance(5000)
    return { id: 'b1' }
  })
  t.equal(v.state, 'queued')
  await new Promise((r) => setImmediate(r))
  t.equal(reg.get(v.id).state, 'running')
  t.same(reg.get(v.id).progress, { bytesDone: 10, bytesTotal: 0, unitsDone: 1, unitsTotal: 4 })
  g.open()
  await reg.idle()
  const done = reg.get(v.id)
  t.equal(done.state, 'succeeded')
  t.same(done.result, { id: 'b1' })
  t.equal(done.startedAt, '2026-11-28T09:00:00.000Z')
  t.equal(done.endedAt, '2026-11-28T09:00:05.000Z')
})

t.test('one job per lane: a second start is refused, a scheduled one is skipped and counted', async (t) => {
  const reg = new JobRegistry({ clock: manualClock('2026-11-28T09:00:00Z'), historySize: 10 })
  const g = gate()
  const first = reg.start(spec, (ctx) => g.wait(ctx.signal))
  t.throws(() => reg.start(spec, async () => undefined), { code: 'TM_ERR_JOB_BUSY', message: new RegExp(first.id) })
  const skipped = reg.startOrSkip({ ...spec, trigger: 'schedule' }, async () => t.fail('must not run'))
  t.equal(skipped.state, 'skipped')
  reg.startOrSkip({ ...spec, trigger: 'schedule' }, async () => t.fail('must not run'))
  t.equal(reg.counts().get('backup|clickhouse|skipped'), 2)
  const other = reg.start({ ...spec, store: 'postgres' }, async () => 'ok')
  g.open()
  await reg.idle()
  t.equal(reg.get(other.id).state, 'succeeded', 'another lane runs meanwhile')
  t.equal(reg.counts().get('backup|clickhouse|succeeded'), 1)
  const after = reg.startOrSkip({ ...spec, trigger: 'schedule' }, async () => 'ran')
  await reg.idle()
  t.equal(reg.get(after.id).state, 'succeeded', 'the lane is free again once the job ended')
})

t.test('cancel aborts the signal: the job ends cancelled with TM_ERR_ABORTED; a finished job cannot be cancelled', async (t) => {
  const reg = new JobRegistry({ clock: manualClock('2026-11-28T09:00:00Z'), historySize: 10 })
  const v = reg.start(spec, (ctx) => gate().wait(ctx.signal))
  await new Promise((r) => setImmediate(r))
  reg.cancel(v.id)
  await reg.idle()
  const c = reg.get(v.id)
  t.equal(c.state, 'cancelled')
  t.equal(c.error?.code, 'TM_ERR_ABORTED')
  t.throws(() => reg.cancel(v.id), { code: 'TM_ERR_JOB_FINISHED' })
  t.throws(() => reg.get('nope'), { code: 'TM_ERR_JOB_NOT_FOUND' })
})

t.test('a failing job keeps its error code; history keeps the last N finished, newest first', async (t) => {
  const reg = new JobRegistry({ clock: manualClock('2026-11-28T09:00:00Z'), historySize: 3 })
  const failed = reg.start(spec, async () => {
    throw new TidemarkError('TM_ERR_CLICKHOUSE_UNREACHABLE', 'connection refused')
  })
  await reg.idle()
  t.same(reg.get(failed.id).error, { code: 'TM_ERR_CLICKHOUSE_UNREACHABLE', message: 'connection refused' })
  const ids = [failed.id]
  for (let i = 0; i < 4; i++) {
    ids.push(reg.start(spec, async () => i).id)
    await reg.idle()
  }
  t.same(reg.list().map((j) => j.id), ids.slice(-3).reverse())
  t.throws(() => reg.get(failed.id), { code: 'TM_ERR_JOB_NOT_FOUND' }, 'dropped from the history')
  t.equal(reg.list({ state: 'failed' }).length, 0)
})

t.test('idle(ms) times out while a job runs; abortAll ends it', async (t) => {
  const reg = new JobRegistry({ clock: manualClock('2026-11-28T09:00:00Z'), historySize: 3 })
  const v = reg.start(spec, (ctx) => gate().wait(ctx.signal))
  t.equal(await reg.idle(50), false)
  reg.abortAll('stopping')
  t.equal(await reg.idle(1000), true)
  t.equal(reg.get(v.id).state, 'cancelled')
  t.match(reg.get(v.id).error?.message, /stopping/)
})
