/**
 * `tidemark list` and restores by time order ClickHouse backups by their restore point:
 * backup ids sort by their start second only, and a random suffix orders those of one second.
 */
import t from 'tap'
import { testRepository } from './backup-helpers.ts'
import { assembleManifest } from '../../src/engine/clickhouse/backup-manifest.ts'
import { backupAt, listClickHouseBackups } from '../../src/engine/clickhouse/backup-catalog.ts'

t.test('two backups of one second are listed by restore point, not by id', async (t) => {
  const { repo } = await testRepository(t)
  const catalog = { serverVersion: '18.16.1', databases: [], tables: [] }
  const backup = (id: string, start: string, end: string) => assembleManifest({ id, startedAt: new Date(start), endedAt: new Date(end), full: false, endpoint: 'h:1', catalog }, [])
  // The earlier backup has the id that sorts last.
  await repo.commitManifest(backup('20240101T000000Z-ch-ffff', '2024-01-01T00:00:00.100Z', '2024-01-01T00:00:00.400Z'))
  await repo.commitManifest(backup('20240101T000000Z-ch-0001', '2024-01-01T00:00:00.500Z', '2024-01-01T00:00:00.900Z'))
  const list = await listClickHouseBackups(repo)
  t.same(list.map((b) => b.id), ['20240101T000000Z-ch-ffff', '20240101T000000Z-ch-0001'], 'oldest restore point first')
  t.equal(backupAt(list, new Date('2024-01-01T00:00:00.600Z')).id, '20240101T000000Z-ch-ffff')
  t.equal(backupAt(list, new Date('2024-01-01T00:00:01Z')).id, '20240101T000000Z-ch-0001')
})
