/**
 * A ClickHouse parts backup: FREEZE every selected MergeTree-family table into
 * `shadow/<backup id>/`, store each frozen part directory as one object keyed
 * by table, part name and the hash of its checksums.txt (a part stored before
 * is referenced, not uploaded again), export the other storage tables
 * logically (Log, Memory…: they have no parts), keep views as DDL only, and
 * commit a manifest shaped like the logical one. The shadow directory is
 * removed whatever happens. Holds the writer lease throughout.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { asTidemarkError, TidemarkError } from '../../errors.ts'
import { forEachLimit } from '../parallel.ts'
import { newBackupId, type KnownObject } from '../repository/index.ts'
import { assembleManifest, type UnitOutcome } from './backup-manifest.ts'
import type { ClickHouseBackupOptions, Progress } from './backup.ts'
import { exportColumnNames, tableUnit } from './backup-plan.ts'
import { tableKey, type TableInfo } from './catalog.ts'
import { endpointOf } from './connection.ts'
import { discover } from './discovery.ts'
import type { ClickHouseDriver } from './driver.ts'
import { exportUnit, measure, type ExportContext } from './export-unit.ts'
import { JournalWriter } from './journal.ts'
import { CH_PARTS_METHOD, isPartObject, partitionOfPart, partKey, type ChPartObject, type ClickHousePartsManifest } from './parts-manifest.ts'
import { checkDataPath, foreignDataPath, freezeTable, frozenParts, frozenTableDir, removeShadow } from './parts-shadow.ts'
import { PartReader } from './parts-tar.ts'
import { tableIdentities } from './table-identity.ts'

/** A parts backup needs what a logical one needs, plus the server's data path as mounted here. */
export interface ClickHousePartsBackupOptions extends ClickHouseBackupOptions {
  dataPath: string
}

interface FrozenPart {
  table: TableInfo
  identity: string
  dir: string
  part: string
}

interface Run {
  opts: ClickHousePartsBackupOptions
  id: string
  signal: AbortSignal
  known: Map<string, KnownObject>
  journal: JournalWriter
  outcomes: UnitOutcome[]
  progress: Progress
}

/** Table identities of the databases of `tables` (none asked for no tables: `has([], …)` fails on 18.x). */
async function identitiesOf(driver: ClickHouseDriver, tables: readonly TableInfo[]): Promise<Map<string, string>> {
  const dbs = [...new Set(tables.map((t) => t.database))]
  return dbs.length === 0 ? new Map() : await tableIdentities(driver, dbs)
}

/** Active part counts per `db.table`, to tell "no parts" from "the freeze wrote elsewhere". */
async function activeParts(driver: ClickHouseDriver, signal: AbortSignal): Promise<Map<string, number>> {
  const rows = await driver.queryRows<{ database: string; table: string; n: string | number }>('SELECT database, table, count() AS n FROM system.parts WHERE active GROUP BY database, table', undefined, { signal })
  return new Map(rows.map((r) => [tableKey(r.database, r.table), Number(r.n)]))
}

/** Freezes each table and lists its frozen parts; TM_ERR_CLICKHOUSE_DATA_PATH when a table with parts left nothing under the data path. */
async function freezeAll(run: Run, tables: readonly TableInfo[], shadows: Set<string>): Promise<FrozenPart[]> {
  const { driver, dataPath } = run.opts
  const ids = await identitiesOf(driver, tables)
  const out: FrozenPart[] = []
  // Registered before the first freeze: a freeze cut short by a failure may still have written it.
  shadows.add(run.id)
  for (const table of tables) {
    const before = (await activeParts(driver, run.signal)).get(tableKey(table.database, table.name)) ?? 0
    const name = await freezeTable(driver, dataPath, table.database, table.name, run.id, run.signal)
    shadows.add(name)
    const parts = await frozenParts(dataPath, name, table.database, table.name)
    if (parts === undefined && before > 0) throw foreignDataPath(dataPath, table.database, table.name, name)
    const dir = frozenTableDir(dataPath, name, table.database, table.name)
    const identity = ids.get(tableKey(table.database, table.name)) ?? 'm0'
    for (const part of parts ?? []) out.push({ table, identity, dir: join(dir, part), part })
  }
  return out
}

/** Stores one frozen part, or references the stored object with the same name and checksums. */
async function storePart(run: Run, f: FrozenPart): Promise<void> {
  const { repo } = run.opts
  const checksums = createHash('sha256').update(await readFile(join(f.dir, 'checksums.txt'))).digest('hex')
  const rows = Number((await readFile(join(f.dir, 'count.txt'), 'utf8')).trim())
  const key = partKey(f.table.database, f.table.name, f.part, checksums)
  const earlier = run.known.get(key)
  // A journal's object may never have been completed; a committed manifest's exists.
  if (earlier && isPartObject(earlier.ref) && (earlier.committed || (await repo.hasObject(earlier.ref)))) {
    run.outcomes.push({ objects: [{ ...earlier.ref, tableIdentity: f.identity }], written: [], how: 'reused' })
    return
  }
  const { reused: _reused, ...stored } = await repo.writeObject(key, () => PartReader.open(f.dir), { signal: run.signal })
  const object: ChPartObject = {
    ...stored,
    database: f.table.database,
    table: f.table.name,
    partitionId: partitionOfPart(f.part),
    rows,
    columns: exportColumnNames(f.table),
    fingerprint: `p1-${checksums.slice(0, 16)}`,
    // A per-part content digest would read every row again; the part's own checksums and the object's sha256 cover its bytes.
    digest: null,
    tableIdentity: f.identity,
    writtenBy: run.id,
    part: f.part,
    checksumsSha256: checksums,
  }
  run.outcomes.push({ objects: [object], written: [object], how: 'exported' })
  run.journal.add(object)
  run.progress.bytesDone += stored.rawSize
}

/** Exports a non-MergeTree storage table logically, as the logical method does. */
async function exportLogical(run: Run, table: TableInfo, identity: string): Promise<void> {
  const { driver, repo } = run.opts
  const unit = tableUnit(table, identity, await measure(driver, table, undefined, true, run.signal))
  if (!unit) return
  const ctx: ExportContext = { driver, repo, backupId: run.id, signal: run.signal, contentDigest: false, onBytes: (n) => (run.progress.bytesDone += n) }
  const object = await exportUnit(ctx, table, unit)
  if (!object) return
  run.outcomes.push({ objects: [object], written: [object], how: 'exported' })
  run.journal.add(object)
}

function failure(err: unknown, id: string, journaled: number): TidemarkError {
  const e = asTidemarkError(err)
  const kept = journaled > 0 ? `; the ${journaled} objects uploaded before the failure are recorded and the next backup reuses them` : ''
  return new TidemarkError(e.code, `ClickHouse parts backup ${id} failed, nothing was committed${kept}: ${e.message}`, { cause: err, details: { ...e.details, backupId: id } })
}

function partsStats(run: Run, logicalTables: number): ClickHousePartsManifest['parts'] {
  const parts = run.outcomes.filter((o) => o.objects.some(isPartObject))
  const uploaded = parts.filter((o) => o.how === 'exported').length
  return { partsTotal: parts.length, partsUploaded: uploaded, partsReused: parts.length - uploaded, logicalTables }
}

/**
 * Runs one parts backup and commits its manifest. Rejects with
 * TM_ERR_CLICKHOUSE_DATA_PATH (data path missing, unreadable, or another
 * server's), TM_ERR_REPO_LOCKED, the driver's and sink's errors, or
 * TM_ERR_ABORTED; nothing is committed then and `shadow/<id>` is removed.
 */
export async function backupClickHouseParts(opts: ClickHousePartsBackupOptions): Promise<ClickHousePartsManifest> {
  const { driver, repo } = opts
  const lease = await repo.lock('clickhouse parts backup')
  const signal = opts.signal ? AbortSignal.any([opts.signal, lease.signal]) : lease.signal
  const startedAt = repo.clock.now()
  const id = newBackupId('clickhouse', startedAt)
  const journal = new JournalWriter(repo, id, opts.journalIntervalMs ?? 10_000)
  const shadows = new Set<string>()
  try {
    await checkDataPath(opts.dataPath, false)
    const catalog = await discover(driver, opts.filter)
    const known = opts.full ? new Map<string, KnownObject>() : await repo.knownObjects('clickhouse')
    const progress: Progress = { unitsDone: 0, unitsTotal: 0, bytesDone: 0, bytesTotal: 0 }
    const run: Run = { opts, id, signal, known, journal, outcomes: [], progress }
    const withData = catalog.tables.filter((t) => t.hasData)
    const frozen = await freezeAll(run, withData.filter((t) => t.mergeTree), shadows)
    const logical = withData.filter((t) => !t.mergeTree)
    const ids = await identitiesOf(driver, logical)
    progress.unitsTotal = frozen.length + logical.length
    const report = () => opts.onProgress?.({ ...progress })
    const work: (() => Promise<void>)[] = [
      ...frozen.map((f) => () => storePart(run, f)),
      ...logical.map((t) => () => exportLogical(run, t, ids.get(tableKey(t.database, t.name)) ?? 'm0')),
    ]
    await forEachLimit(work, opts.parallelism, async (w) => {
      await w()
      progress.unitsDone++
      report()
    }, signal)
    const base = assembleManifest({ id, startedAt, endedAt: repo.clock.now(), full: opts.full ?? false, endpoint: endpointOf(opts.url), catalog }, run.outcomes)
    const manifest: ClickHousePartsManifest = { ...base, method: CH_PARTS_METHOD, parts: partsStats(run, logical.length) }
    signal.throwIfAborted()
    await journal.settled()
    await repo.commitManifest(manifest)
    return manifest
  } catch (err) {
    await journal.flush()
    throw failure(err, id, journal.size)
  } finally {
    for (const name of shadows) await removeShadow(opts.dataPath, name)
    await lease.release()
  }
}
