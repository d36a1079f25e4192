/** The logical method's pure parts: snapshot output, tool arguments, --jobs, the planner's view of dumps. */
import t from 'tap'
import { logicalCatalog, plannerAt } from '../../src/engine/daemon/adapters-postgres-logical.ts'
import { parseJobs } from '../../src/cli/commands/restore-postgres.ts'
import type { PostgresDumpManifest } from '../../src/engine/postgres/dump-manifest.ts'
import { pgRestoreArgs } from '../../src/engine/postgres/dump-restore.ts'
import { pgDumpArgs } from '../../src/engine/postgres/pgdump.ts'
import { parseSnapshotLine } from '../../src/engine/postgres/snapshot.ts'

t.test('parseSnapshotLine waits for a whole line and rejects garbage', async (t) => {
  t.equal(parseSnapshotLine('00000003-0000001B-1|17645'), undefined)
  t.same(parseSnapshotLine('00000003-0000001B-1|1764322224357513|1764322224361849|150018|app\n'), { id: '00000003-0000001B-1', notBeforeUs: 1764322224357513n, atUs: 1764322224361849n, serverVersionNum: 150018, database: 'app' })
  t.throws(() => parseSnapshotLine('ERROR: no\n'), { code: 'TM_ERR_POSTGRES_FORMAT' })
})

t.test('tool arguments', async (t) => {
  t.same(pgDumpArgs('postgresql://u@h/db', '0-1'), ['-F', 'c', '-Z', '0', '-w', '--snapshot=0-1', '-d', 'postgresql://u@h/db'])
  t.same(pgRestoreArgs('c', 1), ['-w', '--exit-on-error', '-d', 'c', '--single-transaction'], 'serial: one transaction, from stdin')
  t.same(pgRestoreArgs('c', 3, '/tmp/x.dump'), ['-w', '--exit-on-error', '-d', 'c', '-j', '3', '/tmp/x.dump'], 'parallel: from the file')
})

t.test('--jobs', async (t) => {
  t.equal(parseJobs(undefined), 1)
  t.equal(parseJobs('4'), 4)
  for (const bad of ['0', '65', 'x', '1.5', '-1']) t.throws(() => parseJobs(bad), { code: 'TM_ERR_USAGE' }, bad)
})

t.test('the planner sees each dump at its time rounded up to the millisecond', async (t) => {
  const m = (id: string, at: string) => ({ id, postgres: { at } }) as unknown as PostgresDumpManifest
  t.equal(plannerAt(m('a', '2026-11-28T12:30:24.361849Z')), '2026-11-28T12:30:24.362Z')
  t.equal(plannerAt(m('a', '2026-11-28T12:30:24.361000Z')), '2026-11-28T12:30:24.361Z')
  t.same(logicalCatalog([m('a', '2026-11-28T12:30:24.000001Z')]), { method: 'logical', dumps: [{ id: 'a', at: '2026-11-28T12:30:24.001Z' }] })
})
