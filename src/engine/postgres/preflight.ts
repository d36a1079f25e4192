/**
 * Checks, before anything is started or created, that a server can be backed up
 * physically: wal_level, the REPLICATION attribute and a pg_hba replication entry, a
 * free WAL sender (and slot), a single tablespace, and client tools of the server's
 * major version. Gathering facts (queries, tool runs) is separate from judging them
 * (`evaluatePreflight`, pure). Nothing on the server is changed.
 */
import { TidemarkError, type ErrorCode } from '../../errors.ts'
import { gatherPreflightFacts, type PreflightFacts, type ReplicationFacts } from './preflight-facts.ts'
import { validateSlotName } from './receivewal.ts'
import type { PgTool, PgToolName } from './tools.ts'

export type { PreflightFacts, ReplicationFacts, SqlFacts } from './preflight-facts.ts'
export { gatherPreflightFacts } from './preflight-facts.ts'

/** What to check, and for which use. */
export interface PreflightInput {
  /** Connection URL of the role tidemark uses (it needs REPLICATION). */
  url: string
  /** Directory of the client tools; PATH when unset. */
  binDir?: string
  /** Tools the caller is about to run. */
  tools: PgToolName[]
  /** The replication slot the WAL archive uses, when checking for it. */
  slot?: string
  /** WAL senders that must be free (default 1). */
  walSendersNeeded?: number
}

/** The server as seen by a passing preflight. */
export interface PreflightResult {
  systemId: string
  timeline: number
  walSegSize: number
  serverMajor: number
  tools: Partial<Record<PgToolName, PgTool>>
  /** Checks that could not run (no SQL access), left to the tools themselves. */
  warnings: string[]
}

const err = (code: ErrorCode, message: string, details?: Record<string, unknown>) => new TidemarkError(code, message, { details })

/** Judges the facts: every problem found, most fundamental first (empty when the server is fit). */
export function evaluatePreflight(f: PreflightFacts, needs: { walSendersNeeded?: number; slot?: string } = {}): TidemarkError[] {
  const out: TidemarkError[] = []
  const seen = new Set<ErrorCode>()
  const add = (e: TidemarkError) => {
    if (!seen.has(e.code)) out.push(e)
    seen.add(e.code)
  }
  const connErr = f.replicationError ?? f.sqlError
  if (!f.sql && !f.replication && connErr) return [connErr]
  const s = f.sql
  const walLevel = s?.walLevel ?? f.replication?.walLevel
  if (walLevel === 'minimal') add(err('TM_ERR_POSTGRES_WAL_LEVEL', 'the server runs with wal_level = minimal, which keeps too little WAL for backups: set wal_level = replica and max_wal_senders ≥ 2, then restart the server', { walLevel }))
  if (s && !s.canReplicate) add(err('TM_ERR_POSTGRES_NO_REPLICATION', `role "${s.roleName}" lacks the REPLICATION attribute: run ALTER ROLE "${s.roleName}" REPLICATION`, { role: s.roleName }))
  const needed = needs.walSendersNeeded ?? 1
  if (s && walLevel !== 'minimal' && s.maxWalSenders - s.walSendersInUse < needed) {
    add(err('TM_ERR_POSTGRES_WAL_SENDERS', `no free WAL sender: max_wal_senders = ${s.maxWalSenders} and ${s.walSendersInUse} are in use; raise max_wal_senders by ${needed} (and restart the server)`, { maxWalSenders: s.maxWalSenders, inUse: s.walSendersInUse }))
  }
  if (s && needs.slot !== undefined && s.slotActive) add(err('TM_ERR_POSTGRES_SLOTS', `replication slot "${needs.slot}" is in use by another process: stop it, or give this archive a different slot name`, { slot: needs.slot }))
  if (s && needs.slot !== undefined && !s.slotExists && s.slotsInUse >= s.maxReplicationSlots) {
    add(err('TM_ERR_POSTGRES_SLOTS', `no free replication slot for "${needs.slot}": max_replication_slots = ${s.maxReplicationSlots}, all in use; raise it (and restart) or drop an unused slot`, { slot: needs.slot }))
  }
  if (s && s.tablespaces.length > 0) {
    add(err('TM_ERR_POSTGRES_TABLESPACES', `the server has tablespaces besides pg_default and pg_global (${s.tablespaces.join(', ')}); streamed base backups need a single tablespace: move their objects to pg_default and drop them`, { tablespaces: s.tablespaces }))
  }
  if (f.replicationError && !(walLevel === 'minimal' && f.replicationError.code === 'TM_ERR_POSTGRES_WAL_SENDERS')) add(f.replicationError)
  const version = s?.serverVersionNum ?? f.replication?.serverVersionNum
  const serverMajor = version === undefined ? undefined : Math.floor(version / 10000)
  for (const t of f.tools) {
    if (t.error) out.push(t.error)
    else if (t.tool && serverMajor !== undefined && t.tool.major !== serverMajor) {
      out.push(err('TM_ERR_POSTGRES_TOOL_VERSION', `${t.tool.path} is PostgreSQL ${t.tool.version} but the server is PostgreSQL ${serverMajor}: install the client tools of version ${serverMajor} (Debian: postgresql-client-${serverMajor}) or point postgres.binDir at them`, { tool: t.name, toolMajor: t.tool.major, serverMajor }))
    }
  }
  return out
}

/** Runs the checks; throws the first problem (all of them in `details.problems`), else describes the server. */
export async function preflight(input: PreflightInput): Promise<PreflightResult> {
  if (input.slot !== undefined) validateSlotName(input.slot)
  const facts = await gatherPreflightFacts(input)
  const problems = evaluatePreflight(facts, input)
  const first = problems[0]
  if (first) {
    throw new TidemarkError(first.code, first.message, { details: { ...first.details, problems: problems.map((p) => ({ code: p.code, message: p.message })) } })
  }
  const r = facts.replication as ReplicationFacts
  const warnings = facts.sqlError ? [`plain SQL access failed (${facts.sqlError.message}); tablespace and slot checks are left to pg_basebackup and pg_receivewal`] : []
  const tools: PreflightResult['tools'] = {}
  for (const t of facts.tools) if (t.tool) tools[t.name] = t.tool
  return { systemId: r.systemId, timeline: r.timeline, walSegSize: r.walSegSize, serverMajor: Math.floor(r.serverVersionNum / 10000), tools, warnings }
}
