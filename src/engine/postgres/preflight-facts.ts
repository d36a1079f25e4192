/**
 * Gathers what the preflight judges: settings and roles over plain SQL, and what a
 * physical replication connection shows (which also proves the pg_hba.conf entry, the
 * REPLICATION attribute and a free WAL sender). Failures are recorded as facts.
 */
import { TidemarkError, type ErrorCode } from '../../errors.ts'
import { psql, psqlReplication, rows } from './psql.ts'
import { inspectTool, parseSizeSetting, type PgTool, type PgToolName } from './tools.ts'
import { parseLsn } from './wal.ts'

/** What plain SQL shows (absent when pg_hba.conf allows the role replication connections only). */
export interface SqlFacts {
  serverVersionNum: number
  walLevel: string
  maxWalSenders: number
  walSendersInUse: number
  maxReplicationSlots: number
  slotsInUse: number
  slotExists: boolean
  slotActive: boolean
  roleName: string
  canReplicate: boolean
  tablespaces: string[]
}

/** What a physical replication connection shows. */
export interface ReplicationFacts {
  systemId: string
  timeline: number
  xlogPos: bigint
  walLevel: string
  walSegSize: number
  serverVersionNum: number
}

/** Everything the preflight judges; an error stands in for facts that could not be read. */
export interface PreflightFacts {
  sql?: SqlFacts
  sqlError?: TidemarkError
  replication?: ReplicationFacts
  replicationError?: TidemarkError
  tools: Array<{ name: PgToolName; tool?: PgTool; error?: TidemarkError }>
}

const err = (code: ErrorCode, message: string) => new TidemarkError(code, message)

const quote = (s: string) => `'${s.replace(/'/g, "''")}'`

/**
 * Reads the facts over plain SQL. WAL senders are counted in pg_stat_replication, which
 * lists every role's; pg_stat_activity hides other roles' backend types.
 */
export async function sqlFacts(url: string, slot: string, psqlPath?: string): Promise<SqlFacts> {
  const q = `SELECT current_setting('server_version_num'), current_setting('wal_level'), current_setting('max_wal_senders'),
    (SELECT count(*) FROM pg_stat_replication),
    current_setting('max_replication_slots'), (SELECT count(*) FROM pg_replication_slots),
    (SELECT count(*) FROM pg_replication_slots WHERE slot_name = ${quote(slot)}),
    (SELECT count(*) FROM pg_replication_slots WHERE slot_name = ${quote(slot)} AND active),
    current_user, (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user),
    (SELECT coalesce(string_agg(spcname, ',' ORDER BY spcname), '') FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global'))`
  const r = rows(await psql(url, q, { psqlPath }))[0] ?? []
  if (r.length !== 11) throw err('TM_ERR_POSTGRES_FORMAT', `unexpected preflight query output: ${JSON.stringify(r)}`)
  const n = (i: number) => Number(r[i])
  return {
    serverVersionNum: n(0), walLevel: r[1] as string, maxWalSenders: n(2), walSendersInUse: n(3),
    maxReplicationSlots: n(4), slotsInUse: n(5), slotExists: n(6) > 0, slotActive: n(7) > 0,
    roleName: r[8] as string, canReplicate: r[9] === 't', tablespaces: r[10] === '' ? [] : (r[10] as string).split(','),
  }
}

/** Reads the facts over a physical replication connection (proves pg_hba, REPLICATION and a free WAL sender). */
export async function replicationFacts(url: string, psqlPath?: string): Promise<ReplicationFacts> {
  const [ident, walLevel, segSize, version] = await psqlReplication(url, ['IDENTIFY_SYSTEM', 'SHOW wal_level', 'SHOW wal_segment_size', 'SHOW server_version_num'], { psqlPath })
  const id = rows(ident ?? '')[0] ?? []
  if (id.length < 3 || walLevel === undefined || segSize === undefined || version === undefined) throw err('TM_ERR_POSTGRES_FORMAT', 'unexpected IDENTIFY_SYSTEM output')
  return { systemId: id[0] as string, timeline: Number(id[1]), xlogPos: parseLsn(id[2] as string), walLevel, walSegSize: parseSizeSetting(segSize), serverVersionNum: Number(version) }
}

const settle = async <T>(p: Promise<T>): Promise<{ ok?: T; error?: TidemarkError }> => {
  try {
    return { ok: await p }
  } catch (e) {
    if (e instanceof TidemarkError) return { error: e }
    throw e
  }
}

/** Gathers every fact; failures become facts too (never throws for a server-side problem). */
export async function gatherPreflightFacts(input: { url: string; binDir?: string; tools: PgToolName[]; slot?: string }): Promise<PreflightFacts> {
  const psqlTool = await settle(inspectTool('psql', input.binDir))
  const psqlPath = psqlTool.ok?.path
  // Without psql nothing can be asked; its absence is reported with the other tools.
  const noPsql = psqlTool.error ?? err('TM_ERR_POSTGRES_TOOL_MISSING', 'psql is missing')
  const sql = psqlPath ? await settle(sqlFacts(input.url, input.slot ?? '', psqlPath)) : { error: noPsql }
  const repl = psqlPath ? await settle(replicationFacts(input.url, psqlPath)) : { error: noPsql }
  const tools: PreflightFacts['tools'] = []
  for (const name of new Set<PgToolName>(['psql', ...input.tools])) {
    const r = name === 'psql' ? psqlTool : await settle(inspectTool(name, input.binDir))
    tools.push({ name, tool: r.ok, error: r.error })
  }
  return { sql: sql.ok, sqlError: sql.error, replication: repl.ok, replicationError: repl.error, tools }
}
