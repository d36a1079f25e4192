/**
 * Finds the PostgreSQL client tools (in the configured binDir, else on PATH) and reads
 * their major version, which must match the server's.
 */
import { constants } from 'node:fs'
import { access } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import { TidemarkError } from '../../errors.ts'
import { describeExit } from './pg-errors.ts'
import { runTool } from './run.ts'

/** The client tools the PostgreSQL source runs. */
export type PgToolName = 'pg_basebackup' | 'pg_receivewal' | 'pg_dump' | 'pg_restore' | 'psql'

/** A located tool and its version. */
export interface PgTool {
  name: PgToolName
  path: string
  major: number
  version: string
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The tool's absolute path: `binDir/name` when binDir is set, else the first match on PATH. Throws TM_ERR_POSTGRES_TOOL_MISSING. */
export async function locateTool(name: PgToolName, binDir?: string, pathEnv = process.env.PATH ?? ''): Promise<string> {
  const candidates = binDir ? [join(binDir, name)] : pathEnv.split(delimiter).filter((d) => d !== '').map((d) => join(d, name))
  for (const c of candidates) if (await isExecutable(c)) return c
  const where = binDir ? `in postgres.binDir (${binDir})` : 'on PATH'
  throw new TidemarkError('TM_ERR_POSTGRES_TOOL_MISSING', `${name} was not found ${where}. Install the PostgreSQL client tools of the server's major version (Debian: postgresql-client-<major>), or set postgres.binDir to their directory`, { details: { tool: name, binDir } })
}

/** Parses `pg_basebackup (PostgreSQL) 15.18 (Debian …)` into its major version; undefined if it is not such a line. */
export function parseToolVersion(text: string): { major: number; version: string } | undefined {
  const m = /\(PostgreSQL\) (\d+)(?:\.(\d+))?/.exec(text)
  if (!m) return undefined
  return { major: Number(m[1]), version: m[2] === undefined ? (m[1] as string) : `${m[1]}.${m[2]}` }
}

/** Locates a tool and asks it for its version. Throws TM_ERR_POSTGRES_TOOL_MISSING or TM_ERR_POSTGRES_TOOL. */
export async function inspectTool(name: PgToolName, binDir?: string): Promise<PgTool> {
  const path = await locateTool(name, binDir)
  const res = await runTool(path, ['--version'], { timeoutMs: 10_000 })
  const v = res.code === 0 ? parseToolVersion(res.stdout) : undefined
  if (!v) {
    throw new TidemarkError('TM_ERR_POSTGRES_TOOL', `${path} --version did not print a PostgreSQL version (${describeExit(res.code, res.signal)}): ${(res.stdout + res.stderr).trim().slice(0, 200)}`, { details: { tool: name, path } })
  }
  return { name, path, ...v }
}

/** Parses a size setting as SHOW prints it (`16MB`, `1GB`, `8kB`, `1048576`) into bytes. */
export function parseSizeSetting(text: string): number {
  const m = /^(\d+)\s*(B|kB|MB|GB|TB)?$/.exec(text.trim())
  if (!m) throw new TidemarkError('TM_ERR_POSTGRES_FORMAT', `"${text}" is not a PostgreSQL size`)
  const unit = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }[(m[2] ?? 'B') as 'B']
  return Number(m[1]) * unit
}
