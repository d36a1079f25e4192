import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { createPipelinePool } from '../../src/engine/pipeline/index.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { KIB, compressible, encodeAll } from './helpers.ts'

const run = promisify(execFile)
const pool = createPipelinePool({ threads: 2 })
t.teardown(() => pool.destroy())

const CHUNK = 64 * KIB
const cases: [string, Buffer][] = [
  ['empty', Buffer.alloc(0)],
  ['1 byte', Buffer.from('x')],
  ['exactly 2 chunks', compressible(2 * CHUNK)],
  ['several chunks plus a tail', Buffer.concat([compressible(3 * CHUNK), randomBytes(CHUNK + 17)])],
]

t.test('an unencrypted stored object decompresses with the zstd CLI', async (t) => {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  for (const [name, raw] of cases) {
    const { stored } = await encodeAll(raw, { pool, chunkSize: CHUNK })
    const file = join(dir, `${name.replaceAll(' ', '-')}.zst`)
    await writeFile(file, stored)
    const { stdout } = await run('zstd', ['-dc', file], { encoding: 'buffer', maxBuffer: 64 * 1024 * KIB })
    t.ok(stdout.equals(raw), `${name}: zstd -dc gives back the ${raw.length} raw bytes`)
    await t.resolves(run('zstd', ['-t', file]), `${name}: zstd -t accepts the frame checksums`)
  }
})
