import t from 'tap'
import { parseBackupLabel, parseLabelTime } from '../../src/engine/postgres/backup-label.ts'

const LABEL = `START WAL LOCATION: 0/700028 (file 000000010000000000000007)
CHECKPOINT LOCATION: 0/700060
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-11-28 11:21:27 UTC
LABEL: pg_basebackup base backup
START TIMELINE: 1
`

t.test('parses a PostgreSQL 15 backup_label', async (t) => {
  const l = parseBackupLabel(LABEL)
  t.equal(l.startLsn, 0x700028n)
  t.equal(l.startWalFile, '000000010000000000000007')
  t.equal(l.checkpointLsn, 0x700060n)
  t.equal(l.method, 'streamed')
  t.equal(l.backupFrom, 'primary')
  t.equal(l.startTime.toISOString(), '2026-11-28T11:21:27.000Z')
  t.equal(l.startTimeExact, true)
  t.equal(l.label, 'pg_basebackup base backup')
  t.equal(l.timeline, 1)
  t.equal(l.fields['BACKUP FROM'], 'primary')
})

t.test('a label with colons, an older label without START TIMELINE, CRLF', async (t) => {
  const text = LABEL.replace('LABEL: pg_basebackup base backup', 'LABEL: nightly: 09:40').replace('START TIMELINE: 1\n', '').replace(/000000010000000000000007/, '000000030000000000000007')
  const l = parseBackupLabel(text.replace(/\n/g, '\r\n'))
  t.equal(l.label, 'nightly: 09:40')
  t.equal(l.timeline, 3, 'timeline from the start WAL file name')
})

t.test('malformed labels', async (t) => {
  t.throws(() => parseBackupLabel(''), { code: 'TM_ERR_POSTGRES_FORMAT' })
  t.throws(() => parseBackupLabel(LABEL.replace('START TIME: 2026-11-28 11:21:27 UTC\n', '')), { code: 'TM_ERR_POSTGRES_FORMAT', message: /START TIME/ })
  t.throws(() => parseBackupLabel(LABEL.replace('(file 000000010000000000000007)', '')), { code: 'TM_ERR_POSTGRES_FORMAT' })
  t.throws(() => parseBackupLabel(LABEL.replace('START TIMELINE: 1', 'START TIMELINE: x')), { code: 'TM_ERR_POSTGRES_FORMAT' })
  t.throws(() => parseLabelTime('2026-11-28T11:21:27Z'), { code: 'TM_ERR_POSTGRES_FORMAT' })
})

t.test('START TIME zones convert to UTC', async (t) => {
  // [label time, near, expected UTC, exact]
  const cases: Array<[string, string | undefined, string, boolean]> = [
    ['2026-11-28 11:21:27 UTC', undefined, '2026-11-28T11:21:27Z', true],
    ['2026-11-28 11:21:27 GMT', undefined, '2026-11-28T11:21:27Z', true],
    ['2026-11-28 12:21:27 CET', undefined, '2026-11-28T11:21:27Z', true],
    ['2026-07-28 13:21:27 CEST', undefined, '2026-07-28T11:21:27Z', true],
    ['2026-11-28 06:21:27 EST', undefined, '2026-11-28T11:21:27Z', true],
    ['2026-07-28 04:21:27 PDT', undefined, '2026-07-28T11:21:27Z', true],
    ['2026-11-28 22:51:27 ACDT', undefined, '2026-11-28T12:21:27Z', true],
    ['2026-11-28 08:21:27 -03', undefined, '2026-11-28T11:21:27Z', true],
    ['2026-11-28 17:06:27 +0545', undefined, '2026-11-28T11:21:27Z', true],
    ['2026-11-28 07:51:27 -0330', undefined, '2026-11-28T11:21:27Z', true],
    // IST: India (+05:30), Israel (+02) or Ireland (+01); `near` decides.
    ['2026-11-28 16:51:27 IST', '2026-11-28T11:21:30Z', '2026-11-28T11:21:27Z', false],
    ['2026-11-28 13:21:27 IST', '2026-11-28T11:21:30Z', '2026-11-28T11:21:27Z', false],
    ['2026-07-28 12:21:27 IST', '2026-07-28T11:21:00Z', '2026-07-28T11:21:27Z', false],
    // CST: US Central (-06) or China (+08).
    ['2026-11-28 19:21:27 CST', '2026-11-28T11:20:00Z', '2026-11-28T11:21:27Z', false],
    ['2026-11-28 05:21:27 CST', '2026-11-28T11:20:00Z', '2026-11-28T11:21:27Z', false],
    // An abbreviation not in the table: the nearest quarter-hour offset to `near`.
    ['2026-11-28 14:21:27 XYZT', '2026-11-28T11:21:40Z', '2026-11-28T11:21:27Z', false],
  ]
  for (const [text, near, utc, exact] of cases) {
    const r = parseLabelTime(text, near === undefined ? undefined : new Date(near))
    t.equal(r.date.toISOString(), new Date(utc).toISOString(), text)
    t.equal(r.exact, exact, `${text} exact=${exact}`)
  }
  t.throws(() => parseLabelTime('2026-11-28 16:51:27 IST'), { code: 'TM_ERR_POSTGRES_FORMAT', message: /ambiguous.*IST/ })
  t.throws(() => parseLabelTime('2026-11-28 16:51:27 XYZT'), { code: 'TM_ERR_POSTGRES_FORMAT', message: /unknown.*XYZT/ })
})
