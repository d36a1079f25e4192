/**
 * How tidemark reaches a ClickHouse server, and the mapping from the environment
 * variable names LangSmith's chart already sets, so the sidecar can reuse the
 * same Secrets. Pure functions: the config module decides precedence.
 */
import { TidemarkError } from '../../errors.ts'

/** Everything a driver needs to connect. `password` is a secret: never log it. */
export interface ConnectionSettings {
  /** Base URL of the HTTP interface, for example `http://clickhouse:8123`. */
  url: string
  user: string
  password: string
  /** Verify the server certificate (https) against this CA instead of the system store. */
  tls?: { caCert?: Buffer }
  /** Database for unqualified names; discovery always qualifies, so this rarely matters. */
  database?: string
  /** Idle-socket timeout of one request in milliseconds (a long export keeps its socket busy). */
  requestTimeoutMs: number
}

/** Connection values found in the environment; absent variables leave keys undefined. */
export interface ClickHouseEnvSettings {
  host?: string
  port?: number
  user?: string
  password?: string
  database?: string
  tls?: boolean
}

type Env = Record<string, string | undefined>

function envBool(env: Env, name: string): boolean | undefined {
  const raw = env[name]?.trim().toLowerCase()
  if (raw === undefined || raw === '') return undefined
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true
  if (['0', 'false', 'no', 'off'].includes(raw)) return false
  throw new TidemarkError('TM_ERR_CONFIG_INVALID', `environment variable ${name} must be true or false, got "${env[name]}"`)
}

function envPort(env: Env, name: string): number | undefined {
  const raw = env[name]?.trim()
  if (raw === undefined || raw === '') return undefined
  const port = Number(raw)
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) {
    throw new TidemarkError('TM_ERR_CONFIG_INVALID', `environment variable ${name} must be a port number (1-65535), got "${raw}"`)
  }
  return port
}

function envStr(env: Env, name: string): string | undefined {
  const v = env[name]
  return v === undefined || v === '' ? undefined : v
}

/**
 * Reads CLICKHOUSE_HOST, CLICKHOUSE_PORT (the HTTP port), CLICKHOUSE_USER,
 * CLICKHOUSE_PASSWORD, CLICKHOUSE_DB and CLICKHOUSE_TLS. Throws
 * TM_ERR_CONFIG_INVALID naming the variable when a value cannot be used.
 */
export function clickhouseSettingsFromEnv(env: Env): ClickHouseEnvSettings {
  const out: ClickHouseEnvSettings = {}
  const host = envStr(env, 'CLICKHOUSE_HOST')
  if (host !== undefined) out.host = host.trim()
  const port = envPort(env, 'CLICKHOUSE_PORT')
  if (port !== undefined) out.port = port
  const user = envStr(env, 'CLICKHOUSE_USER')
  if (user !== undefined) out.user = user
  // The password is taken verbatim: spaces may be part of it.
  const password = env.CLICKHOUSE_PASSWORD
  if (password !== undefined) out.password = password
  const database = envStr(env, 'CLICKHOUSE_DB')
  if (database !== undefined) out.database = database
  const tls = envBool(env, 'CLICKHOUSE_TLS')
  if (tls !== undefined) out.tls = tls
  return out
}

/** The HTTP(S) base URL for a host and port; IPv6 literals are bracketed. */
export function clickhouseUrl(host: string, port: number, tls: boolean): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
  return `${tls ? 'https' : 'http'}://${h}:${port}`
}

/** `host:port` of a URL, for messages (never includes credentials). */
export function endpointOf(url: string): string {
  try {
    const u = new URL(url)
    const port = u.port || (u.protocol === 'https:' ? '443' : '80')
    return `${u.hostname}:${port}`
  } catch {
    return '(invalid URL)'
  }
}
