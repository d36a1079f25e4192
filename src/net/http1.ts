/**
 * Pieces of a plain HTTP/1.1 client for bulk transfers on a connection of their
 * own (ClickHouse exports in raw-http.ts, S3 object bodies in s3-direct.ts): the
 * socket reads into one fixed buffer, and the body is framed and handed on one
 * buffer per socket read, where Node's HTTP client allocates a buffer per read
 * and runs a parser callback and a stream push per chunk.
 */
import { connect as tcpConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { ChunkedDecoder } from './chunked.ts'
import type { SocketBody } from './socket-body.ts'

/** The most bytes a response head may take. */
export const HEAD_LIMIT = 64 * 1024

/** Bytes per socket read on a plain connection: read into one buffer, reused for every read. */
const READ_BUFFER_BYTES = 256 * 1024

/** Status line and headers (lower-case names) of a response head, given without its final blank line. */
export function parseHead(text: string): { status: number; reason: string; headers: Record<string, string> } {
  const [statusLine = '', ...lines] = text.split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine)
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const at = line.indexOf(':')
    if (at > 0) headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim()
  }
  return { status: Number(m?.[1] ?? NaN), reason: m?.[2] ?? '', headers }
}

/** The error of a connection closed before its response ended. */
export function premature(): Error {
  return Object.assign(new Error('the server closed the connection before the end of the response (premature close)'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })
}

/**
 * Connects to `u`'s host and port; every read is handed to `onBytes`. Plain TCP reads
 * into one fixed buffer (`onread`: no allocation per read; the bytes are valid only
 * during the call, `owned` false); TLS gets a new buffer per read (`owned` true).
 */
export function openSocket(u: URL, caCert: Buffer | undefined, onBytes: (data: Buffer, owned: boolean) => void): Socket {
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80))
  const host = u.hostname.replace(/^\[|\]$/g, '')
  if (u.protocol === 'https:') {
    const socket = tlsConnect({ host, port, servername: host, ...(caCert ? { ca: caCert } : {}) })
    socket.on('data', (data: Buffer) => onBytes(data, true))
    return socket
  }
  const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES)
  return tcpConnect({ host, port, onread: { buffer, callback: (n: number, buf: Uint8Array) => (onBytes((buf as Buffer).subarray(0, n), false), true) } })
}

/** How a response body ends: decoded per read, whole when `done()`, or at the close. */
export interface Framing {
  decode: (b: Buffer) => Buffer
  done: () => boolean
  endsAtClose: boolean
}

/** Body framing of a response: chunked, a known length, or up to the close. */
export function framing(headers: Record<string, string>): Framing {
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const d = new ChunkedDecoder()
    return { decode: (b) => d.push(b), done: () => d.done, endsAtClose: false }
  }
  const length = headers['content-length'] === undefined ? undefined : Number(headers['content-length'])
  let seen = 0
  return { decode: (b) => ((seen += b.length), b), done: () => length !== undefined && seen >= length, endsAtClose: length === undefined }
}

/**
 * Hands each read of a response body, decoded, to `out`. Once the framing says the body
 * is whole (or, for a body that ends at the close, at the peer's end), `complete` runs
 * and then `out` is finished; a framing error goes to `fail`. Call `end` at the peer's end.
 */
export function bodyFeed(frame: Framing, out: SocketBody, fail: (err: Error) => void, complete: () => void): { feed: (data: Buffer, owned: boolean) => void; end: () => void } {
  return {
    feed(data, owned) {
      let bytes: Buffer
      try {
        bytes = frame.decode(data)
      } catch (err) {
        fail(err as Error)
        return
      }
      out.deliver(bytes, owned)
      if (frame.done()) {
        complete()
        out.finish()
      }
    },
    end() {
      if (frame.endsAtClose) {
        complete()
        out.finish()
      } else if (!frame.done()) out.destroy(premature())
    },
  }
}

/** Collects the body of a refusal (copied: reads may be the socket's reused buffer), decoded where the framing allows. */
export function refusalBody(frame: Framing): { collect: (data: Buffer) => void; bytes: () => Buffer } {
  const parts: Buffer[] = []
  return {
    collect(data) {
      const copy = Buffer.from(data)
      try {
        parts.push(frame.decode(copy))
      } catch {
        parts.push(copy)
      }
    },
    bytes: () => Buffer.concat(parts),
  }
}
