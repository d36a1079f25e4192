import { randomBytes } from 'node:crypto'
import t from 'tap'
import { createPipelinePool, encode } from '../../src/engine/pipeline/index.ts'
import { KIB, collect, compressible, decodeBytes, encodeAll, piecewise, sha256 } from './helpers.ts'

const pool = createPipelinePool({ threads: 2 })
t.teardown(() => pool.destroy())

const CHUNK = 64 * KIB
const key = randomBytes(32)
const sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK - 1, 3 * CHUNK, 3 * CHUNK + 1, 5 * CHUNK + 12_345]

for (const encrypted of [false, true]) {
  for (const kind of ['random', 'compressible'] as const) {
    t.test(`${encrypted ? 'encrypted' : 'plain'} ${kind} round trips at chunk boundaries`, async (t) => {
      for (const size of sizes) {
        const raw = kind === 'random' ? randomBytes(size) : compressible(size)
        const sealing = encrypted ? { key, objectId: `data/obj-${size}` } : {}
        const { stored, result } = await encodeAll(raw, { pool, chunkSize: CHUNK, ...sealing })
        t.same(
          result,
          {
            rawBytes: size,
            storedBytes: stored.length,
            chunks: Math.max(1, Math.ceil(size / CHUNK)),
            sha256: sha256(stored),
            codec: encrypted ? 'zstd+aes256gcm' : 'zstd',
            chunkSize: CHUNK,
          },
          `result of ${size} bytes`,
        )
        const back = await collect(decodeBytes(stored, { pool, ...sealing, expected: result }))
        t.ok(back.equals(raw), `${size} bytes come back identical`)
      }
    })
  }
}

t.test('compressible data is stored smaller; sealing adds 33 bytes per chunk', async (t) => {
  const raw = compressible(10 * CHUNK)
  const plain = await encodeAll(raw, { pool, chunkSize: CHUNK })
  const sealed = await encodeAll(raw, { pool, chunkSize: CHUNK, key, objectId: 'x' })
  t.ok(plain.result.storedBytes * 4 < raw.length, `ratio ${(raw.length / plain.result.storedBytes).toFixed(1)}`)
  t.equal(sealed.result.storedBytes - plain.result.storedBytes, 10 * 33)
})

t.test('sealing is deterministic per object id and content; nonces differ across chunks, objects and contents', async (t) => {
  const raw = compressible(2 * CHUNK)
  const a = await encodeAll(raw, { pool, chunkSize: CHUNK, key, objectId: 'x' })
  const b = await encodeAll(raw, { pool, chunkSize: CHUNK, key, objectId: 'x' })
  const c = await encodeAll(raw, { pool, chunkSize: CHUNK, key, objectId: 'y' })
  const d = await encodeAll(Buffer.concat([raw.subarray(0, raw.length - 1), Buffer.from([raw.at(-1)! ^ 1])]), { pool, chunkSize: CHUNK, key, objectId: 'x' })
  t.equal(a.result.sha256, b.result.sha256, 'same object id and content: same stored bytes')
  t.not(a.result.sha256, c.result.sha256, 'another object id: other bytes')
  // Nonce of record i: bytes 5..17 of the record (layout in seal.ts); records here are equal-sized.
  const nonces = (s: Buffer) => {
    const out: string[] = []
    for (let off = 0; off < s.length; off += 4 + s.readUInt32BE(off)) out.push(s.subarray(off + 5, off + 17).toString('hex'))
    return out
  }
  const [a0, a1] = nonces(a.stored)
  t.not(a0, a1, 'chunks of one object get distinct nonces')
  t.not(nonces(c.stored)[0], a0, 'the same chunk in another object gets another nonce')
  t.not(nonces(d.stored)[1], a1, 'a changed chunk gets another nonce')
  t.equal(nonces(d.stored)[0], a0, 'an unchanged chunk keeps its nonce')
})

t.test('the default chunk size is 4 MiB', async (t) => {
  const raw = compressible(4 * 1024 * KIB + 1)
  const { result } = await encodeAll(raw, { pool })
  t.equal(result.chunkSize, 4 * 1024 * KIB)
  t.equal(result.chunks, 2)
})

t.test('bad options throw TM_ERR_USAGE naming the option', async (t) => {
  const bad = [
    [{ chunkSize: 10 }, /chunkSize/],
    [{ level: 30 }, /level/],
    [{ maxInFlight: 0 }, /maxInFlight/],
    [{ key: randomBytes(16), objectId: 'x' }, /key must be 32 bytes/],
    [{ key }, /objectId/],
  ] as const
  for (const [opts, message] of bad) {
    t.throws(() => encode(piecewise(Buffer.alloc(1)), { pool, ...opts }), { code: 'TM_ERR_USAGE', message })
  }
})
