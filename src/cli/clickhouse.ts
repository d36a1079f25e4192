/**
 * Reaching ClickHouse from a command: connection settings from the
 * configuration (`clickhouse.*`, or the LangSmith names CLICKHOUSE_HOST, …),
 * or from a `--target-url` that may carry its own user and password; and
 * closing the driver whatever happens.
 */
import { clickhouseEndpoint, type Config } from '../config.ts'
import type { ConnectionSettings } from '../engine/clickhouse/connection.ts'
import type { ClickHouseDriver } from '../engine/clickhouse/driver.ts'
import { partsAtOnce, partsRestoredAtOnce } from '../engine/clickhouse/parts-manifest.ts'
import { createHttpDriver } from '../engine/clickhouse/http-driver.ts'
import { TidemarkError } from '../errors.ts'

/** One request may stream a large partition: the idle timeout must outlast the server's slowest pause. */
const REQUEST_TIMEOUT_MS = 600_000

/** The configured server; TM_ERR_CONFIG_INVALID when none is configured. */
export function configuredClickHouse(config: Config): ConnectionSettings {
  const c = config.clickhouse
  if (c.url === undefined && c.host === undefined) {
    throw new TidemarkError('TM_ERR_CONFIG_INVALID', 'ClickHouse is not configured: set clickhouse.url or clickhouse.host (environment: CLICKHOUSE_HOST, CLICKHOUSE_PORT, CLICKHOUSE_USER, CLICKHOUSE_PASSWORD)')
  }
  return { url: clickhouseEndpoint(c), user: c.user, password: c.password ?? '', database: c.database, requestTimeoutMs: REQUEST_TIMEOUT_MS }
}

/** A server given as a URL (`http(s)://[user[:password]@]host:port`); user and password default to the configured ones. */
export function clickhouseAt(config: Config, url: string): ConnectionSettings {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new TidemarkError('TM_ERR_USAGE', `--target-url is not a URL: expected http(s)://host:port`)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TidemarkError('TM_ERR_USAGE', `--target-url must be http:// or https://, got ${u.protocol}`)
  const user = u.username ? decodeURIComponent(u.username) : config.clickhouse.user
  const password = u.password ? decodeURIComponent(u.password) : (config.clickhouse.password ?? '')
  u.username = ''
  u.password = ''
  return { url: u.href.replace(/\/$/, ''), user, password, requestTimeoutMs: REQUEST_TIMEOUT_MS }
}

/**
 * The configuration with `pipeline.maxInFlight` split between the objects
 * moved at once: the bound is per object, and `clickhouse.parallelism` objects
 * (with the parts method, or auto that may choose it: partsAtOnce in a backup,
 * partsRestoredAtOnce in a restore) stream together, so memory stays at the
 * configured total, or at two chunks per object where that is more. A restore
 * of a parts backup under `clickhouse.method: logical` may hold up to four
 * times that: the method of a backup is known only once its manifest is read.
 */
export function perObjectPipeline(config: Config, op: 'backup' | 'restore'): Config {
  const { method, parallelism } = config.clickhouse
  const atOnce = method === 'logical' ? parallelism : op === 'backup' ? partsAtOnce(parallelism) : partsRestoredAtOnce(parallelism)
  const maxInFlight = Math.max(2, Math.ceil(config.pipeline.maxInFlight / atOnce))
  return { ...config, pipeline: { ...config.pipeline, maxInFlight } }
}

/** Runs `fn` with a driver for `settings`, closing it afterwards. */
export async function withClickHouse<T>(settings: ConnectionSettings, fn: (driver: ClickHouseDriver) => Promise<T>): Promise<T> {
  const driver = createHttpDriver(settings)
  try {
    return await fn(driver)
  } finally {
    await driver.close()
  }
}
