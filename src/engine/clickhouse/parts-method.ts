/**
 * Which ClickHouse backup method runs (`clickhouse.method`): `logical`,
 * `parts`, or `auto` = parts when the configured data path is readable and
 * is the data path of the server being backed up (proved by a probe FREEZE
 * whose shadow directory must appear under it), logical otherwise. The
 * decision and its reason are returned for the logs; the manifest's `method`
 * records what ran.
 */
import { randomBytes } from 'node:crypto'
import { TidemarkError, isTidemarkError } from '../../errors.ts'
import { backupClickHouse, type ClickHouseBackupOptions } from './backup.ts'
import type { ClickHouseDriver } from './driver.ts'
import type { ClickHouseManifest } from './manifest.ts'
import { backupClickHouseParts } from './parts-backup.ts'
import type { ClickHousePartsManifest } from './parts-manifest.ts'
import { checkDataPath, foreignDataPath, freezeTable, frozenParts, removeShadow } from './parts-shadow.ts'

/** The configured choice. */
export type ChMethodSetting = 'logical' | 'parts' | 'auto'

/** What will run, and why. */
export interface MethodChoice {
  method: 'logical' | 'parts'
  reason: string
}

/**
 * Throws TM_ERR_CLICKHOUSE_DATA_PATH unless `dataPath` is readable and a
 * FREEZE on the server writes under it. Freezes (then removes) one table with
 * active parts; with no such table there is nothing to compare and only
 * readability is checked.
 */
export async function probeDataPath(driver: ClickHouseDriver, dataPath: string, signal?: AbortSignal): Promise<void> {
  await checkDataPath(dataPath, false)
  const [t] = await driver.queryRows<{ database: string; table: string }>("SELECT database, table FROM system.parts WHERE active AND database != 'system' LIMIT 1", undefined, { signal })
  if (!t) return
  const name = `tidemark-probe-${randomBytes(6).toString('hex')}`
  try {
    const shadow = await freezeTable(driver, dataPath, t.database, t.table, name, signal)
    if ((await frozenParts(dataPath, shadow, t.database, t.table)) === undefined) throw foreignDataPath(dataPath, t.database, t.table, shadow)
  } finally {
    await removeShadow(dataPath, name)
  }
}

/** Decides the method; `parts` without a data path is TM_ERR_CLICKHOUSE_DATA_PATH, `auto` falls back to logical with the reason. */
export async function chooseMethod(driver: ClickHouseDriver, setting: ChMethodSetting, dataPath: string | undefined, signal?: AbortSignal): Promise<MethodChoice> {
  if (setting === 'logical') return { method: 'logical', reason: 'clickhouse.method is logical' }
  if (dataPath === undefined) {
    if (setting === 'auto') return { method: 'logical', reason: 'clickhouse.method is auto and no clickhouse.dataPath is configured' }
    throw new TidemarkError('TM_ERR_CLICKHOUSE_DATA_PATH', 'clickhouse.method is parts but clickhouse.dataPath (TIDEMARK_CLICKHOUSE_DATA_PATH) is not set: give the server\'s <path> as mounted here, or use clickhouse.method: logical')
  }
  if (setting === 'parts') return { method: 'parts', reason: 'clickhouse.method is parts' }
  try {
    await probeDataPath(driver, dataPath, signal)
    return { method: 'parts', reason: `clickhouse.method is auto and ${dataPath} is this server's data path` }
  } catch (err) {
    if (!isTidemarkError(err, 'TM_ERR_CLICKHOUSE_DATA_PATH')) throw err
    return { method: 'logical', reason: `clickhouse.method is auto and the data path cannot be used: ${err.message}` }
  }
}

/** Runs the backup with the chosen method; `onChoice` hears the decision before anything is written. */
export async function backupWithMethod(
  opts: ClickHouseBackupOptions & { method: ChMethodSetting; dataPath?: string | undefined; onChoice?: (c: MethodChoice) => void },
): Promise<ClickHouseManifest | ClickHousePartsManifest> {
  const choice = await chooseMethod(opts.driver, opts.method, opts.dataPath, opts.signal)
  opts.onChoice?.(choice)
  if (choice.method === 'logical') return await backupClickHouse(opts)
  return await backupClickHouseParts({ ...opts, dataPath: opts.dataPath as string })
}
