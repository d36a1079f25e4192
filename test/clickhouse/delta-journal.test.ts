/**
 * A delta uploaded by a backup that then failed is recorded in its journal, but holds only
 * the rows added: the next backup must never take it for the whole partition.
 */
import t from 'tap'
import { startClickHouse } from '../harness/clickhouse.ts'
import { driverFor, faultyTestRepository, tableDigests } from './backup-helpers.ts'
import { backupClickHouse } from '../../src/engine/clickhouse/backup.ts'
import { restoreClickHouse } from '../../src/engine/clickhouse/restore.ts'
import { listAll } from '../../src/sinks/sink.ts'

t.test('a delta known only from a failed backup’s journal is not reused as the partition', async (t) => {
  const [source, target] = await Promise.all([startClickHouse(t), startClickHouse(t)])
  const [src, dst] = [driverFor(t, source), driverFor(t, target)]
  const { repo, sink } = await faultyTestRepository(t)
  await src.command('CREATE DATABASE ls')
  await src.command('CREATE TABLE ls.runs (d Date, id UInt64) ENGINE = MergeTree PARTITION BY d ORDER BY id')
  await src.command('SYSTEM STOP MERGES ls.runs')
  await src.command("INSERT INTO ls.runs SELECT '2024-05-01', number FROM numbers(1000)")
  const backup = () => backupClickHouse({ driver: src, repo, url: source.url, parallelism: 1 })
  await backup()

  await src.command("INSERT INTO ls.runs SELECT '2024-05-01', 5000 + number FROM numbers(10)")
  // The delta is uploaded and journaled; then the manifest cannot be written.
  sink.failWhen((c) => (c.op === 'put' && c.key.startsWith('manifests/') ? 'permanent' : undefined))
  await t.rejects(backup(), { message: /nothing was committed; the 1 partitions uploaded before the failure are recorded/ })
  sink.failWhen(() => undefined)
  const journaled: string[] = []
  for await (const o of listAll(sink, 'journal/clickhouse/')) journaled.push(o.key)
  t.equal(journaled.length, 1, 'the failed backup left its journal, with the delta in it')

  const m = await backup()
  const objects = m.objects.filter((o) => o.table === 'runs')
  t.match(objects, [{ rows: 1000 }, { rows: 10, afterBlock: /^\d+$/, writtenBy: m.id }], 'the base from the manifest plus a new delta, not the journaled delta alone')
  const r = await restoreClickHouse({ driver: dst, repo, manifest: m, parallelism: 1 })
  t.ok(r.ok, JSON.stringify(r.tables))
  t.same(await tableDigests(dst, ['ls']), await tableDigests(src, ['ls']))
})
