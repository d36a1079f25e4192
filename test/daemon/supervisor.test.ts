import { pino } from 'pino'
import t from 'tap'
import { manualClock } from '../../src/engine/clock.ts'
import { backoffDelay, supervise, type Reporter } from '../../src/engine/daemon/supervisor.ts'
import { TidemarkError } from '../../src/errors.ts'
import { waitFor } from '../harness/proc.ts'

t.test('backoffDelay doubles from the minimum up to the maximum', async (t) => {
  t.same([1, 2, 3, 4, 10].map((n) => backoffDelay(n, 100, 1000)), [100, 200, 400, 800, 1000])
})

t.test('a service that cannot start is retried with backoff; once running it reports lag and failures; stop stops it', async (t) => {
  const clock = manualClock('2026-11-28T09:00:00Z')
  let attempts = 0
  let stopped = 0
  let reporter: Reporter | undefined
  const svc = supervise({
    name: 'wal-archive', clock, log: pino({ level: 'silent' }), minBackoffMs: 10, maxBackoffMs: 40,
    create: async (r) => {
      if (++attempts < 3) throw new TidemarkError('TM_ERR_POSTGRES_UNREACHABLE', `connection refused (${attempts})`)
      reporter = r
      return { stop: async () => void stopped++, abort: () => {} }
    },
  })
  t.equal(svc.status().state, 'stopped')
  svc.start()
  t.match(svc.status(), { state: 'starting' })
  await waitFor('the service to run', async () => svc.status().state === 'running', 5000, 5)
  t.match(svc.status(), { state: 'running', restarts: 2, failures: 2 })
  t.notOk(svc.status().lastError, 'the last start error is cleared once running')
  t.equal(svc.status().lagSeconds, undefined, 'no progress proven yet')
  reporter!.progress()
  clock.advance(7000)
  t.equal(svc.status().lagSeconds, 7)
  reporter!.failure(new TidemarkError('TM_ERR_SINK_IO', 'upload failed'))
  t.match(svc.status(), { failures: 3, lastError: { code: 'TM_ERR_SINK_IO' } })
  await svc.stop()
  t.equal(stopped, 1)
  t.equal(svc.status().state, 'stopped')
})

t.test('stop while retrying cancels the retries', async (t) => {
  let attempts = 0
  const svc = supervise({ name: 'x', clock: manualClock('2026-11-28T09:00:00Z'), log: pino({ level: 'silent' }), minBackoffMs: 20, create: async () => { attempts++; throw new Error('down') } })
  svc.start()
  await waitFor('a failed start', async () => attempts >= 1, 2000, 2)
  await svc.stop()
  const n = attempts
  await new Promise((r) => setTimeout(r, 100))
  t.equal(attempts, n, 'no retry after stop')
  t.equal(svc.status().state, 'stopped')
})
