import t from 'tap'
import { ChunkedDecoder } from '../../src/net/chunked.ts'

function encode(parts: string[]): Buffer {
  return Buffer.from(parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join('') + '0\r\n\r\n', 'latin1')
}

t.test('decodes a body split at every possible point', async (t) => {
  const wire = encode(['hello ', 'wor', 'ld', 'x'.repeat(300)])
  for (let cut = 0; cut <= wire.length; cut++) {
    for (const step of [1, 7, wire.length]) {
      const d = new ChunkedDecoder()
      // push() compacts its input in place: hand it copies, as the socket hands it fresh buffers.
      const out: Buffer[] = [d.push(Buffer.from(wire.subarray(0, cut)))]
      for (let i = cut; i < wire.length; i += step) out.push(d.push(Buffer.from(wire.subarray(i, Math.min(i + step, wire.length)))))
      if (Buffer.concat(out).toString() !== `hello world${'x'.repeat(300)}` || !d.done) return t.fail(`cut ${cut} step ${step}`)
    }
  }
  t.pass('every split decodes to the same body and ends')
})

t.test('not done before the terminating chunk; errors on bad input', async (t) => {
  const d = new ChunkedDecoder()
  d.push(Buffer.from('5\r\nhello\r\n'))
  t.notOk(d.done, 'a body without its zero chunk is incomplete')
  t.throws(() => new ChunkedDecoder().push(Buffer.from('zz\r\n')), /bad chunk size/)
  t.throws(() => new ChunkedDecoder().push(Buffer.from('2\r\nabX\r\n')), /missing CRLF/)
  const e = new ChunkedDecoder()
  e.push(Buffer.from('1;ext=1\r\na\r\n0\r\nX-Trailer: 1\r\n\r\n'))
  t.ok(e.done, 'extensions and trailers are accepted')
  t.throws(() => e.push(Buffer.from('1')), /after the end/)
})
