/** Shared pieces of the ClickHouse backup and restore tests: repository, drivers, table digests. */
import { initRepository, type Repository } from '../../src/engine/repository/index.ts'
import { createPipelinePool } from '../../src/engine/pipeline/index.ts'
import { createFsSink } from '../../src/sinks/fs.ts'
import { withFaults, type FaultySink } from '../../src/sinks/faulty.ts'
import type { Sink } from '../../src/sinks/sink.ts'
import { createHttpDriver } from '../../src/engine/clickhouse/http-driver.ts'
import type { ClickHouseDriver } from '../../src/engine/clickhouse/driver.ts'
import { discover } from '../../src/engine/clickhouse/discovery.ts'
import { measure } from '../../src/engine/clickhouse/export-unit.ts'
import { tableKey } from '../../src/engine/clickhouse/catalog.ts'
import type { ClickHouseServer } from '../harness/clickhouse.ts'
import { removeTempDir, tempDir, waitFor } from '../harness/proc.ts'

interface Teardownable {
  teardown(fn: () => unknown): void
}

/** A fresh repository in a temporary directory, closed and removed in teardown. */
export async function testRepository(t: Teardownable): Promise<{ repo: Repository; root: string }> {
  const { repo, root } = await repositoryOn(t, createFsSink)
  return { repo, root }
}

/** Like testRepository, on a sink whose calls the test can make fail (withFaults). */
export async function faultyTestRepository(t: Teardownable): Promise<{ repo: Repository; root: string; sink: FaultySink }> {
  return await repositoryOn(t, (root) => withFaults(createFsSink(root)))
}

async function repositoryOn<S extends Sink>(t: Teardownable, open: (root: string) => S): Promise<{ repo: Repository; root: string; sink: S }> {
  const root = await tempDir('tidemark-chrepo-')
  const pool = createPipelinePool({ threads: 2 })
  const sink = open(root)
  const repo = await initRepository(sink, { pipeline: { pool, chunkSize: 256 * 1024 } })
  t.teardown(async () => {
    await repo.close()
    await pool.destroy()
    await removeTempDir(root)
  })
  return { repo, root, sink }
}

/** A driver for a test server, closed in teardown. */
export function driverFor(t: Teardownable, ch: ClickHouseServer): ClickHouseDriver {
  const d = createHttpDriver({ url: ch.url, user: ch.user, password: ch.password, requestTimeoutMs: 30_000 })
  t.teardown(() => d.close())
  return d
}

/** `db.table` → {rows, digest} of every storage table in `databases`. */
export async function tableDigests(driver: ClickHouseDriver, databases: string[]): Promise<Record<string, { rows: number; digest: string }>> {
  const catalog = await discover(driver, { include: databases, exclude: [] })
  const out: Record<string, { rows: number; digest: string }> = {}
  for (const table of catalog.tables.filter((x) => x.hasData)) out[tableKey(table.database, table.name)] = await measure(driver, table, undefined, true)
  return out
}

/** Waits until no mutation of `db.table` is pending. */
export async function mutationsDone(driver: ClickHouseDriver, db: string, table: string): Promise<void> {
  await waitFor('mutations to finish', async () => {
    const [r] = await driver.queryRows<{ n: string }>('SELECT count() AS n FROM system.mutations WHERE database = {db:String} AND table = {t:String} AND NOT is_done', { db, t: table })
    return r?.n === '0'
  }, 20_000, 50)
}

/** The rows of a query as TSV text (for comparing two servers). */
export async function tsv(driver: ClickHouseDriver, sql: string): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of await driver.queryStream(sql, 'TabSeparated')) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('latin1')
}
