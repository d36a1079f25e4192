/**
 * The logical method's preflight: no replication access is needed, only a plain SQL
 * connection and client tools (pg_dump / pg_restore, psql) of the server's major
 * version. Reads only.
 */
import { TidemarkError } from '../../errors.ts'
import { psql, rows } from './psql.ts'
import { inspectTool, type PgTool, type PgToolName } from './tools.ts'

/** A server fit for the logical method. */
export interface LogicalPreflight {
  serverMajor: number
  database: string
  tools: Partial<Record<PgToolName, PgTool>>
}

/** Judges tool versions against the server's major (pure): the first mismatch, or undefined. */
export function toolMismatch(tools: PgTool[], serverMajor: number): TidemarkError | undefined {
  const t = tools.find((x) => x.major !== serverMajor)
  if (!t) return undefined
  return new TidemarkError('TM_ERR_POSTGRES_TOOL_VERSION', `${t.path} is PostgreSQL ${t.version} but the server is PostgreSQL ${serverMajor}: install the client tools of version ${serverMajor} (Debian: postgresql-client-${serverMajor}) or point postgres.binDir at them`, { details: { tool: t.name, toolMajor: t.major, serverMajor } })
}

/** Locates `tools` (and psql), reads the server's version and database; throws a TidemarkError for the first problem. */
export async function logicalPreflight(url: string, tools: PgToolName[], binDir?: string): Promise<LogicalPreflight> {
  const found: PgTool[] = []
  for (const name of new Set<PgToolName>(['psql', ...tools])) found.push(await inspectTool(name, binDir))
  const psqlPath = (found[0] as PgTool).path
  const r = rows(await psql(url, "SELECT current_setting('server_version_num'), current_database()", { psqlPath, timeoutMs: 30_000 }))[0] ?? []
  if (r.length !== 2 || !/^\d+$/.test(r[0] as string)) throw new TidemarkError('TM_ERR_POSTGRES_FORMAT', `unexpected version query output: ${JSON.stringify(r)}`)
  const serverMajor = Math.floor(Number(r[0]) / 10000)
  const bad = toolMismatch(found, serverMajor)
  if (bad) throw bad
  return { serverMajor, database: r[1] as string, tools: Object.fromEntries(found.map((t) => [t.name, t])) }
}
