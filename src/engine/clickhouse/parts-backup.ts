/**
 * A ClickHouse parts backup: FREEZE every selected MergeTree-family table (an
 * incremental backup: only the partitions with a part not stored before) into
 * `shadow/<backup id>/`, store each frozen part directory as one object keyed
 * by table, part name and the hash of its checksums.txt (a part stored before
 * is referenced, not uploaded again), export the other storage tables
 * logically (Log, Memory…: they have no parts), keep views as DDL only, and
 * commit a manifest shaped like the logical one. The shadow directory is
 * removed whatever happens. Holds the writer lease throughout.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { asTidemarkError, TidemarkError } from '../../errors.ts'
import { forEachLimit, limiter } from '../parallel.ts'
import { newBackupId, type KnownObject, type ObjectChecks } from '../repository/index.ts'
import { assembleManifest, type UnitOutcome } from './backup-manifest.ts'
import type { ClickHouseBackupOptions, Progress } from './backup.ts'
import { exportColumnNames, tableUnit } from './backup-plan.ts'
import { tableKey, type TableInfo } from './catalog.ts'
import { endpointOf } from './connection.ts'
import { discover } from './discovery.ts'
import type { ClickHouseDriver } from './driver.ts'
import { exportUnit, measure, type ExportContext } from './export-unit.ts'
import { JournalWriter } from './journal.ts'
import { CH_PARTS_METHOD, isPartObject, partitionOfPart, partKey, partsAtOnce, type ChPartObject, type ClickHousePartsManifest } from './parts-manifest.ts'
import { checkDataPath, foreignDataPath, freezeTable, frozenParts, frozenTableDir, removeShadow, tableDataDir } from './parts-shadow.ts'
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
  /** Existence checks of the reused objects, started as each is chosen; the commit awaits them. */
  checks: ObjectChecks
  journal: JournalWriter
  outcomes: UnitOutcome[]
  progress: Progress
}

/** A part the server lists as active. */
interface LivePart {
  partitionId: string
  name: string
}

/** Active parts per `db.table`: to tell "no parts" from "the freeze wrote elsewhere", and to find the partitions that changed. */
async function liveParts(driver: ClickHouseDriver, signal: AbortSignal | undefined): Promise<Map<string, LivePart[]>> {
  const rows = await driver.queryRows<{ database: string; table: string; partition_id: string; name: string }>(
    'SELECT database, table, partition_id, name FROM system.parts WHERE active ORDER BY database, table, name',
    undefined,
    { signal },
  )
  const out = new Map<string, LivePart[]>()
  for (const r of rows) {
    const key = tableKey(r.database, r.table)
    let list = out.get(key)
    if (!list) out.set(key, (list = []))
    list.push({ partitionId: r.partition_id, name: r.name })
  }
  return out
}

/**
 * The sha256 of a part directory's checksums.txt, which names every file of the part with
 * its size and hash. Read with one synchronous call: a few KiB, mostly in the page cache,
 * and an incremental backup reads one per active part.
 */
function checksumsOf(dir: string): string {
  return createHash('sha256').update(readFileSync(join(dir, 'checksums.txt'))).digest('hex')
}

/** The checksums hash of a live part directory; '' (matches nothing stored) when it cannot be read. */
function liveChecksums(dir: string): string {
  try {
    return checksumsOf(dir)
  } catch {
    return ''
  }
}

/** The stored object of a part with this name and checksums, if one is known and (for a journal's) exists. */
async function storedPart(run: Run, table: TableInfo, part: string, checksums: string): Promise<ChPartObject | undefined> {
  const earlier = run.known.get(partKey(table.database, table.name, part, checksums))
  // A journal's object may never have been completed; a committed manifest's exists.
  if (earlier && isPartObject(earlier.ref) && (earlier.committed || (await run.opts.repo.hasObject(earlier.ref)))) return earlier.ref
  return undefined
}

function reuse(run: Run, earlier: ChPartObject, identity: string): void {
  run.checks.add(earlier)
  run.outcomes.push({ objects: [{ ...earlier, tableIdentity: identity }], written: [], how: 'reused' })
}

/**
 * The partitions of a table that need a freeze: those with a part not stored before.
 * The others are referenced from the repository right away, found by the checksums.txt
 * of their live part directories (an active part is never changed in place; one merged
 * away meanwhile is kept on disk for minutes, and one that cannot be read counts as
 * changed). Undefined: freeze the whole table (a full backup, or every partition changed).
 */
async function changedPartitions(run: Run, table: TableInfo, live: readonly LivePart[], identity: string): Promise<string[] | undefined> {
  if (run.opts.full || run.known.size === 0 || live.length === 0) return undefined
  const dir = tableDataDir(run.opts.dataPath, table.database, table.name)
  const partitions = new Map<string, LivePart[]>()
  for (const p of live) partitions.set(p.partitionId, [...(partitions.get(p.partitionId) ?? []), p])
  const unchanged: ChPartObject[] = []
  const changed: string[] = []
  await forEachLimit([...partitions], 4, async ([id, parts]) => {
    const found = await Promise.all(parts.map((p) => storedPart(run, table, p.name, liveChecksums(join(dir, p.name)))))
    if (found.every((f) => f !== undefined)) unchanged.push(...(found as ChPartObject[]))
    else changed.push(id)
  })
  if (changed.length === partitions.size) return undefined
  for (const earlier of unchanged) reuse(run, earlier, identity)
  return changed.sort()
}

/**
 * Freezes each table (an incremental backup: only its partitions that changed) and hands
 * each table's frozen parts to `onFrozen` as soon as they are listed, so they are stored
 * while other tables still freeze; TM_ERR_CLICKHOUSE_DATA_PATH when a freeze of a table
 * with parts left nothing under the data path. `live` is the server's active parts, `ids`
 * the tables' identities.
 */
async function freezeAll(run: Run, tables: readonly TableInfo[], live: Map<string, LivePart[]>, ids: Map<string, string>, shadows: Set<string>, onFrozen: (parts: FrozenPart[]) => void): Promise<void> {
  const { driver, dataPath } = run.opts
  // Registered before the first freeze: a freeze cut short by a failure may still have written it.
  shadows.add(run.id)
  // At once (freezeTable queues those of a server without WITH NAME).
  const freeze = async (table: TableInfo, partition: string | undefined): Promise<string> => {
    const name = await freezeTable(driver, dataPath, table.database, table.name, run.id, run.signal, partition)
    // Registered at once: a later failure must still remove it.
    shadows.add(name)
    return name
  }
  // Tables at once: finding the changed partitions is small reads, mostly waiting.
  await forEachLimit(tables, 4, async (table) => {
    const identity = ids.get(tableKey(table.database, table.name)) ?? 'm0'
    const parts = live.get(tableKey(table.database, table.name)) ?? []
    const changed = await changedPartitions(run, table, parts, identity)
    // Settled, not raced: the shadow directory is removed after a failure only once no freeze can still write to it.
    const results = await Promise.allSettled((changed ?? [undefined]).map((partition) => freeze(table, partition)))
    const failed = results.find((r) => r.status === 'rejected')
    if (failed) throw failed.reason
    const names = new Set(results.map((r) => (r as PromiseFulfilledResult<string>).value))
    const frozen: FrozenPart[] = []
    for (const name of names) {
      const dir = frozenTableDir(dataPath, name, table.database, table.name)
      for (const part of (await frozenParts(dataPath, name, table.database, table.name)) ?? []) frozen.push({ table, identity, dir: join(dir, part), part })
    }
    // A freeze of partitions (or of a table) that have parts must leave some under the data path.
    if (frozen.length === 0 && (changed ?? parts).length > 0) throw foreignDataPath(dataPath, table.database, table.name, [...names][0] ?? run.id)
    onFrozen(frozen.sort((a, b) => a.dir.localeCompare(b.dir)))
  }, run.signal)
}

/**
 * Runs units of work as they arrive, `limit` at once, counting them in `progress`. After
 * the first failure (or an abort) no new unit starts; done() waits for the running ones,
 * then throws that failure.
 */
function unitQueue(limit: number, progress: Progress, report: () => void, signal: AbortSignal) {
  const gate = limiter(limit)
  const running: Promise<void>[] = []
  let failure: { err: unknown } | undefined
  const fail = (err: unknown) => {
    failure ??= { err }
  }
  return {
    fail,
    add(unit: () => Promise<void>): void {
      progress.unitsTotal++
      running.push(gate(async () => {
        if (failure) return
        signal.throwIfAborted()
        await unit()
        progress.unitsDone++
        report()
      }).catch(fail))
    },
    async done(): Promise<void> {
      await Promise.all(running)
      if (failure) throw failure.err
    },
  }
}

/**
 * The zstd level of part objects, whatever the repository's: a part's column files are
 * already compressed by ClickHouse (LZ4 by default), where level 3 saves little over level
 * 1 for three times the CPU (bench/RESULTS.md, 2026-12-04: the 260 MiB of parts of the
 * benchmark dataset, 218.4 MB at level 1 in 0.64–0.83 s, 214.9 MB at level 3 in 2.0 s).
 */
const PARTS_ZSTD_LEVEL = 1

/** Stores one frozen part, or references the stored object with the same name and checksums. */
async function storePart(run: Run, f: FrozenPart): Promise<void> {
  const { repo } = run.opts
  const checksums = checksumsOf(f.dir)
  const earlier = await storedPart(run, f.table, f.part, checksums)
  if (earlier) return reuse(run, earlier, f.identity)
  const rows = Number((await readFile(join(f.dir, 'count.txt'), 'utf8')).trim())
  const key = partKey(f.table.database, f.table.name, f.part, checksums)
  const { reused: _reused, ...stored } = await repo.writeObject(key, () => PartReader.open(f.dir), { signal: run.signal, level: PARTS_ZSTD_LEVEL })
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
  // Read-only round trips to the server, made while the lease is taken.
  const server = Promise.all([discover(driver, opts.filter), liveParts(driver, opts.signal), tableIdentities(driver)])
  server.catch(() => undefined)
  const lease = await repo.lock('clickhouse parts backup')
  const signal = opts.signal ? AbortSignal.any([opts.signal, lease.signal]) : lease.signal
  const startedAt = repo.clock.now()
  const id = newBackupId('clickhouse', startedAt)
  const journal = new JournalWriter(repo, id, opts.journalIntervalMs ?? 10_000)
  const shadows = new Set<string>()
  const checks = repo.objectChecks()
  let removing: Promise<void> | undefined
  // Started once, after the last freeze; the finally awaits it whatever happened.
  const removeShadows = (): Promise<void> => {
    if (!removing) {
      removing = (async () => {
        for (const name of shadows) await removeShadow(opts.dataPath, name)
      })()
      removing.catch(() => undefined)
    }
    return removing
  }
  try {
    await checkDataPath(opts.dataPath, false)
    // The objects stored before are read under the lease: no prune can remove them meanwhile.
    const [[catalog, live, ids], known] = await Promise.all([server, opts.full ? new Map<string, KnownObject>() : repo.knownObjects('clickhouse')])
    const progress: Progress = { unitsDone: 0, unitsTotal: 0, bytesDone: 0, bytesTotal: 0 }
    const run: Run = { opts, id, signal, known, checks, journal, outcomes: [], progress }
    const withData = catalog.tables.filter((t) => t.hasData)
    const logical = withData.filter((t) => !t.mergeTree)
    const units = unitQueue(partsAtOnce(opts.parallelism), progress, () => opts.onProgress?.({ ...progress }), signal)
    // Each table's parts are stored as soon as it is frozen; the other tables are exported after them.
    await freezeAll(run, withData.filter((t) => t.mergeTree), live, ids, shadows, (parts) => {
      for (const f of parts) units.add(() => storePart(run, f))
    }).catch(units.fail)
    for (const t of logical) units.add(() => exportLogical(run, t, ids.get(tableKey(t.database, t.name)) ?? 'm0'))
    // After a failed freeze too: the shadow directory goes only once nothing reads it.
    await units.done()
    const base = assembleManifest({ id, startedAt, endedAt: repo.clock.now(), full: opts.full ?? false, endpoint: endpointOf(opts.url), catalog }, run.outcomes)
    const manifest: ClickHousePartsManifest = { ...base, method: CH_PARTS_METHOD, parts: partsStats(run, logical.length) }
    signal.throwIfAborted()
    // The frozen parts are stored: their shadow directory goes while the manifest is committed (the finally waits for it).
    void removeShadows()
    await journal.settled()
    await repo.commitManifest(manifest, checks)
    return manifest
  } catch (err) {
    await journal.flush()
    throw failure(err, id, journal.size)
  } finally {
    await Promise.all([removeShadows(), checks.settled()])
    await lease.release()
  }
}
