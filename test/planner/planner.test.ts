import t from 'tap'
import { plan, restorePoints, type Catalogs, type Requested } from '../../src/engine/planner.ts'

const at = (hhmm: string) => `2026-11-28T${hhmm}:00.000Z`
const ch = (...spans: [string, string][]) => ({
  backups: spans.map(([s, e], i) => ({ id: `ch-${i}`, startedAt: at(s), endedAt: at(e) })),
})
// Base backups end at 08:10 and 10:10; WAL contiguous 08:10–09:30, then a gap, then 10:10–11:00.
const pgPhysical = {
  method: 'physical' as const,
  windows: [
    { timeline: 1, from: at('08:10'), to: at('09:30') },
    { timeline: 1, from: at('10:10'), to: at('11:00') },
  ],
  baseBackups: [
    { id: 'pg-a', timeline: 1, endedAt: at('08:10') },
    { id: 'pg-b', timeline: 1, endedAt: at('10:10') },
  ],
}
const pgLogical = { method: 'logical' as const, dumps: [{ id: 'd1', at: at('09:05') }, { id: 'd2', at: at('10:20') }] }
const chBackups = ch(['08:00', '08:15'], ['09:00', '09:10'], ['10:00', '10:30'], ['10:45', '11:30'])

const req = (hhmm: string): Requested => new Date(at(hhmm))

interface Row {
  name: string
  catalogs: Catalogs
  requested: Requested
  expect: { point: string; ch?: string; pg?: string; pgTarget?: string; lossSeconds?: number } | { refused: RegExp; nearest: string[] }
}

const rows: Row[] = [
  { name: 'ClickHouse alone, between backups: the earlier backup', catalogs: { clickhouse: chBackups }, requested: req('09:50'), expect: { point: at('09:10'), ch: 'ch-1', lossSeconds: 40 * 60 } },
  { name: 'ClickHouse alone, exactly at a backup end', catalogs: { clickhouse: chBackups }, requested: req('09:10'), expect: { point: at('09:10'), ch: 'ch-1', lossSeconds: 0 } },
  { name: 'inside a ClickHouse backup\'s window: that backup is not usable yet', catalogs: { clickhouse: chBackups }, requested: req('10:15'), expect: { point: at('09:10'), ch: 'ch-1' } },
  { name: 'before any backup: refused with the nearest point', catalogs: { clickhouse: chBackups }, requested: req('07:00'), expect: { refused: /no common restore point at or before 2026-11-28T07:00:00.000Z; nearest: 2026-11-28T08:15/, nearest: [at('08:15')] } },
  { name: 'ClickHouse + physical PostgreSQL: both land on the ClickHouse end', catalogs: { clickhouse: chBackups, postgres: pgPhysical }, requested: req('09:20'), expect: { point: at('09:10'), ch: 'ch-1', pg: 'pg-a', pgTarget: at('09:10') } },
  { name: 'a ClickHouse end inside the WAL gap is skipped', catalogs: { clickhouse: chBackups, postgres: pgPhysical }, requested: req('10:05'), expect: { point: at('09:10'), ch: 'ch-1', pg: 'pg-a' } },
  { name: 'the newest base backup before the point is used', catalogs: { clickhouse: chBackups, postgres: pgPhysical }, requested: req('10:40'), expect: { point: at('10:30'), ch: 'ch-2', pg: 'pg-b', pgTarget: at('10:30') } },
  { name: 'after the end of the WAL: the last ClickHouse end the WAL still covers', catalogs: { clickhouse: chBackups, postgres: pgPhysical }, requested: 'latest', expect: { point: at('10:30'), ch: 'ch-2', pg: 'pg-b' } },
  { name: 'ClickHouse before the first base backup: refused', catalogs: { clickhouse: ch(['07:00', '07:30']), postgres: pgPhysical }, requested: 'latest', expect: { refused: /no common restore point yet/, nearest: [] } },
  { name: 'physical PostgreSQL alone lands exactly on the requested time', catalogs: { postgres: pgPhysical }, requested: req('09:17'), expect: { point: at('09:17'), pg: 'pg-a', pgTarget: at('09:17'), lossSeconds: 0 } },
  { name: 'physical PostgreSQL alone, in the WAL gap: end of the earlier window', catalogs: { postgres: pgPhysical }, requested: req('09:45'), expect: { point: at('09:30'), pg: 'pg-a', lossSeconds: 15 * 60 } },
  { name: 'physical PostgreSQL alone, latest: end of the last window', catalogs: { postgres: pgPhysical }, requested: 'latest', expect: { point: at('11:00'), pg: 'pg-b' } },
  { name: 'physical PostgreSQL alone, inside the first base backup: refused, nearest is its end', catalogs: { postgres: pgPhysical }, requested: req('08:05'), expect: { refused: /nearest: 2026-11-28T08:10:00.000Z … 2026-11-28T09:30/, nearest: [at('08:10')] } },
  { name: 'logical PostgreSQL alone: the dump before', catalogs: { postgres: pgLogical }, requested: req('10:00'), expect: { point: at('09:05'), pg: 'd1', lossSeconds: 55 * 60 } },
  { name: 'ClickHouse + logical PostgreSQL: the first dump at or after the ClickHouse point', catalogs: { clickhouse: chBackups, postgres: pgLogical }, requested: req('10:25'), expect: { point: at('09:10'), ch: 'ch-1', pg: 'd2', pgTarget: at('10:20') } },
  { name: 'ClickHouse + logical PostgreSQL: never a dump after the request', catalogs: { clickhouse: chBackups, postgres: pgLogical }, requested: req('10:15'), expect: { point: at('08:15'), ch: 'ch-0', pg: 'd1', pgTarget: at('09:05') } },
  { name: 'ClickHouse + logical PostgreSQL, latest', catalogs: { clickhouse: chBackups, postgres: pgLogical }, requested: 'latest', expect: { point: at('09:10'), ch: 'ch-1', pg: 'd2', pgTarget: at('10:20') } },
]

for (const row of rows) {
  t.test(row.name, async (t) => {
    if ('refused' in row.expect) {
      const e = row.expect
      t.throws(() => plan(row.catalogs, row.requested), { code: 'TM_ERR_NO_RESTORE_POINT', message: e.refused })
      try {
        plan(row.catalogs, row.requested)
      } catch (err) {
        const nearest = ((err as { details: { nearest: ({ at: string } | { from: string })[] } }).details.nearest).map((p) => ('at' in p ? p.at : p.from))
        t.same(nearest, e.nearest)
      }
      return
    }
    const p = plan(row.catalogs, row.requested)
    const e = row.expect
    t.equal(p.point, e.point, 'point')
    if (e.ch) t.equal(p.clickhouse?.backupId, e.ch, 'clickhouse backup')
    if (e.ch) t.equal(p.clickhouse?.target, e.point, 'clickhouse lands on the point')
    if (e.pg) t.equal(p.postgres && ('baseBackupId' in p.postgres ? p.postgres.baseBackupId : p.postgres.dumpId), e.pg, 'postgres backup')
    if (e.pgTarget) t.equal(p.postgres?.target, e.pgTarget, 'postgres target')
    if (e.lossSeconds !== undefined) t.equal((p.clickhouse ?? p.postgres)!.loss.seconds, e.lossSeconds, 'loss window')
    if (p.clickhouse && p.postgres) t.ok(Date.parse(p.postgres.target) >= Date.parse(p.clickhouse.target), 'PostgreSQL never lands before ClickHouse')
    if (row.requested !== 'latest') t.ok(Date.parse(p.point) <= (row.requested as Date).getTime(), 'never after the requested time')
  })
}

t.test('restore points', async (t) => {
  t.same(restorePoints({ clickhouse: chBackups, postgres: pgPhysical }).map((p) => ('at' in p ? p.at : '')), [at('08:15'), at('09:10'), at('10:30')])
  t.same(restorePoints({ postgres: pgPhysical }), [
    { from: at('08:10'), to: at('09:30'), timeline: 1 },
    { from: at('10:10'), to: at('11:00'), timeline: 1 },
  ])
  t.throws(() => restorePoints({}), { code: 'TM_ERR_USAGE' })
})
