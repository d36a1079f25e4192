/**
 * The narrow interface through which the engine talks to ClickHouse: rows out,
 * a raw stream out, a raw stream in, a command. Everything else (discovery,
 * fingerprints, export, restore) is written against this, so a second driver
 * (for example an embedded engine used for verification) can be added.
 *
 * Errors: every method rejects with a TidemarkError —
 * TM_ERR_CLICKHOUSE_AUTH (credentials refused; not worth retrying),
 * TM_ERR_CLICKHOUSE_UNREACHABLE (connection refused, reset or timed out; may be
 * retried) or TM_ERR_CLICKHOUSE_QUERY (the server refused or failed the
 * statement; carries the server's message and `details.serverCode`).
 */
import type { Readable } from 'node:stream'
import type { QueryParams } from './names.ts'

/** ClickHouse settings for one call, for example `{ insert_deduplicate: 0 }`. */
export type ClickHouseSettings = Record<string, string | number | boolean>

/** Options every call accepts. */
export interface CallOptions {
  /** Values for `{name:Type}` placeholders, bound client-side as literals. */
  params?: QueryParams
  settings?: ClickHouseSettings
  /** Aborts the request; the call rejects (or the stream errors) with TM_ERR_ABORTED. */
  signal?: AbortSignal
}

/** One connection pool to one server. Safe for concurrent calls. */
export interface ClickHouseDriver {
  /**
   * Runs a SELECT and returns all rows as objects (JSONEachRow). 64-bit
   * integers arrive as strings, as the server quotes them. Idempotent.
   */
  queryRows<T = Record<string, unknown>>(sql: string, params?: QueryParams, opts?: CallOptions): Promise<T[]>
  /**
   * Runs a SELECT with `FORMAT <format>` appended and returns the raw response
   * body. The stream errors (never ends cleanly) when the server reports an
   * exception after the response started, so a truncated export cannot be
   * mistaken for a complete one. Destroying the stream cancels the request.
   */
  queryStream(sql: string, format: string, opts?: CallOptions): Promise<Readable>
  /**
   * Sends `body` as the data of `sql` (for example `INSERT INTO db.t (a, b)
   * FORMAT Native`) and resolves once the server has accepted all of it. Not
   * idempotent: retrying after a failure may insert twice.
   */
  insertStream(sql: string, body: Readable, opts?: CallOptions): Promise<void>
  /** Runs a statement that returns no rows (DDL, ALTER, OPTIMIZE, SYSTEM …). */
  command(sql: string, opts?: CallOptions): Promise<void>
  /** `SELECT version()`, cached after the first successful call; `opts.signal` aborts a lookup that is not cached yet. */
  serverVersion(opts?: CallOptions): Promise<string>
  /** Closes idle sockets; in-flight calls are not awaited. */
  close(): Promise<void>
}
