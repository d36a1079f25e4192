// The S3 sink's direct handler (src/sinks/s3-direct.ts): object bodies on kept-alive
// connections of its own. Against s3rver behind a counting proxy, and against small
// TCP servers that misbehave on purpose.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import { DirectBody } from '../../src/net/direct.ts'
import { createS3Sink, type S3SinkOptions } from '../../src/sinks/s3.ts'
import { SinkError } from '../../src/sinks/sink.ts'
import { startS3rver } from '../harness/s3rver.ts'
import { collect } from './conformance.ts'

const MiB = 1024 * 1024

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as { port: number }).port
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy()
  return new Promise((resolve) => server.close(() => resolve()))
}

function sinkAt(port: number, extra: Partial<S3SinkOptions> = {}) {
  return createS3Sink({
    bucket: 'b',
    endpoint: `http://127.0.0.1:${port}`,
    forcePathStyle: true,
    credentials: { accessKeyId: 'k', secretAccessKey: 's' },
    connectTimeoutMs: 2_000,
    idleTimeoutMs: 5_000,
    ...extra,
  })
}

/** A TCP server that hands each connection's request heads (and body bytes) to `onRequest`. */
async function fakeStore(onRequest: (socket: Socket, head: string, index: number, bodyBytes: () => number) => void) {
  const sockets = new Set<Socket>()
  let connections = 0
  const server = createServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buffered = Buffer.alloc(0)
    let index = 0
    let body = 0
    let inBody = false
    socket.on('data', (d: Buffer) => {
      if (inBody) {
        body += d.length
        return
      }
      buffered = Buffer.concat([buffered, d])
      const end = buffered.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = buffered.toString('latin1', 0, end)
      body = buffered.length - end - 4
      buffered = Buffer.alloc(0)
      inBody = /^PUT /.test(head)
      onRequest(socket, head, index++, () => body)
    })
  })
  const port = await listen(server)
  return { port, connections: () => connections, close: () => closeServer(server, sockets) }
}

t.test('object bodies go over kept-alive connections: many puts and gets, few connections, same bytes', async (t) => {
  const s3 = await startS3rver(t)
  // A proxy in front of s3rver that counts the connections made to it.
  const sockets = new Set<Socket>()
  let connections = 0
  const proxy = createServer((client) => {
    connections++
    const upstream = connect(s3.port, '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => sockets.delete(s))
    }
    client.pipe(upstream).pipe(client)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  const port = await listen(proxy)
  t.teardown(() => closeServer(proxy, sockets))
  const sink = createS3Sink({ bucket: s3.bucket, endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } })
  t.teardown(() => sink.close())
  const objects = Array.from({ length: 12 }, (_, i) => randomBytes(MiB + i * 4099))
  for (const [i, data] of objects.entries()) {
    const sha256 = createHash('sha256').update(data).digest('hex')
    // A Buffer (one PutObject, hashed by the SDK) and a stream with a known hash (streamed).
    if (i % 2 === 0) await sink.put(`o${i}`, data)
    else await sink.put(`o${i}`, Readable.from([data.subarray(0, 1000), data.subarray(1000)]), { contentLength: data.length, sha256 })
  }
  for (const [i, data] of objects.entries()) t.ok((await collect(await sink.get(`o${i}`))).equals(data), `o${i} read back`)
  t.ok(connections <= 3, `24 requests over ${connections} connections`)
})

t.test('a connection closed without an answer fails the request as transient instead of hanging', async (t) => {
  const store = await fakeStore((socket) => socket.end())
  t.teardown(store.close)
  const sink = sinkAt(store.port)
  t.teardown(() => sink.close())
  const get = await sink.get('x').catch((e: unknown) => e)
  t.ok(get instanceof SinkError, 'get: a SinkError')
  t.match(get, { kind: 'transient', code: /^TM_ERR_SINK_(IO|UNREACHABLE)$/ })
  const put = await sink.put('x', Buffer.from('hello')).catch((e: unknown) => e)
  t.match(put, { kind: 'transient', code: /^TM_ERR_SINK_(IO|UNREACHABLE)$/ }, 'put: transient too')
})

t.test('a kept connection the store closed meanwhile is replaced once for a request without a streamed body', async (t) => {
  // Answers the first request of each connection; closes the connection at its second one, unanswered.
  const store = await fakeStore((socket, _head, index) => {
    if (index > 0) return void socket.destroy()
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: "e"\r\n\r\nhello')
  })
  t.teardown(store.close)
  const sink = sinkAt(store.port)
  t.teardown(() => sink.close())
  t.equal((await collect(await sink.get('a'))).toString(), 'hello')
  t.equal((await collect(await sink.get('b'))).toString(), 'hello', 'the second get succeeds on a new connection')
  t.equal(store.connections(), 2)
})

t.test('an answer split across reads, and an error answer in chunks, reach the SDK whole', async (t) => {
  const xml = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>'
  const store = await fakeStore((socket, head) => {
    if (/^GET \/b\/ok/.test(head)) {
      const parts = ['HTTP/1.1 200 OK\r\nCont', 'ent-Length: 11\r\n', '\r\nhello', ' world']
      parts.forEach((p, i) => setTimeout(() => socket.write(p), i * 20))
      return
    }
    const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`
    socket.write(`HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(xml.slice(0, 40))}`)
    setTimeout(() => socket.write(`${chunk(xml.slice(40))}0\r\n\r\n`), 20)
  })
  t.teardown(store.close)
  const sink = sinkAt(store.port)
  t.teardown(() => sink.close())
  t.equal((await collect(await sink.get('ok'))).toString(), 'hello world')
  const err = await sink.get('slow').catch((e: unknown) => e)
  t.match(err, { kind: 'transient', code: 'TM_ERR_SINK_IO', message: /SlowDown/ }, 'the error body was parsed: SlowDown, transient')
})

/** A direct body of `size` bytes that fails at its very end, where a checksum would be compared. */
class FailsAtEnd extends DirectBody {
  sent = 0
  readonly size: number
  constructor(size: number) {
    super()
    this.size = size
  }
  protected async pull(buffer: Uint8Array, offset: number, length: number): Promise<number> {
    const n = Math.min(length, 64 * 1024, this.size - this.sent)
    if (n === 0) throw new Error('checksum mismatch at the end')
    buffer.fill(7, offset, offset + n)
    this.sent += n
    return n
  }
}

t.test('a streamed put whose body fails at its end never sends its last bytes, and reports the body error', async (t) => {
  let received = () => 0
  let closed!: () => void
  const gone = new Promise<void>((resolve) => (closed = resolve))
  const store = await fakeStore((socket, _head, _i, bodyBytes) => {
    received = bodyBytes
    socket.on('close', () => closed())
  })
  t.teardown(store.close)
  const sink = sinkAt(store.port)
  t.teardown(() => sink.close())
  const size = 3 * MiB + 5
  const body = new FailsAtEnd(size)
  const err = await sink.put('x', body, { contentLength: size, sha256: 'a'.repeat(64) }).catch((e: unknown) => e)
  t.match(err, { message: 'checksum mismatch at the end' }, 'the body error, unchanged')
  t.equal(body.sent, size, 'the body was read to its end')
  await gone
  t.ok(received() < size, `the store got ${received()} of ${size} bytes: the last read was held back`)
})
