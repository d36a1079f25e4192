/**
 * The ClickHouse driver on `@clickhouse/client` (HTTP interface). Works with
 * servers from 18.x on: it never uses server-side query parameters (bound
 * client-side instead, see names.ts), never asks for response compression
 * (the pipeline compresses anyway), and checks every streamed body for an
 * exception written after the status line (see stream-guard.ts). Native
 * streams (exports) bypass the client: raw-http.ts reads them with less CPU.
 */
import { createClient, ClickHouseLogLevel, type ClickHouseClient, type ClickHouseSettings as ClientSettings } from '@clickhouse/client'
import type { Readable } from 'node:stream'
import { TidemarkError } from '../../errors.ts'
import { endpointOf, type ConnectionSettings } from './connection.ts'
import type { CallOptions, ClickHouseDriver } from './driver.ts'
import { isSocketError, toClickHouseError, type ErrorContext } from './driver-errors.ts'
import { bindParams, type QueryParams } from './names.ts'
import { rawQueryStream } from './raw-http.ts'
import type { SocketBody } from '../../net/socket-body.ts'
import { exceptionGuard, trailingException } from './stream-guard.ts'

const EXCEPTION_TAG_HEADER = 'x-clickhouse-exception-tag'

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** Reads a whole (small) stream into one Buffer. */
async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** A ClickHouseDriver over HTTP(S); see driver.ts for the contract. */
export class HttpClickHouseDriver implements ClickHouseDriver {
  readonly #client: ClickHouseClient
  readonly #endpoint: string
  readonly #user: string
  readonly #settings: ConnectionSettings
  #version: Promise<string> | undefined

  constructor(settings: ConnectionSettings) {
    this.#endpoint = endpointOf(settings.url)
    this.#user = settings.user
    this.#settings = settings
    this.#client = createClient({
      url: settings.url,
      username: settings.user,
      password: settings.password,
      ...(settings.database ? { database: settings.database } : {}),
      request_timeout: settings.requestTimeoutMs,
      compression: { request: false, response: false },
      // Errors are reported by this driver as TidemarkErrors; the client's own console logging would duplicate them.
      log: { level: ClickHouseLogLevel.OFF },
      ...(settings.tls?.caCert ? { tls: { ca_cert: settings.tls.caCert } } : {}),
    })
  }

  #ctx(sql?: string): ErrorContext {
    return sql === undefined ? { endpoint: this.#endpoint, user: this.#user } : { endpoint: this.#endpoint, user: this.#user, sql }
  }

  /** Rejects at once for a signal that is already aborted: the client would otherwise wait for an 'abort' event that never comes. */
  #checkSignal(opts: CallOptions | undefined): void {
    if (opts?.signal?.aborted) throw new TidemarkError('TM_ERR_ABORTED', `ClickHouse request to ${this.#endpoint} was cancelled`)
  }

  /** The client honours its abort signal only until the response starts; after that, destroying `stream` is what cancels. */
  #cancelOnAbort(signal: AbortSignal | undefined, stream: Readable): void {
    if (!signal) return
    const onAbort = () => stream.destroy(new TidemarkError('TM_ERR_ABORTED', `ClickHouse request to ${this.#endpoint} was cancelled`))
    signal.addEventListener('abort', onAbort, { once: true })
    stream.once('close', () => signal.removeEventListener('abort', onAbort))
  }

  #base(opts: CallOptions | undefined) {
    return {
      ...(opts?.settings ? { clickhouse_settings: opts.settings as ClientSettings } : {}),
      ...(opts?.signal ? { abort_signal: opts.signal } : {}),
    }
  }

  async queryRows<T = Record<string, unknown>>(sql: string, params?: QueryParams, opts?: CallOptions): Promise<T[]> {
    const stream = await this.queryStream(sql, 'JSONEachRow', { ...opts, params: { ...opts?.params, ...params } })
    let body: Buffer
    try {
      body = await collect(stream)
    } catch (err) {
      throw toClickHouseError(err, this.#ctx(sql))
    }
    const rows: T[] = []
    for (const line of body.toString('utf8').split('\n')) {
      if (line.trim() === '') continue
      try {
        rows.push(JSON.parse(line) as T)
      } catch (err) {
        throw new TidemarkError('TM_ERR_CLICKHOUSE_QUERY', `ClickHouse at ${this.#endpoint} returned a row that is not JSON: ${line.slice(0, 200)}`, { cause: err })
      }
    }
    return rows
  }

  async queryStream(sql: string, format: string, opts?: CallOptions): Promise<Readable> {
    const query = `${bindParams(sql, opts?.params)}\nFORMAT ${format}`
    const ctx = this.#ctx(query)
    this.#checkSignal(opts)
    if (format === 'Native') {
      let body
      try {
        body = await this.#bulk(query, opts)
      } catch (err) {
        throw toClickHouseError(err, ctx)
      }
      return body
    }
    let res
    try {
      res = await this.#client.exec({ query, ...this.#base(opts) })
    } catch (err) {
      throw toClickHouseError(err, ctx)
    }
    const src = res.stream
    const tag = header(res.response_headers, EXCEPTION_TAG_HEADER)
    const out = exceptionGuard(tag, (message) => toClickHouseError(new Error(message), ctx))
    src.on('error', (err) => out.destroy(toClickHouseError(err, ctx)))
    // A consumer that stops reading (destroy) cancels the request instead of leaving the server streaming.
    out.on('close', () => {
      if (!src.readableEnded) src.destroy()
    })
    this.#cancelOnAbort(opts?.signal, out)
    src.pipe(out)
    return out
  }

  /**
   * Native exports (the bulk of every backup) on a connection of their own (raw-http.ts); the
   * body checks its own end for a server exception and can be read with readInto (src/net/socket-body.ts).
   */
  async #bulk(query: string, opts: CallOptions | undefined): Promise<SocketBody> {
    const s = this.#settings
    const ctx = this.#ctx(query)
    const { headers, body } = await rawQueryStream({
      url: s.url, user: s.user, password: s.password, query, timeoutMs: s.requestTimeoutMs,
      ...(s.database ? { database: s.database } : {}),
      ...(s.tls?.caCert ? { caCert: s.tls.caCert } : {}),
      ...(opts?.settings ? { settings: opts.settings } : {}),
      ...(opts?.signal ? { signal: opts.signal } : {}),
    })
    const tag = header(headers, EXCEPTION_TAG_HEADER)
    body.mapError = (err) => toClickHouseError(err, ctx)
    body.endCheck = (tail) => {
      const message = trailingException(tail, tag)
      return message === undefined ? undefined : new Error(message)
    }
    this.#cancelOnAbort(opts?.signal, body)
    return body
  }

  async insertStream(sql: string, body: Readable, opts?: CallOptions): Promise<void> {
    const query = bindParams(sql, opts?.params)
    this.#checkSignal(opts)
    let bodyError: unknown
    // The body's own failure; a reset connection also destroys the body with the socket's error, which is the server's side.
    body.once('error', (err) => (bodyError ??= isSocketError(err) ? undefined : err))
    this.#cancelOnAbort(opts?.signal, body)
    try {
      const res = await this.#client.exec({ query, values: body, ...this.#base(opts) })
      await collect(res.stream)
    } catch (err) {
      // A failing source is the caller's error (for example a corrupt object), not the server's.
      if (bodyError !== undefined) throw bodyError
      // The server gave up: stop the source too, so it does not stay paused holding a file or socket.
      if (!body.destroyed) body.destroy()
      throw toClickHouseError(err, this.#ctx(query))
    }
    if (bodyError !== undefined) throw bodyError
  }

  async command(sql: string, opts?: CallOptions): Promise<void> {
    const query = bindParams(sql, opts?.params)
    this.#checkSignal(opts)
    try {
      await this.#client.command({ query, ...this.#base(opts) })
    } catch (err) {
      throw toClickHouseError(err, this.#ctx(query))
    }
  }

  serverVersion(opts?: CallOptions): Promise<string> {
    this.#version ??= this.queryRows<{ v: string }>('SELECT version() AS v', undefined, opts?.signal ? { signal: opts.signal } : undefined).then((rows) => String(rows[0]?.v ?? ''))
    // A failed lookup is not cached: the next call asks again.
    this.#version.catch(() => (this.#version = undefined))
    return this.#version
  }

  async close(): Promise<void> {
    await this.#client.close()
  }
}

/** A driver for `settings`; connects lazily, so this never fails on an unreachable server. */
export function createHttpDriver(settings: ConnectionSettings): ClickHouseDriver {
  return new HttpClickHouseDriver(settings)
}
