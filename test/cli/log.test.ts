import { Writable } from 'node:stream'
import t from 'tap'
import { TidemarkError } from '../../src/errors.ts'
import { createLogger, jobLogger } from '../../src/log.ts'

function capture(): { dest: Writable; lines: () => Record<string, unknown>[]; raw: () => string } {
  const chunks: string[] = []
  const dest = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk))
      cb()
    },
  })
  const raw = () => chunks.join('')
  return { dest, raw, lines: () => raw().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) }
}

t.test('secret fields are masked at any depth; credentials in URLs and messages too', async (t) => {
  const out = capture()
  const log = createLogger({ level: 'info', destination: out.dest })
  log.info(
    {
      password: 's-top',
      clickhouse: { password: 's-depth1' },
      a: { b: { c: { d: { token: 's-depth4', keep: 'visible' } } } },
      s3: { secretAccessKey: 's-sak', accessKeyId: 's-akid' },
      url: 'postgres://tm:s-url@db:5432/x',
      conn: 'host=db user=tm password=s-libpq',
    },
    'connecting to https://u:s-msg@ch:8443',
  )
  log.error(new TidemarkError('TM_ERR_POSTGRES_UNREACHABLE', 'cannot reach postgresql://tm:s-err@db/x', { details: { url: 'postgres://tm:s-detail@db' } }))
  const text = out.raw()
  for (const s of ['s-top', 's-depth1', 's-depth4', 's-sak', 's-akid', 's-url', 's-libpq', 's-msg', 's-err', 's-detail']) {
    t.notOk(text.includes(s), `${s} is not in the log`)
  }
  const [first, second] = out.lines()
  t.equal(first?.password, '***')
  t.equal(first?.url, 'postgres://tm:***@db:5432/x')
  t.equal(first?.msg, 'connecting to https://u:***@ch:8443')
  t.match(first?.a, { b: { c: { d: { token: '***', keep: 'visible' } } } }, 'other fields stay')
  t.match(second?.err, { code: 'TM_ERR_POSTGRES_UNREACHABLE', message: 'cannot reach postgresql://tm:***@db/x' })
})

t.test('levels and job child loggers', async (t) => {
  const out = capture()
  const log = createLogger({ level: 'warn', destination: out.dest })
  log.info('dropped')
  const job = jobLogger(log, { jobId: 'job-7', store: 'clickhouse', backupId: '20261128T094000Z-ch-3fa1' })
  job.warn({ partitions: 3 }, 'slow')
  jobLogger(log, { jobId: 'job-8', store: 'postgres' }).error('failed')
  const lines = out.lines()
  t.equal(lines.length, 2, 'below the level is not written')
  t.match(lines[0], { level: 40, jobId: 'job-7', store: 'clickhouse', backupId: '20261128T094000Z-ch-3fa1', partitions: 3, msg: 'slow' })
  t.match(lines[1], { jobId: 'job-8', store: 'postgres', msg: 'failed' })
  t.notOk('backupId' in (lines[1] as object), 'no backup id before one is known')
  t.type(lines[0]?.time, 'string')
})
