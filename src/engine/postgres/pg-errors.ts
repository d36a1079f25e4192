/**
 * Turns what a PostgreSQL client tool printed on failure into a TidemarkError whose
 * code and message say what to change. Pure. Matching is on the English texts of
 * PostgreSQL 13–17 (tools run with LC_ALL=C; a server with a translated lc_messages
 * falls through to the generic code, still carrying the tool's own words).
 */
import { TidemarkError, type ErrorCode } from '../../errors.ts'

interface Rule {
  re: RegExp
  code: ErrorCode
  hint: string
}

// Order matters: the first match wins, most specific first.
const RULES: Rule[] = [
  { re: /WAL level not sufficient|wal_level must be set|can only be used if wal_level >= replica|requires wal_level/i, code: 'TM_ERR_POSTGRES_WAL_LEVEL', hint: 'set wal_level = replica (or logical) on the server and restart it' },
  { re: /no pg_hba\.conf entry for replication connection/i, code: 'TM_ERR_POSTGRES_NO_REPLICATION', hint: 'add a "host replication <role> <address> scram-sha-256" line to pg_hba.conf and reload the server' },
  { re: /must be superuser or replication role|permission denied to start WAL sender|must have the REPLICATION attribute/i, code: 'TM_ERR_POSTGRES_NO_REPLICATION', hint: 'grant it with ALTER ROLE <role> REPLICATION' },
  { re: /number of requested standby connections exceeds max_wal_senders/i, code: 'TM_ERR_POSTGRES_WAL_SENDERS', hint: 'raise max_wal_senders (tidemark needs 2: one for the WAL archive, one for a base backup; with wal_level = replica) and restart the server' },
  { re: /all replication slots are in use|max_replication_slots/i, code: 'TM_ERR_POSTGRES_SLOTS', hint: 'raise max_replication_slots or drop an unused slot' },
  { re: /replication slot ".*" is active for PID/i, code: 'TM_ERR_POSTGRES_SLOTS', hint: 'another process streams from this slot: stop it or configure a different slot name' },
  { re: /can only write single tablespace to stdout/i, code: 'TM_ERR_POSTGRES_TABLESPACES', hint: 'tidemark streams base backups of servers with one tablespace only: move the extra tablespaces\' objects to pg_default and drop them' },
  { re: /password authentication failed|no password supplied|SCRAM authentication|authentication failed for user|role ".*" does not exist|no pg_hba\.conf entry/i, code: 'TM_ERR_POSTGRES_AUTH', hint: 'check the user name and password in the connection URL and the server\'s pg_hba.conf' },
  { re: /could not connect to server|connection to server at .* failed|Connection refused|could not translate host name|timeout expired|server closed the connection unexpectedly|No such file or directory\s+Is the server running/i, code: 'TM_ERR_POSTGRES_UNREACHABLE', hint: 'check the host and port in the connection URL and that the server is running' },
]

/** The last `lines` non-empty lines of a tool's output, for error messages and logs. */
export function tail(text: string, lines = 8): string {
  return text.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '').slice(-lines).join('\n')
}

/**
 * Classifies a failed tool run. `what` names the tool or action ("pg_basebackup");
 * `fallback` is the code when no rule matches. The message carries the stderr tail.
 */
export function classifyToolFailure(what: string, stderr: string, status: string, fallback: ErrorCode = 'TM_ERR_POSTGRES_TOOL'): TidemarkError {
  const text = tail(stderr)
  const rule = RULES.find((r) => r.re.test(text))
  const said = text === '' ? '' : `: ${text.replace(/\n/g, ' | ')}`
  const message = rule ? `${what} failed (${status})${said}. To fix: ${rule.hint}.` : `${what} failed (${status})${said}`
  return new TidemarkError(rule?.code ?? fallback, message, { details: { tool: what, status, stderr: text } })
}

/** "exit code 1" or "killed by SIGKILL", for messages. */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exit code ${code}`
}
