/**
 * The daemon's ClickHouse source with `clickhouse.method: parts`: a scheduled backup
 * takes frozen parts, and a restore of that backup through the same source attaches
 * them into another server given its data path (the API's targets.clickhouse.dataPath).
 */
import t from 'tap'
import { join } from 'node:path'
import pino from 'pino'
import { clickhouseSource } from '../../src/engine/daemon/adapters-clickhouse.ts'
import { probeCapabilities } from '../../src/engine/clickhouse/capabilities.ts'
import { startClickHouse, type ClickHouseServer } from '../harness/clickhouse.ts'
import { driverFor, tableDigests, testRepository } from '../clickhouse/backup-helpers.ts'

const [source, target] = await Promise.all([startClickHouse(t), startClickHouse(t)])
const src = driverFor(t, source)
const dst = driverFor(t, target)
const caps = await probeCapabilities(src)
for (const sql of [
  'CREATE DATABASE ls',
  'CREATE TABLE ls.runs (d Date, id UInt64, project String) ENGINE = MergeTree PARTITION BY d ORDER BY id',
  "INSERT INTO ls.runs SELECT toDate('2024-03-01') + number % 3, number, concat('p', toString(number % 5)) FROM numbers(3000)",
  'CREATE TABLE ls.lg (k String) ENGINE = Log',
  "INSERT INTO ls.lg VALUES ('a'), ('b')",
]) await src.command(sql, { settings: caps.createSettings })

const { repo } = await testRepository(t)
const settings = (ch: ClickHouseServer) => ({ url: ch.url, user: ch.user, password: ch.password, database: 'default', requestTimeoutMs: 60_000 })
const log = pino({ level: 'silent' })
const run = () => ({ signal: new AbortController().signal, log })

const source$ = clickhouseSource({ repo, settings: settings(source), targetSettings: () => settings(target), parallelism: 2, method: 'parts', dataPath: join(source.dataDir, 'data') })

t.test('a daemon backup with method parts, restored through the daemon source into another server', async (t) => {
  const b = await source$.backup({ ...run(), full: false })
  t.equal((b.details as { method: string }).method, 'clickhouse-parts', 'the backup used the parts method')
  t.same((await source$.catalog()).backups.map((x) => x.id), [b.id], 'listed for the planner like a logical backup')

  await t.rejects(source$.checkTarget(b.id, { url: target.url }), { code: 'TM_ERR_USAGE', message: /parts method: give targets\.clickhouse\.dataPath/ }, 'the target check asks for the data path')
  await source$.checkTarget(b.id, { url: target.url, dataPath: join(target.dataDir, 'data') })
  await t.rejects(source$.restore({ ...run(), backupId: b.id, targetUrl: target.url }), { code: 'TM_ERR_CLICKHOUSE_DATA_PATH' }, 'without the target data path: refused')
  const r = await source$.restore({ ...run(), backupId: b.id, targetUrl: target.url, targetDataPath: join(target.dataDir, 'data') })
  t.equal(r.ok, true, 'row counts match the manifest')
  t.same(await tableDigests(dst, ['ls']), await tableDigests(src, ['ls']), 'rows and content equal')
})
