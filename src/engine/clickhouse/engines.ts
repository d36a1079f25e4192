/**
 * What an engine means for backup: whether its rows are exported, and when its
 * DDL is replayed on restore.
 */
import type { TableKind } from './catalog.ts'

/** Engines outside the MergeTree family whose rows live in the table itself and can be read back and re-inserted. */
const PLAIN_STORAGE = new Set(['Log', 'TinyLog', 'StripeLog', 'Memory', 'EmbeddedRocksDB'])

const BY_ENGINE: Record<string, TableKind> = {
  View: 'view',
  LiveView: 'view',
  WindowView: 'view',
  MaterializedView: 'materialized-view',
  Dictionary: 'dictionary',
  Distributed: 'distributed',
}

/** Backup kind of an engine name (`system.tables.engine`); unknown engines are DDL only. */
export function kindOfEngine(engine: string): TableKind {
  if (isMergeTree(engine) || PLAIN_STORAGE.has(engine)) return 'table'
  return BY_ENGINE[engine] ?? 'external'
}

/** MergeTree family, replicated or not, shared or not: backed up partition by partition. */
export function isMergeTree(engine: string): boolean {
  return engine.endsWith('MergeTree')
}
