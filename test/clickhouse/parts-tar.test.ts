import t from 'tap'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { PartReader, unpackPart } from '../../src/engine/clickhouse/parts-tar.ts'
import { createPipelinePool } from '../../src/engine/pipeline/index.ts'
import { dataKey, initRepository } from '../../src/engine/repository/index.ts'
import { createFsSink } from '../../src/sinks/fs.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'

const root = await tempDir('tidemark-ptar-')
t.teardown(() => removeTempDir(root))
const src = join(root, 'src')
await mkdir(join(src, 'sub dir'), { recursive: true })
await writeFile(join(src, 'checksums.txt'), 'abc')
await writeFile(join(src, 'empty.bin'), '')
await writeFile(join(src, 'x.bin'), Buffer.alloc(100_000, 7))
await writeFile(join(src, 'sub dir', 'n%1.mrk'), 'nested')
/** The part stream as the backup reads it: PartReader, `size` bytes per read. */
const packed = async (size = 1 << 20) => {
  const reader = await PartReader.open(src)
  const chunks: Buffer[] = []
  try {
    for (let position = 0; ; ) {
      const buf = new Uint8Array(size)
      const { bytesRead } = await reader.read(buf, 0, size, position)
      chunks.push(Buffer.from(buf.subarray(0, bytesRead)))
      position += bytesRead
      if (bytesRead < size) break
    }
  } finally {
    await reader.close()
  }
  return Buffer.concat(chunks)
}
// Tiny chunks: headers and file bytes split at every possible place.
const dribble = (b: Buffer, size: number) => Readable.from((function* () {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size)
})())

t.test('round trip, whatever the chunking', async (t) => {
  const bytes = await packed()
  for (const size of [1, 7, 65536, 1 << 20]) {
    const out = join(root, `out${size}`)
    // One-byte chunks over the headers only (a cut stream).
    const input = size === 1 ? dribble(bytes.subarray(0, 100), 1) : dribble(bytes, size)
    if (size === 1) {
      await t.rejects(unpackPart(input, out), { code: 'TM_ERR_REPO_CORRUPT' }, 'a cut stream is refused')
      continue
    }
    t.same(await unpackPart(input, out), ['checksums.txt', 'empty.bin', 'sub dir/n%1.mrk', 'x.bin'])
    t.same(await readFile(join(out, 'x.bin')), await readFile(join(src, 'x.bin')))
    t.equal(await readFile(join(out, 'sub dir', 'n%1.mrk'), 'utf8'), 'nested')
    t.equal((await readFile(join(out, 'empty.bin'))).length, 0)
  }
  t.same((await readdir(join(root, 'out7'))).sort(), ['checksums.txt', 'empty.bin', 'sub dir', 'x.bin'])
})

t.test('the stream format (FORMAT.md, "ClickHouse parts"), whatever the read size', async (t) => {
  const expected = Buffer.concat([
    Buffer.from('TMPART1 3 checksums.txt\nabc'),
    Buffer.from('TMPART1 0 empty.bin\n'),
    Buffer.from('TMPART1 6 sub%20dir%2Fn%251.mrk\nnested'),
    Buffer.from('TMPART1 100000 x.bin\n'), Buffer.alloc(100_000, 7),
    Buffer.from('TMPART1 END 4\n'),
  ])
  for (const size of [13, 4096, 1 << 20]) t.same(await packed(size), expected, `${size}-byte reads`)
})

t.test('malformed streams are refused', async (t) => {
  const bytes = await packed()
  await t.rejects(unpackPart(dribble(bytes.subarray(0, bytes.length - 3), 4096), join(root, 'cut')), { code: 'TM_ERR_REPO_CORRUPT', message: /end line/ })
  await t.rejects(unpackPart(Readable.from([Buffer.from('TMPART1 3 ..%2Fescape\nabcTMPART1 END 1\n')]), join(root, 'esc')), { code: 'TM_ERR_REPO_CORRUPT', message: /not a plain relative path/ })
  await t.rejects(unpackPart(Readable.from([Buffer.from('garbage\n')]), join(root, 'bad')), { code: 'TM_ERR_REPO_CORRUPT' })
})

t.test('a packed part through a repository, unpacked on the workers: plain and encrypted, chunks smaller than its files; damage refused', async (t) => {
  const pool = createPipelinePool({ threads: 2 })
  t.teardown(() => pool.destroy())
  for (const passphrase of [undefined, 'part passphrase']) {
    const label = passphrase ? 'encrypted' : 'plain'
    const sink = createFsSink(join(root, `repo-${label}`))
    // 16 KiB chunks: x.bin (100 000 bytes) spans seven, each written by whichever worker decoded it.
    const repo = await initRepository(sink, { passphrase, pipeline: { pool, chunkSize: 16 * 1024 } })
    t.teardown(() => repo.close())
    const ref = await repo.writeObject(dataKey('clickhouse', `parts/${label}`), () => PartReader.open(src))
    t.ok(ref.chunks > 6, `${ref.chunks} chunks`)
    const out = join(root, `unpacked-${label}`)
    t.same(await repo.unpackObject(ref, out), ['checksums.txt', 'empty.bin', 'sub dir/n%1.mrk', 'x.bin'])
    for (const f of ['checksums.txt', 'empty.bin', join('sub dir', 'n%1.mrk'), 'x.bin']) t.same(await readFile(join(out, f)), await readFile(join(src, f)), `${label}: ${f}`)

    const stored = join(root, `repo-${label}`, ...ref.key.split('/'))
    const bytes = await readFile(stored)
    bytes[Math.floor(bytes.length / 2)]! ^= 1
    await writeFile(stored, bytes)
    await t.rejects(repo.unpackObject(ref, join(root, `damaged-${label}`)), { code: passphrase ? 'TM_ERR_DECRYPT' : /TM_ERR_(INTEGRITY|DECRYPT)/ }, `${label}: a damaged byte is refused`)
  }
})
