/**
 * Turns whatever the HTTP client throws into the catalog's ClickHouse errors.
 * Messages name the server as host:port and the user, never the password.
 */
import { TidemarkError } from '../../errors.ts'

/** Server error codes that mean "these credentials are not accepted". */
const AUTH_CODES = new Set([192 /* UNKNOWN_USER */, 193 /* WRONG_PASSWORD */, 194 /* REQUIRED_PASSWORD */, 195 /* IP_ADDRESS_NOT_ALLOWED */, 516 /* AUTHENTICATION_FAILED */])

/** Socket-level failures: the server is down, unreachable or went away mid-request. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'ERR_STREAM_PREMATURE_CLOSE',
])

/** Where the error happened: endpoint for messages, user for auth messages, statement head for details. */
export interface ErrorContext {
  endpoint: string
  user: string
  sql?: string
}

/** The server's numeric error code in a message (`Code: 60, …` or `Code: 60. …`), if any. */
export function serverCode(message: string): number | undefined {
  const m = /(?:^|\s)Code: (\d+)[.,]/.exec(message)
  return m ? Number(m[1]) : undefined
}

function errCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/**
 * A connection's failure (reset, hang-up, closed under a write or read). The HTTP client
 * destroys a request's body stream with it, so it can reach the body's listeners although
 * the body itself did not fail. (A repository source reports its own failures as catalog
 * errors; were one a raw socket error, treating it as the connection's only means a retry.)
 */
export function isSocketError(err: unknown): boolean {
  const code = errCode(err)
  return code !== undefined && NETWORK_CODES.has(code)
}

function isNetworkError(err: unknown, message: string): boolean {
  const code = errCode(err) ?? errCode((err as { cause?: unknown } | null)?.cause)
  if (code !== undefined && (NETWORK_CODES.has(code) || code.startsWith('ERR_TLS') || code.includes('CERT'))) return true
  return /socket hang up|Timeout error|other side closed|premature close/i.test(message)
}

function statementHead(sql: string | undefined): string | undefined {
  if (sql === undefined) return undefined
  const flat = sql.replace(/\s+/g, ' ').trim()
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat
}

/** Maps any failure of a driver call to TM_ERR_CLICKHOUSE_AUTH / _UNREACHABLE / _QUERY / TM_ERR_ABORTED. */
export function toClickHouseError(err: unknown, ctx: ErrorContext): TidemarkError {
  if (err instanceof TidemarkError) return err
  const message = err instanceof Error ? err.message : String(err)
  const name = err instanceof Error ? err.name : ''
  if (name === 'AbortError' || /aborted a request|operation was aborted/i.test(message)) {
    return new TidemarkError('TM_ERR_ABORTED', `ClickHouse request to ${ctx.endpoint} was cancelled`, { cause: err })
  }
  const code = serverCode(message)
  if (code !== undefined && AUTH_CODES.has(code)) {
    return new TidemarkError(
      'TM_ERR_CLICKHOUSE_AUTH',
      `ClickHouse at ${ctx.endpoint} refused user "${ctx.user}": ${message.trim()} — check CLICKHOUSE_USER and CLICKHOUSE_PASSWORD (clickhouse.user / clickhouse.password)`,
      { cause: err, details: { endpoint: ctx.endpoint, user: ctx.user, serverCode: code } },
    )
  }
  if (code === undefined && isNetworkError(err, message)) {
    const why = errCode(err) ?? errCode((err as { cause?: unknown }).cause) ?? message
    return new TidemarkError(
      'TM_ERR_CLICKHOUSE_UNREACHABLE',
      `cannot reach ClickHouse at ${ctx.endpoint} (${why}) — check CLICKHOUSE_HOST / CLICKHOUSE_PORT (clickhouse.url) and that the server is running`,
      { cause: err, details: { endpoint: ctx.endpoint } },
    )
  }
  const details: Record<string, unknown> = { endpoint: ctx.endpoint }
  if (code !== undefined) details.serverCode = code
  const head = statementHead(ctx.sql)
  if (head !== undefined) details.statement = head
  return new TidemarkError('TM_ERR_CLICKHOUSE_QUERY', `ClickHouse at ${ctx.endpoint} failed a statement: ${message.trim()}`, { cause: err, details })
}
