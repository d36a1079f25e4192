/** Values computed from the configuration, so every user computes them the same way. */
import type { ClickHouseConfig } from './schema.ts'

/** The ClickHouse HTTP endpoint: `clickhouse.url`, else http(s)://host:port (host defaults to localhost). No credentials in it. */
export function clickhouseEndpoint(c: ClickHouseConfig): string {
  if (c.url !== undefined) return c.url
  const host = c.host ?? 'localhost'
  return `${c.tls ? 'https' : 'http'}://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${c.port}`
}
