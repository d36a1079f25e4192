import t from 'tap'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { TarScan, parseManifestWalRanges, tarNumber, type TarEntry } from '../../src/engine/postgres/tar-scan.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { PG_BIN, startPostgres, type Teardown } from '../harness/postgres.ts'
import { formatLsn } from '../../src/engine/postgres/wal.ts'

const LABEL = 'START WAL LOCATION: 0/700028 (file 000000010000000000000007)\nSTART TIME: 2026-11-28 11:21:27 UTC\n'
const MANIFEST = `{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n${'{ "Path": "base/1/1259", "Size": 8192 },\n'.repeat(3000)}],\n"WAL-Ranges": [\n{ "Timeline": 1, "Start-LSN": "0/700028", "End-LSN": "0/700100" }\n],\n"Manifest-Checksum": "00"}\n`

/** A real ustar archive made by tar(1): a label, a 1 MiB + 3 byte file, an empty file, a directory, a manifest. */
async function makeTar(t: Teardown): Promise<Buffer> {
  const dir = await tempDir('tidemark-tar-')
  t.teardown(() => removeTempDir(dir))
  await writeFile(join(dir, 'backup_label'), LABEL)
  await mkdir(join(dir, 'base'))
  await writeFile(join(dir, 'base', 'big'), randomBytes((1 << 20) + 3))
  await writeFile(join(dir, 'empty'), '')
  await writeFile(join(dir, 'backup_manifest'), MANIFEST)
  return execFileSync('tar', ['--format=ustar', '-C', dir, '-cf', '-', 'backup_label', 'base', 'empty', 'backup_manifest'], { maxBuffer: 1 << 24 })
}

function chunks(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size))
  return out
}

async function scan(input: Buffer[], scanner = new TarScan()): Promise<{ out: Buffer; scanner: TarScan; entries: TarEntry[] }> {
  const parts: Buffer[] = []
  const entries: TarEntry[] = []
  scanner.on('entry', (e: TarEntry) => entries.push(e))
  await pipeline(Readable.from(input), scanner, new Writable({ write(c, _e, cb) { parts.push(c); cb() } }))
  return { out: Buffer.concat(parts), scanner, entries }
}

t.test('passes the archive through byte for byte whatever the chunking, and finds label, manifest and end', async (t) => {
  const tar = await makeTar(t)
  for (const size of [1, 100, 511, 512, 513, 4096, 65536, tar.length]) {
    const { out, scanner, entries } = await scan(chunks(tar, size))
    t.ok(out.equals(tar), `identical output with ${size}-byte chunks`)
    const r = scanner.result()
    t.equal(r.backupLabel, LABEL, 'backup_label content')
    t.same(r.walRanges, [{ timeline: 1, startLsn: 0x700028n, endLsn: 0x700100n }], 'WAL ranges from the manifest tail')
    t.equal(r.bytes, tar.length)
    t.ok(r.endOffset !== undefined && r.endOffset <= tar.length && r.endOffset % 512 === 0, 'end marker seen')
    t.same(entries.map((e) => e.name), ['backup_label', 'base/', 'base/big', 'empty', 'backup_manifest'])
  }
})

t.test('a truncated archive fails the stream', async (t) => {
  const tar = await makeTar(t)
  const end = (await scan([tar])).scanner.result().endOffset as number
  // tar(1) pads to 10 KiB records: only cuts before the end-of-archive marker truncate.
  for (const cut of [100, 512, 700_000, end - 1024, end - 512, end - 1]) {
    await t.rejects(scan(chunks(tar.subarray(0, cut), 4096)), { code: 'TM_ERR_POSTGRES_FORMAT', message: /truncated/ }, `cut at ${cut}`)
  }
})

t.test('a corrupt header fails the stream', async (t) => {
  const bad = Buffer.from(await makeTar(t))
  // Block 0 is the label's header, block 1 its data, block 2 the next header.
  bad[1024 + 5] = (bad[1024 + 5] as number) ^ 0x01
  await t.rejects(scan([bad]), { code: 'TM_ERR_POSTGRES_FORMAT', message: /checksum/ })
})

t.test('beforeEnd can fail the stream instead of ending it', async (t) => {
  const tar = await makeTar(t)
  const scanner = new TarScan({ beforeEnd: async (r) => { if (r.backupLabel) throw new Error('tool exited with code 1') } })
  await t.rejects(scan([tar], scanner), /tool exited with code 1/)
})

t.test('tar numbers and manifest ranges', async (t) => {
  t.equal(tarNumber(Buffer.from('00000001750\0')), 1000)
  t.equal(tarNumber(Buffer.from('        \0   ')), 0)
  t.equal(tarNumber(Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0])), 2 * 2 ** 32, 'base-256 for sizes of 8 GiB and more')
  t.throws(() => tarNumber(Buffer.from('12345678x\0\0\0')), { code: 'TM_ERR_POSTGRES_FORMAT' })
  t.same(parseManifestWalRanges('"WAL-Ranges": [\n{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/3000010" },\n{ "Timeline": 2, "Start-LSN": "0/3000010", "End-LSN": "0/3000100" }\n],'), [
    { timeline: 1, startLsn: 0x2000028n, endLsn: 0x3000010n },
    { timeline: 2, startLsn: 0x3000010n, endLsn: 0x3000100n },
  ])
  t.equal(parseManifestWalRanges('{"Files": []}'), undefined)
})

t.test('real pg_basebackup -Ft -D - -X none output passes through unchanged', async (t) => {
  const pg = await startPostgres(t)
  const raw = execFileSync(join(PG_BIN, 'pg_basebackup'), ['-D', '-', '-Ft', '-X', 'none', '-c', 'fast', '-d', pg.superuserUrl], { maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] })
  const dir = await tempDir('tidemark-tar-')
  t.teardown(() => removeTempDir(dir))
  await writeFile(join(dir, 'base.tar'), raw)
  const label = execFileSync('tar', ['-xOf', join(dir, 'base.tar'), 'backup_label']).toString()
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', join(dir, 'base.tar'), 'backup_manifest'], { maxBuffer: 1 << 24 }).toString()) as { 'WAL-Ranges': Array<{ Timeline: number; 'Start-LSN': string; 'End-LSN': string }> }
  for (const size of [65536, 1000]) {
    const { out, scanner } = await scan(chunks(raw, size))
    t.ok(out.equals(raw), `identical bytes with ${size}-byte chunks`)
    const r = scanner.result()
    t.equal(r.backupLabel, label, 'the label tar(1) extracts')
    t.same(r.walRanges?.map((w) => [w.timeline, formatLsn(w.startLsn), formatLsn(w.endLsn)]), manifest['WAL-Ranges'].map((w) => [w.Timeline, w['Start-LSN'], w['End-LSN']]), 'the manifest\'s WAL range')
    t.equal(r.endOffset, raw.length, 'pg_basebackup writes nothing after the end-of-archive marker')
  }
})
