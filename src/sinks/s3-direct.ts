/**
 * The S3 sink's HTTP handler. The requests that carry object bodies (GetObject,
 * PutObject, UploadPart) to a plain-HTTP endpoint go over a connection of their
 * own (src/net/http1.ts): the socket reads into one fixed buffer, a response body
 * is handed on one buffer per socket read (src/net/socket-body.ts), and a request
 * body is written to the socket as it comes. Node's HTTP client, under the SDK's
 * NodeHttpHandler, allocates a buffer per 64 KiB read and runs a parser callback and
 * a stream push for each; copying a repository between two stores, that and the
 * garbage it leaves took more CPU than the copy's sha256 (bench/RESULTS.md).
 *
 * The SDK still builds, signs and parses every request: this handler only moves the
 * bytes, so errors reach the caller as SDK errors (an error body is read whole and
 * handed to the SDK's parser) and network failures as the same Node error codes.
 * Every other request, and every request over HTTPS (where a pooled, kept-alive TLS
 * connection is worth more than the saved copies), goes through NodeHttpHandler.
 *
 * A PutObject is sent without `Expect: 100-continue` (an unsigned header): the body
 * follows the head at once, and a store that refuses the request answers early,
 * which stops the sending.
 */
import { buildQueryString } from '@smithy/core/protocols'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import type { HttpHandlerOptions, HttpRequest, HttpResponse } from '@smithy/types'
import { Readable } from 'node:stream'
import type { Socket } from 'node:net'
import { giveBuffer, hasReadInto, takeBuffer, type DirectSource } from '../net/direct.ts'
import { bodyFeed, framing, HEAD_LIMIT, openSocket, parseHead, premature, refusalBody } from '../net/http1.ts'
import { SocketBody } from '../net/socket-body.ts'

/** The operations whose bodies go direct, by the `x-id` query parameter the SDK adds to them. */
const DIRECT = new Set(['GetObject', 'PutObject', 'UploadPart'])
/** Request headers this handler sets itself or drops: none of them is signed. */
const DROPPED = new Set(['connection', 'expect', 'transfer-encoding'])

export interface DirectHandlerOptions {
  connectTimeoutMs: number
  idleTimeoutMs: number
}

type Body = Readable | Uint8Array | string | undefined | null

function abortError(): Error {
  return Object.assign(new Error('Request aborted'), { name: 'AbortError' })
}

function timeoutError(what: string, ms: number): Error {
  return Object.assign(new Error(`${what} timed out after ${ms} ms`), { name: 'TimeoutError', code: 'ETIMEDOUT' })
}

function hasLength(headers: Record<string, string>): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')
}

/** Whether a request goes direct: a body operation, plain HTTP, and a body this handler can send with its length. */
function isDirect(request: HttpRequest): boolean {
  const id = request.query?.['x-id']
  if (typeof id !== 'string' || !DIRECT.has(id) || request.protocol !== 'http:') return false
  if (request.method === 'GET') return true
  const body = request.body as Body
  const sendable = body == null || typeof body === 'string' || body instanceof Uint8Array || body instanceof Readable
  return request.method === 'PUT' && sendable && hasLength(request.headers)
}

/** The request head as the SDK signed it. */
function requestHead(request: HttpRequest): string {
  const query = request.query ? buildQueryString(request.query) : ''
  const lines = [`${request.method} ${request.path}${query ? `?${query}` : ''} HTTP/1.1`]
  let host = false
  for (const [name, value] of Object.entries(request.headers)) {
    const lower = name.toLowerCase()
    if (DROPPED.has(lower)) continue
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new Error(`request header ${name} holds a line break`)
    if (lower === 'host') host = true
    lines.push(`${name}: ${value}`)
  }
  if (!host) lines.push(`Host: ${request.hostname}${request.port ? `:${request.port}` : ''}`)
  lines.push('', '')
  return lines.join('\r\n')
}

/** Resolves once the socket can take more, or once it closed (the caller then stops). */
function drained(socket: Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done)
      socket.off('close', done)
      resolve()
    }
    socket.on('drain', done)
    socket.on('close', done)
  })
}

/**
 * Writes the request body, stopping early when the response has started or the
 * socket closed. A failing body destroys the socket (its error is the request's);
 * leaving a streamed body early destroys it.
 */
async function sendBody(socket: Socket, body: Body, stop: () => boolean): Promise<void> {
  if (body == null) return
  if (hasReadInto(body)) return sendDirect(socket, body, stop)
  if (!(body instanceof Readable)) {
    socket.write(body)
    return
  }
  for await (const chunk of body as AsyncIterable<Buffer | string>) {
    if (stop()) break
    if (!socket.write(chunk)) await drained(socket)
  }
}

/** Where a connection's socket events go: the exchange using it, or the idle pool. */
interface Listener {
  bytes(data: Buffer, owned: boolean): void
  error(err: Error): void
  end(): void
  close(): void
  timeout(): void
}

/** A connection: one socket reading into its own fixed buffer, its events handed to whoever uses it now. */
class Conn {
  readonly socket: Socket
  listener: Listener

  constructor(u: URL, listener: Listener) {
    this.listener = listener
    this.socket = openSocket(u, undefined, (data, owned) => this.listener.bytes(data, owned))
    this.socket.on('error', (err) => this.listener.error(err))
    this.socket.on('end', () => this.listener.end())
    this.socket.on('close', () => this.listener.close())
    this.socket.on('timeout', () => this.listener.timeout())
  }
}

/** How long an idle connection is kept: below the 5 s a Node server (s3rver among them) keeps one open. */
const KEEP_ALIVE_MS = 2_000
/** The most idle connections kept per endpoint. */
const MAX_IDLE = 32

/** Idle connections per endpoint, reused for the next request (HTTP/1.1 keep-alive). */
class Pool {
  private readonly idle = new Map<string, Set<Conn>>()
  private closed = false

  /** An idle connection to `origin`, now owned by the caller. */
  take(origin: string): Conn | undefined {
    const set = this.idle.get(origin)
    for (const conn of set ?? []) {
      set?.delete(conn)
      if (!conn.socket.destroyed) return conn
    }
    return undefined
  }

  /** Keeps `conn` for a later request; anything it hears meanwhile (bytes, an end) closes it. */
  give(origin: string, conn: Conn): void {
    let set = this.idle.get(origin)
    if (!set) this.idle.set(origin, (set = new Set()))
    if (this.closed || conn.socket.destroyed || set.size >= MAX_IDLE) {
      conn.socket.destroy()
      return
    }
    const drop = () => conn.socket.destroy()
    conn.listener = { bytes: drop, error: () => {}, end: drop, timeout: drop, close: () => set.delete(conn) }
    conn.socket.setTimeout(KEEP_ALIVE_MS)
    conn.socket.resume()
    set.add(conn)
  }

  destroy(): void {
    this.closed = true
    for (const set of this.idle.values()) for (const conn of set) conn.socket.destroy()
    this.idle.clear()
  }
}

/** A failure on a reused connection before any answer: the store may have closed it while idle. */
const STALE = Symbol('stale connection')

function isStale(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { [STALE]?: boolean })[STALE] === true
}

/**
 * Writes a direct body (src/net/direct.ts): each read lands in a free buffer, which goes
 * back once the socket wrote it. The last read is held back until the body's end, where
 * its checks run (a length, a sha256): a body failing there never sent its last bytes, so
 * a store that counts them against the announced Content-Length commits nothing.
 */
async function sendDirect(socket: Socket, body: Readable & DirectSource, stop: () => boolean): Promise<void> {
  let held: { buf: Buffer; n: number } | undefined
  const write = (h: { buf: Buffer; n: number }): Promise<void> | undefined =>
    socket.write(h.buf.subarray(0, h.n), () => giveBuffer(h.buf)) ? undefined : drained(socket)
  for (;;) {
    const buf = takeBuffer()
    let n: number
    try {
      n = await body.readInto(buf, 0, buf.length)
    } catch (err) {
      giveBuffer(buf)
      throw err
    }
    if (n === 0) {
      giveBuffer(buf)
      break
    }
    if (held) {
      if (stop()) {
        body.destroy()
        return
      }
      await write(held)
    }
    held = { buf, n }
  }
  if (held && !stop()) await write(held)
}

/** One request; resolves once the response head arrived. A reused connection found closed is replaced once when the body can be sent again. */
async function exchange(pool: Pool, request: HttpRequest, opts: HttpHandlerOptions, limits: DirectHandlerOptions): Promise<{ response: HttpResponse }> {
  const signal = opts.abortSignal as AbortSignal | undefined
  if (signal?.aborted) throw abortError()
  const head = requestHead(request)
  const hostname = request.hostname.replace(/^\[|\]$/g, '')
  const u = new URL(`http://${hostname.includes(':') ? `[${hostname}]` : hostname}${request.port ? `:${request.port}` : ''}`)
  const origin = u.host
  const conn = pool.take(origin)
  if (!conn) return attempt(pool, origin, u, undefined, head, request, signal, limits)
  try {
    return await attempt(pool, origin, u, conn, head, request, signal, limits)
  } catch (err) {
    if (!isStale(err) || request.body instanceof Readable) throw err
    return attempt(pool, origin, u, undefined, head, request, signal, limits)
  }
}

function attempt(
  pool: Pool,
  origin: string,
  u: URL,
  reused: Conn | undefined,
  head: string,
  request: HttpRequest,
  signal: AbortSignal | undefined,
  limits: DirectHandlerOptions,
): Promise<{ response: HttpResponse }> {
  return new Promise((resolve, reject) => {
    let body: SocketBody | undefined
    // Set once a non-2xx answer is being read: it is handed to the SDK when read whole or at the close.
    let refused = false
    // Set once the head of the answer arrived: the request body is not sent further.
    let answered = false
    // Set once the whole request body was written: only then may the connection serve another request.
    let sent = false
    // Set once the whole response body has been handed on: a close before that is a truncated response.
    let complete = false
    // Set once the connection went back to the pool (or was closed): this exchange no longer touches it.
    let released = false
    let heard = false
    let pending: Buffer[] = []
    let pendingBytes = 0
    let onBytes: (data: Buffer, owned: boolean) => void = () => {}

    const fail = (err: Error) => {
      if (released || refused) return
      if (body) body.destroy(err)
      else reject(reused && !heard ? Object.assign(err, { [STALE]: true }) : err)
    }
    const listener: Listener = {
      bytes: (data, owned) => {
        heard = true
        onBytes(data, owned)
      },
      error: fail,
      end: () => onEnd(),
      close: () => {
        clearTimeout(connectTimer)
        signal?.removeEventListener('abort', onAbort)
        if (released) return
        if (!body && !refused) fail(premature())
        else if (body && !complete && !body.destroyed) body.destroy(premature())
        released = true
      },
      timeout: () => socket.destroy(timeoutError('waiting for the store', limits.idleTimeoutMs)),
    }
    let onEnd = () => {}
    const conn = reused ?? new Conn(u, listener)
    conn.listener = listener
    const socket = conn.socket
    const connectTimer = reused ? undefined : setTimeout(() => socket.destroy(timeoutError('connecting', limits.connectTimeoutMs)), limits.connectTimeoutMs)
    if (!reused) socket.once('connect', () => clearTimeout(connectTimer))
    socket.setTimeout(limits.idleTimeoutMs)
    const onAbort = () => socket.destroy(abortError())
    signal?.addEventListener('abort', onAbort, { once: true })

    /** The exchange is over with the connection intact: keep it when the request and the answer allow, else close it. */
    const release = (keep: boolean) => {
      if (released) return
      released = true
      clearTimeout(connectTimer)
      signal?.removeEventListener('abort', onAbort)
      if (keep && sent) pool.give(origin, conn)
      else socket.destroy()
    }
    const respond = (p: ReturnType<typeof parseHead>, b: Readable) => {
      resolve({ response: { statusCode: Number.isNaN(p.status) ? -1 : p.status, reason: p.reason, headers: p.headers, body: b } as HttpResponse })
    }
    const onHead = (data: Buffer) => {
      pending.push(data)
      pendingBytes += data.length
      let all = Buffer.concat(pending) // a copy: `data` may be the socket's reused read buffer
      for (;;) {
        const end = all.indexOf('\r\n\r\n')
        if (end < 0) {
          if (pendingBytes > HEAD_LIMIT) socket.destroy(new Error('response header too large'))
          pending = [all]
          return
        }
        const parsed = parseHead(all.toString('latin1', 0, end))
        all = all.subarray(end + 4)
        // An interim answer (100 Continue) is followed by the real one.
        if (parsed.status >= 100 && parsed.status < 200) continue
        answered = true
        const keep = !/close/i.test(parsed.headers['connection'] ?? '')
        if (parsed.status >= 200 && parsed.status < 300) started(parsed, all, keep)
        else failed(parsed, all, keep)
        return
      }
    }
    const started = (p: ReturnType<typeof parseHead>, rest: Buffer, keep: boolean) => {
      const frame = framing(p.headers)
      // The body controls the connection only while the exchange holds it.
      const out = new SocketBody({
        pause: () => released || socket.pause(),
        resume: () => released || socket.resume(),
        destroy: () => released || socket.destroy(),
      })
      body = out
      const { feed, end } = bodyFeed(frame, out, (err) => socket.destroy(err), () => {
        complete = true
        // A body that ends at the close leaves no connection to keep.
        release(keep && !frame.endsAtClose)
      })
      onBytes = feed
      onEnd = end
      respond(p, out)
      if (rest.length > 0 || frame.done()) feed(rest, true)
    }
    const failed = (p: ReturnType<typeof parseHead>, rest: Buffer, keep: boolean) => {
      refused = true
      const frame = framing(p.headers)
      const refusal = refusalBody(frame)
      let given = false
      const give = () => {
        if (given) return
        given = true
        respond(p, Readable.from([refusal.bytes()]))
      }
      const collect = (data: Buffer) => {
        refusal.collect(data)
        if (frame.done()) {
          release(keep)
          give()
        }
      }
      onBytes = collect
      const close = listener.close
      listener.close = () => {
        close()
        give()
      }
      collect(rest)
    }
    onBytes = onHead
    socket.write(head)
    sendBody(socket, request.body as Body, () => answered || socket.destroyed).then(
      () => (sent = !socket.destroyed),
      (err: unknown) => socket.destroy(err as Error),
    )
  })
}

/** The S3 client's request handler: object bodies direct, everything else through NodeHttpHandler. */
export class DirectBodyHandler {
  readonly metadata = { handlerProtocol: 'http/1.1' }
  private readonly inner: NodeHttpHandler
  private readonly limits: DirectHandlerOptions
  private readonly pool = new Pool()

  constructor(limits: DirectHandlerOptions) {
    this.limits = limits
    this.inner = new NodeHttpHandler({ connectionTimeout: limits.connectTimeoutMs, socketTimeout: limits.idleTimeoutMs })
  }

  handle(request: HttpRequest, opts: HttpHandlerOptions = {}): Promise<{ response: HttpResponse }> {
    return isDirect(request) ? exchange(this.pool, request, opts, this.limits) : this.inner.handle(request as Parameters<NodeHttpHandler['handle']>[0], opts)
  }

  updateHttpClientConfig(key: never, value: never): void {
    this.inner.updateHttpClientConfig(key, value)
  }

  httpHandlerConfigs(): ReturnType<NodeHttpHandler['httpHandlerConfigs']> {
    return this.inner.httpHandlerConfigs()
  }

  destroy(): void {
    this.pool.destroy()
    this.inner.destroy()
  }
}
