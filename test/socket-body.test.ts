// The bulk response body read both ways, against a stand-in socket (the real one is in raw-http.test.ts).
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { SocketBody, TAIL_BYTES } from '../src/net/socket-body.ts'
import { readAllInto } from './harness/read-into.ts'

function fakeSocket() {
  const calls: string[] = []
  return { calls, pause: () => void calls.push('pause'), resume: () => void calls.push('resume'), destroy: () => void calls.push('destroy') }
}

t.test('readInto: bytes delivered before, during and after a pending read arrive in order, each copied once', async (t) => {
  const sock = fakeSocket()
  const body = new SocketBody(sock)
  const data = randomBytes(100_000)
  const reused = Buffer.alloc(30_000) // what the socket reads into, again and again
  const deliver = (from: number, to: number) => {
    data.copy(reused, 0, from, to)
    body.deliver(reused.subarray(0, to - from), false)
    reused.fill(0) // the next socket read overwrites it: the body must have copied what it kept
  }
  deliver(0, 30_000) // before anyone reads: kept, socket paused
  t.same(sock.calls, ['pause'])
  const reading = readAllInto(body, 7_000)
  await new Promise((r) => setImmediate(r))
  deliver(30_000, 60_000)
  await new Promise((r) => setImmediate(r))
  deliver(60_000, 90_000)
  await new Promise((r) => setImmediate(r))
  deliver(90_000, 100_000)
  body.finish()
  t.same(await reading, data)
  t.ok(sock.calls.includes('resume'), 'resumed once what was kept had been read')
})

t.test('stream: the same bytes through for-await, including what came before the first read', async (t) => {
  const body = new SocketBody(fakeSocket())
  const data = randomBytes(50_000)
  body.deliver(Buffer.from(data.subarray(0, 20_000)), true)
  setImmediate(() => {
    body.deliver(Buffer.from(data.subarray(20_000)), false)
    body.finish()
  })
  const out: Buffer[] = []
  for await (const c of body) out.push(c as Buffer)
  t.same(Buffer.concat(out), data)
  await t.rejects(body.readInto(Buffer.alloc(1), 0, 1), /already read as a stream/)
})

t.test('the end check sees exactly the last 16 KiB; its error fails the read, through mapError', async (t) => {
  const body = new SocketBody(fakeSocket())
  body.mapError = (err) => new Error(`mapped: ${err.message}`)
  const data = randomBytes(3 * TAIL_BYTES + 123)
  let seen: Buffer | undefined
  body.endCheck = (tail) => {
    seen = tail
    return new Error('Code: 241, e.displayText() = DB::Exception: Memory limit')
  }
  const reading = readAllInto(body, 64 * 1024)
  for (let at = 0; at < data.length; at += 1000) body.deliver(data.subarray(at, Math.min(at + 1000, data.length)), false)
  body.finish()
  await t.rejects(reading, /mapped: Code: 241/)
  t.same(seen, data.subarray(-TAIL_BYTES))
})

t.test('destroyed while a read is pending: the read fails, the socket is destroyed', async (t) => {
  const sock = fakeSocket()
  const body = new SocketBody(sock)
  const pending = body.readInto(Buffer.alloc(10), 0, 10)
  body.destroy(new Error('premature close'))
  await t.rejects(pending, /premature close/)
  await t.rejects(body.readInto(Buffer.alloc(10), 0, 10), /premature close/, 'and so does every later one')
  t.ok(sock.calls.includes('destroy'))
})

t.test('a body that ended before it was read: readInto gives its bytes, then 0', async (t) => {
  const body = new SocketBody(fakeSocket())
  body.deliver(Buffer.from('abc'), false)
  body.finish()
  t.same(await readAllInto(body, 2), Buffer.from('abc'))
})
