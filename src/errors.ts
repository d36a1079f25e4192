/**
 * The error catalog. Every error tidemark reports to an operator or an API client
 * carries a stable `TM_ERR_…` code, the HTTP status the API answers with, and a
 * message that says what went wrong and what to do. Codes are never reused or
 * renamed: automation matches on them.
 */

export interface ErrorSpec {
  /** HTTP status the API returns for this error. */
  status: number
  /** Exit code of the CLI: 2 for bad usage, 1 for everything else. */
  exit: 1 | 2
}

export const CATALOG = {
  // usage and configuration
  TM_ERR_USAGE: { status: 400, exit: 2 },
  TM_ERR_CONFIG_PARSE: { status: 500, exit: 2 },
  TM_ERR_CONFIG_INVALID: { status: 500, exit: 2 },
  TM_ERR_REPO_URL: { status: 400, exit: 2 },
  // repository
  TM_ERR_REPO_NOT_FOUND: { status: 404, exit: 1 },
  TM_ERR_REPO_EXISTS: { status: 409, exit: 1 },
  TM_ERR_REPO_FORMAT: { status: 500, exit: 1 },
  TM_ERR_REPO_KEY: { status: 403, exit: 1 },
  TM_ERR_REPO_LOCKED: { status: 409, exit: 1 },
  TM_ERR_REPO_CORRUPT: { status: 500, exit: 1 },
  TM_ERR_MANIFEST_NOT_FOUND: { status: 404, exit: 1 },
  TM_ERR_REPLICA_MISMATCH: { status: 409, exit: 1 },
  TM_ERR_RETENTION_UNSAFE: { status: 409, exit: 1 },
  TM_ERR_VERIFY_FAILED: { status: 500, exit: 1 },
  // sinks
  TM_ERR_SINK_UNREACHABLE: { status: 503, exit: 1 },
  TM_ERR_SINK_AUTH: { status: 502, exit: 1 },
  TM_ERR_SINK_NO_BUCKET: { status: 502, exit: 1 },
  TM_ERR_SINK_IO: { status: 502, exit: 1 },
  TM_ERR_SINK_NOT_FOUND: { status: 404, exit: 1 },
  // pipeline
  TM_ERR_INTEGRITY: { status: 500, exit: 1 },
  TM_ERR_DECRYPT: { status: 500, exit: 1 },
  TM_ERR_ABORTED: { status: 499, exit: 1 },
  // sources
  TM_ERR_CLICKHOUSE_UNREACHABLE: { status: 503, exit: 1 },
  TM_ERR_CLICKHOUSE_AUTH: { status: 502, exit: 1 },
  TM_ERR_CLICKHOUSE_QUERY: { status: 502, exit: 1 },
  TM_ERR_CLICKHOUSE_DATA_PATH: { status: 500, exit: 1 },
  TM_ERR_CLICKHOUSE_ATTACH: { status: 502, exit: 1 },
  TM_ERR_POSTGRES_UNREACHABLE: { status: 503, exit: 1 },
  TM_ERR_POSTGRES_CONFIG: { status: 500, exit: 1 },
  TM_ERR_POSTGRES_TOOL: { status: 500, exit: 1 },
  TM_ERR_POSTGRES_TOOL_MISSING: { status: 500, exit: 1 },
  TM_ERR_POSTGRES_TOOL_VERSION: { status: 500, exit: 1 },
  TM_ERR_POSTGRES_AUTH: { status: 502, exit: 1 },
  TM_ERR_POSTGRES_QUERY: { status: 502, exit: 1 },
  TM_ERR_POSTGRES_WAL_LEVEL: { status: 500, exit: 1 },
  TM_ERR_POSTGRES_NO_REPLICATION: { status: 502, exit: 1 },
  TM_ERR_POSTGRES_WAL_SENDERS: { status: 503, exit: 1 },
  TM_ERR_POSTGRES_SLOTS: { status: 503, exit: 1 },
  TM_ERR_POSTGRES_TABLESPACES: { status: 500, exit: 1 },
  TM_ERR_POSTGRES_FORMAT: { status: 500, exit: 1 },
  TM_ERR_POSTGRES_WAL_NAME: { status: 400, exit: 2 },
  TM_ERR_POSTGRES_WAL_TIMEOUT: { status: 504, exit: 1 },
  TM_ERR_RESTORE_TARGET_NOT_EMPTY: { status: 409, exit: 1 },
  TM_ERR_RESTORE_OUT_OF_WINDOW: { status: 422, exit: 1 },
  TM_ERR_RESTORE_NO_BACKUP: { status: 404, exit: 1 },
  TM_ERR_NO_RESTORE_POINT: { status: 422, exit: 1 },
  TM_ERR_RESTORE_UNKNOWN_TABLE: { status: 400, exit: 2 },
  TM_ERR_NOT_IMPLEMENTED: { status: 501, exit: 1 },
  TM_ERR_INTERNAL: { status: 500, exit: 1 },
  // daemon and API
  TM_ERR_AUTH_REQUIRED: { status: 401, exit: 2 },
  TM_ERR_AUTH_FORBIDDEN: { status: 403, exit: 2 },
  TM_ERR_BODY_TOO_LARGE: { status: 413, exit: 2 },
  TM_ERR_ROUTE_NOT_FOUND: { status: 404, exit: 2 },
  TM_ERR_JOB_NOT_FOUND: { status: 404, exit: 1 },
  TM_ERR_JOB_BUSY: { status: 409, exit: 1 },
  TM_ERR_JOB_FINISHED: { status: 409, exit: 1 },
  TM_ERR_SHUTTING_DOWN: { status: 503, exit: 1 },
  TM_ERR_STORE_NOT_CONFIGURED: { status: 400, exit: 2 },
  TM_ERR_HOOK_FAILED: { status: 502, exit: 1 },
  TM_ERR_SMOKE_CHECK_FAILED: { status: 500, exit: 1 },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof CATALOG

/** An error with a stable code. `details` is safe to log and return: never put secrets in it. */
export class TidemarkError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly exit: 1 | 2
  readonly details: Record<string, unknown> | undefined

  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'TidemarkError'
    this.code = code
    this.status = CATALOG[code].status
    this.exit = CATALOG[code].exit
    this.details = opts.details
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message }
  }
}

export function isTidemarkError(err: unknown, code?: ErrorCode): err is TidemarkError {
  return err instanceof TidemarkError && (code === undefined || err.code === code)
}

/** Wraps anything thrown into a TidemarkError, keeping an existing code. */
export function asTidemarkError(err: unknown, fallback: ErrorCode = 'TM_ERR_INTERNAL'): TidemarkError {
  if (err instanceof TidemarkError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new TidemarkError(fallback, message, { cause: err })
}
