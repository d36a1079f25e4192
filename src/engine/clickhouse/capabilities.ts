/**
 * What a server supports, found by asking it (system tables and settings)
 * rather than by trusting a version table. Read-only and cheap; backup and
 * restore call it once per run.
 */
import type { ClickHouseDriver, ClickHouseSettings } from './driver.ts'

/** Features that change how tidemark talks to a server. */
export interface Capabilities {
  version: string
  /** [major, minor] of `version()`. */
  major: number
  minor: number
  /** system.tables.create_table_query exists (else SHOW CREATE TABLE per table). */
  createTableQuery: boolean
  /** `LowCardinality` type: 'native', 'experimental' (needs allow_experimental_low_cardinality_type=1 to create tables), or 'absent'. */
  lowCardinality: 'native' | 'experimental' | 'absent'
  /** `DELETE FROM … WHERE` (lightweight delete) is available. */
  lightweightDelete: boolean
  /** Servers from 21.5 skip parts by `_partition_id` (ClickHouse PR 21401); older ones read every part and filter. */
  partitionIdPrunes: boolean
  /** Settings a restore must send with CREATE statements so every type the server knows can be created. */
  createSettings: ClickHouseSettings
}

function versionParts(version: string): [number, number] {
  const [major, minor] = version.split('.').map((n) => Number.parseInt(n, 10))
  return [major ?? 0, minor ?? 0]
}

/** Probes the server behind `driver`. */
export async function probeCapabilities(driver: ClickHouseDriver): Promise<Capabilities> {
  const version = await driver.serverVersion()
  const [major, minor] = versionParts(version)
  const tableCols = await driver.queryRows<{ name: string }>("SELECT name FROM system.columns WHERE database = 'system' AND table = 'tables'")
  const settings = await driver.queryRows<{ name: string; value: string }>(
    "SELECT name, value FROM system.settings WHERE name IN ('allow_experimental_low_cardinality_type', 'allow_experimental_lightweight_delete', 'enable_lightweight_delete')",
  )
  const families = await driver.queryRows<{ name: string }>("SELECT name FROM system.data_type_families WHERE name = 'LowCardinality'")
  const setting = (name: string) => settings.find((s) => s.name === name)
  // The experimental switch survives on newer servers as an obsolete no-op; only before 19.x was it required.
  const lcExperimental = setting('allow_experimental_low_cardinality_type')?.value === '0' && major < 19
  const lowCardinality = families.length === 0 ? 'absent' : lcExperimental ? 'experimental' : 'native'
  return {
    version,
    major,
    minor,
    createTableQuery: tableCols.some((c) => c.name === 'create_table_query'),
    lowCardinality,
    lightweightDelete: setting('enable_lightweight_delete') !== undefined || setting('allow_experimental_lightweight_delete') !== undefined,
    partitionIdPrunes: major > 21 || (major === 21 && minor >= 5),
    createSettings: lowCardinality === 'experimental' ? { allow_experimental_low_cardinality_type: 1 } : {},
  }
}
