/**
 * The repository format: object key layout and the shapes of config.json, object
 * references and manifests. FORMAT.md beside this file is the prose version; keep
 * both in step and bump FORMAT_VERSION on any incompatible change.
 */
import { randomBytes } from 'node:crypto'
import type { EncryptionRecord } from './keys.ts'

export const FORMAT_NAME = 'tidemark-repository'
export const FORMAT_VERSION = 1

export const CONFIG_KEY = 'config.json'
export const DATA_PREFIX = 'data/'
export const MANIFEST_PREFIX = 'manifests/'
export const JOURNAL_PREFIX = 'journal/'
export const LOCK_PREFIX = 'locks/'

/** A store whose backups live in the repository. */
export type SourceName = 'clickhouse' | 'postgres'
export const SOURCES: readonly SourceName[] = ['clickhouse', 'postgres']
const SOURCE_TAG: Record<SourceName, string> = { clickhouse: 'ch', postgres: 'pg' }

export interface RepoConfig {
  format: typeof FORMAT_NAME
  version: number
  id: string
  createdAt: string
  encryption: EncryptionRecord | null
}

/** How an object's bytes were transformed; enough to read it back. */
export type Codec = 'zstd' | 'zstd+aes256gcm'

/** What a manifest says about one stored data object. */
export interface ObjectRef {
  key: string
  /** Stored (compressed, maybe encrypted) bytes. */
  size: number
  /** sha256 of the stored bytes, hex. */
  sha256: string
  rawSize: number
  codec: Codec
  chunkSize: number
  chunks: number
}

/** Fields every manifest has; each source adds its own. */
export interface ManifestBase {
  format: typeof FORMAT_NAME
  version: number
  id: string
  source: SourceName
  /** e.g. `clickhouse-logical`, `postgres-base`, `postgres-dump`. */
  method: string
  startedAt: string
  endedAt: string
  /** Every data object this backup needs, and nothing else. */
  objects: ObjectRef[]
}

const ID_RE = /^\d{8}T\d{6}Z-[a-z]{2}-[0-9a-f]{4}$/

/** A new backup id: sorts by time, e.g. `20261128T094000Z-ch-3fa1`. */
export function newBackupId(source: SourceName, at: Date): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')
  return `${stamp}-${SOURCE_TAG[source]}-${randomBytes(2).toString('hex')}`
}

/**
 * Of ids sorted ascending, those that may be the newest backup: ids sort by time to the
 * second and a random suffix orders those of one second arbitrarily, so all of the last
 * second are taken.
 */
export function newestIds(sortedIds: readonly string[]): string[] {
  const last = sortedIds.at(-1)
  if (last === undefined) return []
  const stamp = last.slice(0, last.indexOf('-'))
  return sortedIds.filter((id) => id.startsWith(`${stamp}-`))
}

export function isBackupId(id: string): boolean {
  return ID_RE.test(id)
}

/** The source a backup id belongs to, from its tag. */
export function sourceOfBackupId(id: string): SourceName | undefined {
  const tag = id.split('-')[1]
  return SOURCES.find((s) => SOURCE_TAG[s] === tag)
}

export function manifestKey(source: SourceName, id: string): string {
  return `${MANIFEST_PREFIX}${source}/${id}.json`
}

export function journalKey(source: SourceName, id: string): string {
  return `${JOURNAL_PREFIX}${source}/${id}.json`
}

/** Data keys are `data/<source>/<path>`; `path` comes from the content's identity. */
export function dataKey(source: SourceName, path: string): string {
  return `${DATA_PREFIX}${source}/${path}`
}
