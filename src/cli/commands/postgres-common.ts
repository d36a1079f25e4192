/**
 * What the PostgreSQL commands share (not a command itself): the `postgres` settings
 * with their defaults resolved, the preflight, the path of the launcher that
 * restore_command runs, and the configuration file to pass it.
 */
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Config } from '../../config.ts'
import { preflight, type PreflightResult } from '../../engine/postgres/preflight.ts'
import type { PgToolName } from '../../engine/postgres/tools.ts'
import { TidemarkError } from '../../errors.ts'
import type { CommandContext } from '../command.ts'

/** The physical method's settings. */
export interface PhysicalSettings {
  /** Any role, for SQL (the heartbeat, the server clock). */
  url: string
  /** The role with REPLICATION (postgres.replicationUrl, else postgres.url). */
  replicationUrl: string
  binDir: string | undefined
  slot: string
  /** Where pg_receivewal writes (postgres.walDir, else ./tidemark-wal). */
  walDir: string
  intervalMs: number
  walTimeoutMs: number
}

/** The physical settings; TM_ERR_CONFIG_INVALID when no server is configured or postgres.method is logical. */
export function physicalSettings(config: Config, cwd: string): PhysicalSettings {
  const p = config.postgres
  if (p.url === undefined) throw new TidemarkError('TM_ERR_CONFIG_INVALID', 'no PostgreSQL server is configured: set postgres.url (POSTGRES_DATABASE_URI), and postgres.replicationUrl for a separate replication role')
  if (p.method !== 'physical') throw new TidemarkError('TM_ERR_CONFIG_INVALID', `postgres.method is ${p.method}: this command belongs to the physical method (the logical method has no WAL archive); set postgres.method: physical to use it`)
  return {
    url: p.url,
    replicationUrl: p.replicationUrl ?? p.url,
    binDir: p.binDir,
    slot: p.slot,
    walDir: p.walDir ?? resolve(cwd, 'tidemark-wal'),
    intervalMs: p.walPartialIntervalSeconds * 1000,
    walTimeoutMs: p.baseBackupWalTimeoutSeconds * 1000,
  }
}

/** The logical method's settings. */
export interface LogicalSettings {
  /** The server and database to dump (the database of postgres.url). */
  url: string
  binDir: string | undefined
}

/** The logical settings; TM_ERR_CONFIG_INVALID when no server is configured. */
export function logicalSettings(config: Config): LogicalSettings {
  const p = config.postgres
  if (p.url === undefined) throw new TidemarkError('TM_ERR_CONFIG_INVALID', 'no PostgreSQL server is configured: set postgres.url (POSTGRES_DATABASE_URI)')
  return { url: p.url, binDir: p.binDir }
}

/** Runs the preflight for `tools` (psql is always checked); throws its first problem as a TidemarkError. */
export function physicalPreflight(s: PhysicalSettings, tools: PgToolName[], slot?: string): Promise<PreflightResult> {
  return preflight({ url: s.replicationUrl, binDir: s.binDir, tools, slot })
}

/** The path of a located tool from a passed preflight. */
export function toolPath(r: PreflightResult, name: PgToolName): string {
  const t = r.tools[name]
  if (!t) throw new TidemarkError('TM_ERR_POSTGRES_TOOL_MISSING', `${name} was not located by the preflight`)
  return t.path
}

/** The absolute path of bin/tidemark, which restore_command runs. */
export function launcherPath(): string {
  return fileURLToPath(new URL('../../../bin/tidemark', import.meta.url))
}

/** The configuration file this invocation used (--config, else TIDEMARK_CONFIG), absolute; undefined when none. */
export function configFile(ctx: CommandContext): string | undefined {
  const given = ctx.string('config') ?? (ctx.env.TIDEMARK_CONFIG || undefined)
  return given === undefined ? undefined : resolve(ctx.cwd, given)
}
