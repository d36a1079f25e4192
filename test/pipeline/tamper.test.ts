import { randomBytes } from 'node:crypto'
import t from 'tap'
import { createPipelinePool } from '../../src/engine/pipeline/index.ts'
import { KIB, collectUntilError, compressible, decodeBytes, encodeAll, frames, records } from './helpers.ts'

const pool = createPipelinePool({ threads: 2 })
t.teardown(() => pool.destroy())

const CHUNK = 64 * KIB
const key = randomBytes(32)
const objectId = 'data/ch/db/t/part-1'
const raw = compressible(5 * CHUNK + 100) // 6 chunks
const sealed = await encodeAll(raw, { pool, chunkSize: CHUNK, key, objectId })
const plain = await encodeAll(raw, { pool, chunkSize: CHUNK })
const opened = { pool, key, objectId }

function flip(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes)
  copy[at]! ^= 0x01
  return copy
}

/** Offset of the `n`-th byte of the ciphertext of record `index`. */
function cipherOffset(parts: Buffer[], index: number, n: number): number {
  return parts.slice(0, index).reduce((sum, p) => sum + p.length, 0) + 17 + n
}

t.test('encrypted: a flipped byte fails at its chunk, after exactly the chunks before it', async (t) => {
  const parts = records(sealed.stored)
  const { bytes, error } = await collectUntilError(decodeBytes(flip(sealed.stored, cipherOffset(parts, 2, 100)), opened))
  t.match(error, { code: 'TM_ERR_DECRYPT', message: /wrong key or corrupted chunk 2\b/ })
  t.ok(bytes.equals(raw.subarray(0, 2 * CHUNK)), 'chunks 0 and 1 were emitted, nothing of chunk 2 or later')
})

t.test('encrypted: a flipped tag or flag byte is detected too', async (t) => {
  const parts = records(sealed.stored)
  const lastByteOfChunk1 = parts[0]!.length + parts[1]!.length - 1
  t.match((await collectUntilError(decodeBytes(flip(sealed.stored, lastByteOfChunk1), opened))).error, { code: 'TM_ERR_DECRYPT', message: /chunk 1\b/ })
  const flagOfChunk0 = 4
  t.match((await collectUntilError(decodeBytes(flip(sealed.stored, flagOfChunk0), opened))).error, { code: 'TM_ERR_DECRYPT', message: /chunk 0\b/ })
})

t.test('encrypted: a dropped chunk is detected', async (t) => {
  const parts = records(sealed.stored)
  const dropped = Buffer.concat([...parts.slice(0, 3), ...parts.slice(4)])
  t.match((await collectUntilError(decodeBytes(dropped, opened))).error, { code: 'TM_ERR_DECRYPT', message: /chunk 3\b/ })
})

t.test('encrypted: two swapped chunks are detected', async (t) => {
  const parts = records(sealed.stored)
  const swapped = Buffer.concat([parts[0]!, parts[2]!, parts[1]!, ...parts.slice(3)])
  t.match((await collectUntilError(decodeBytes(swapped, opened))).error, { code: 'TM_ERR_DECRYPT', message: /chunk 1\b/ })
})

t.test('encrypted: a truncated object (last chunks dropped) is detected without any manifest data', async (t) => {
  const parts = records(sealed.stored)
  for (const keep of [5, 3, 0]) {
    const { bytes, error } = await collectUntilError(decodeBytes(Buffer.concat(parts.slice(0, keep)), opened))
    t.match(error, { code: 'TM_ERR_INTEGRITY', message: /final chunk is missing/ }, `keeping ${keep} of 6 chunks`)
    t.equal(bytes.length, keep * CHUNK)
  }
  const midRecord = sealed.stored.subarray(0, sealed.stored.length - 5)
  t.match((await collectUntilError(decodeBytes(midRecord, opened))).error, { code: 'TM_ERR_INTEGRITY', message: /bytes after the last complete record/ })
})

t.test('encrypted: data after the final chunk is detected', async (t) => {
  const parts = records(sealed.stored)
  const { error } = await collectUntilError(decodeBytes(Buffer.concat([sealed.stored, parts[5]!]), opened))
  t.match(error, { code: 'TM_ERR_INTEGRITY', message: /after the final chunk/ })
})

t.test('encrypted: a chunk from another object at the same position is detected', async (t) => {
  const other = await encodeAll(raw, { pool, chunkSize: CHUNK, key, objectId: 'data/ch/db/t/part-2' })
  const mixed = Buffer.concat([...records(sealed.stored).slice(0, 2), records(other.stored)[2]!, ...records(sealed.stored).slice(3)])
  t.match((await collectUntilError(decodeBytes(mixed, opened))).error, { code: 'TM_ERR_DECRYPT', message: /chunk 2\b/ })
  const { error } = await collectUntilError(decodeBytes(other.stored, opened))
  t.match(error, { code: 'TM_ERR_DECRYPT', message: /chunk 0\b/ }, 'a whole object read under another id')
})

t.test('encrypted: a wrong key fails at chunk 0 with a clear message', async (t) => {
  const { bytes, error } = await collectUntilError(decodeBytes(sealed.stored, { ...opened, key: randomBytes(32) }))
  t.match(error, { code: 'TM_ERR_DECRYPT', message: /wrong key or corrupted chunk 0\b/ })
  t.equal(bytes.length, 0)
})

t.test('codec confusion says so', async (t) => {
  t.match((await collectUntilError(decodeBytes(plain.stored, opened))).error, { code: 'TM_ERR_INTEGRITY', message: /not encrypted/ })
  t.match((await collectUntilError(decodeBytes(sealed.stored, { pool }))).error, { code: 'TM_ERR_INTEGRITY', message: /needs its key/ })
})

t.test('plain: a flipped byte fails the frame checksum or the sha256', async (t) => {
  const parts = frames(plain.stored)
  const inFrame2 = parts[0]!.length + parts[1]!.length + Math.floor(parts[2]!.length / 2)
  const { bytes, error } = await collectUntilError(decodeBytes(flip(plain.stored, inFrame2), { pool, expected: plain.result }))
  t.match(error, { code: 'TM_ERR_INTEGRITY', message: /chunk 2 does not decompress|sha256 mismatch/ })
  t.ok(bytes.length <= 2 * CHUNK)
  const lastByte = plain.stored.length - 1 // inside the last frame's checksum
  t.match((await collectUntilError(decodeBytes(flip(plain.stored, lastByte), { pool }))).error, { code: 'TM_ERR_INTEGRITY', message: /chunk 5/ })
})

t.test('plain: reordered, dropped or truncated frames fail the manifest checks', async (t) => {
  const parts = frames(plain.stored)
  const swapped = Buffer.concat([parts[0]!, parts[2]!, parts[1]!, ...parts.slice(3)])
  t.match((await collectUntilError(decodeBytes(swapped, { pool, expected: { sha256: plain.result.sha256 } }))).error, {
    code: 'TM_ERR_INTEGRITY',
    message: /sha256 mismatch: expected [0-9a-f]{64}, read [0-9a-f]{64}/,
  })
  const dropped = Buffer.concat([...parts.slice(0, 3), ...parts.slice(4)])
  t.match((await collectUntilError(decodeBytes(dropped, { pool, expected: plain.result }))).error, { code: 'TM_ERR_INTEGRITY', message: /stored size \(bytes\) mismatch/ })
  t.match((await collectUntilError(decodeBytes(dropped, { pool, expected: { chunks: 6 } }))).error, { code: 'TM_ERR_INTEGRITY', message: /chunk count mismatch: expected 6, read 5/ })
  const truncated = Buffer.concat(parts.slice(0, 5))
  t.match((await collectUntilError(decodeBytes(truncated, { pool, expected: { sha256: plain.result.sha256 } }))).error, { code: 'TM_ERR_INTEGRITY', message: /sha256 mismatch/ })
  t.match((await collectUntilError(decodeBytes(truncated, { pool, expected: { rawBytes: raw.length } }))).error, { code: 'TM_ERR_INTEGRITY', message: /decoded size mismatch/ })
  const cut = plain.stored.subarray(0, plain.stored.length - 3)
  t.match((await collectUntilError(decodeBytes(cut, { pool }))).error, { code: 'TM_ERR_INTEGRITY', message: /after the last complete frame/ })
})

t.test('an intact object with a wrong expected sha256 is refused', async (t) => {
  const { error } = await collectUntilError(decodeBytes(sealed.stored, { ...opened, expected: { sha256: plain.result.sha256 } }))
  t.match(error, { code: 'TM_ERR_INTEGRITY', message: /sha256 mismatch/ })
})
