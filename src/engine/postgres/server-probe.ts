/**
 * The few SQL statements the archive and base backups run on the server: the
 * heartbeat (a committed transaction whose time and WAL position prove how far the
 * archive reaches), the archive's flush position from its replication slot, and the
 * server's clock.
 */
import { TidemarkError } from '../../errors.ts'
import type { Heartbeat } from './heartbeats.ts'
import type { Micros } from './instant.ts'
import { psql, rows } from './psql.ts'
import { parseLsn } from './wal.ts'

/** How to reach the server over SQL. */
export interface SqlTarget {
  url: string
  psqlPath?: string
  signal?: AbortSignal
}

const EPOCH_US = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"

function format(what: string, out: string): TidemarkError {
  return new TidemarkError('TM_ERR_POSTGRES_FORMAT', `unexpected ${what} output: ${JSON.stringify(out.slice(0, 200))}`)
}

/**
 * Commits a heartbeat: reads the clock, takes a transaction id (which makes the
 * transaction write a commit record, stamped no earlier than the clock reading), and
 * after the commit reads the WAL insert position, which is past that record. The
 * timeline is the one the server writes on now.
 */
export async function commitHeartbeat(t: SqlTarget): Promise<Heartbeat & { timeline: number }> {
  const sql = `SELECT ${EPOCH_US}, txid_current();\nSELECT pg_current_wal_insert_lsn(), pg_walfile_name(pg_current_wal_insert_lsn());`
  const out = await psql(t.url, sql, { psqlPath: t.psqlPath, timeoutMs: 30_000, signal: t.signal })
  const r = rows(out)
  const us = r[0]?.[0]
  const lsn = r[1]?.[0]
  const file = r[1]?.[1]
  if (!us || !/^\d+$/.test(us) || !lsn || !file || !/^[0-9A-F]{24}$/.test(file)) throw format('heartbeat', out)
  return { us: BigInt(us), lsn: parseLsn(lsn), timeline: Number.parseInt(file.slice(0, 8), 16) }
}

/**
 * How far the archive's pg_receivewal has flushed WAL: a physical slot's restart_lsn
 * follows the flush position the receiver reports (at once, with --synchronous).
 * Undefined when the slot does not exist or has not reserved WAL.
 */
export async function slotFlushLsn(t: SqlTarget, slot: string): Promise<bigint | undefined> {
  const out = await psql(t.url, `SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '${slot.replace(/'/g, "''")}'`, { psqlPath: t.psqlPath, timeoutMs: 30_000, signal: t.signal })
  return out === '' ? undefined : parseLsn(out)
}

/** The server's clock, to the microsecond. */
export async function serverClock(t: SqlTarget): Promise<Micros> {
  const out = await psql(t.url, `SELECT ${EPOCH_US}`, { psqlPath: t.psqlPath, timeoutMs: 30_000, signal: t.signal })
  if (!/^\d+$/.test(out)) throw format('clock', out)
  return BigInt(out)
}
