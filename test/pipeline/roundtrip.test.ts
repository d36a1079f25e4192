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

t.test('the same input encodes to a different sealed object each time (fresh nonces)', async (t) => {
  const raw = compressible(2 * CHUNK)
  const a = await encodeAll(raw, { pool, chunkSize: CHUNK, key, objectId: 'x' })
  const b = await encodeAll(raw, { pool, chunkSize: CHUNK, key, objectId: 'x' })
  t.not(a.result.sha256, b.result.sha256)
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
