import { randomBytes } from 'node:crypto'
import { open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { createPipelinePool, encode } from '../../src/engine/pipeline/index.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { KIB, collect, collectUntilError, compressible, decodeBytes, encodeAll } from './helpers.ts'

const pool = createPipelinePool({ threads: 2 })
t.teardown(() => pool.destroy())
const dir = await tempDir()
t.teardown(() => removeTempDir(dir))

const CHUNK = 64 * KIB

async function encodeFile(raw: Buffer, opts: Omit<Parameters<typeof encode>[1], 'pool'> = {}) {
  const path = join(dir, 'source')
  await writeFile(path, raw)
  const file = await open(path, 'r')
  try {
    const { stream, done } = encode(file, { pool, chunkSize: CHUNK, ...opts })
    const stored = await collect(stream)
    return { stored, result: await done }
  } finally {
    await file.close()
  }
}

t.test('a file source stores exactly what the same bytes as a stream store', async (t) => {
  for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 4 * CHUNK, 4 * CHUNK + 7]) {
    const raw = Buffer.concat([compressible(size >> 1), randomBytes(size - (size >> 1))])
    const fromFile = await encodeFile(raw)
    const fromStream = await encodeAll(raw, { pool, chunkSize: CHUNK })
    t.same(fromFile.result, fromStream.result, `${size} bytes: same result`)
    t.ok(fromFile.stored.equals(fromStream.stored), `${size} bytes: same stored bytes`)
  }
})

t.test('a sealed file source round trips and marks its last chunk final', async (t) => {
  const key = randomBytes(32)
  for (const size of [0, 3 * CHUNK, 3 * CHUNK + 1]) {
    const raw = randomBytes(size)
    const { stored, result } = await encodeFile(raw, { key, objectId: 'f' })
    t.equal(result.chunks, Math.max(1, Math.ceil(size / CHUNK)))
    t.ok((await collect(decodeBytes(stored, { pool, key, objectId: 'f', expected: result }))).equals(raw), `${size} bytes`)
  }
})

t.test('an abort fails the encode and leaves the handle open for its owner', async (t) => {
  const path = join(dir, 'big')
  await writeFile(path, randomBytes(200 * CHUNK))
  const file = await open(path, 'r')
  t.teardown(() => file.close())
  const controller = new AbortController()
  const { stream, done } = encode(file, { pool, chunkSize: CHUNK, maxInFlight: 2, signal: controller.signal })
  const collected = collectUntilError(stream)
  controller.abort()
  t.match((await collected).error, { code: 'TM_ERR_ABORTED' })
  await t.rejects(done, { code: 'TM_ERR_ABORTED' })
  t.equal(pool.pending, 0)
  t.equal((await file.stat()).size, 200 * CHUNK, 'the handle still works')
})
