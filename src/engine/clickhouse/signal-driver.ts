/**
 * A driver view that attaches one abort signal to every request, so that a
 * backup or restore cancels whatever request is in flight (discovery, system
 * table reads, exports) instead of waiting for the driver's request timeout.
 */
import type { CallOptions, ClickHouseDriver } from './driver.ts'
import type { QueryParams } from './names.ts'

function merged(signal: AbortSignal, opts: CallOptions | undefined): CallOptions {
  return { ...opts, signal: opts?.signal ? AbortSignal.any([signal, opts.signal]) : signal }
}

/** `driver` with `signal` added to every call (combined with a call's own signal); `close` is not forwarded: the caller owns the driver. */
export function withSignal(driver: ClickHouseDriver, signal: AbortSignal): ClickHouseDriver {
  return {
    queryRows: <T>(sql: string, params?: QueryParams, opts?: CallOptions) => driver.queryRows<T>(sql, params, merged(signal, opts)),
    queryStream: (sql, format, opts) => driver.queryStream(sql, format, merged(signal, opts)),
    insertStream: (sql, body, opts) => driver.insertStream(sql, body, merged(signal, opts)),
    command: (sql, opts) => driver.command(sql, merged(signal, opts)),
    serverVersion: (opts) => driver.serverVersion(merged(signal, opts)),
    close: async () => undefined,
  }
}
