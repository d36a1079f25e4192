import t from 'tap'
import { createHash } from 'node:crypto'
import { readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { initRepository, manifestKey, type ManifestBase, type Repository } from '../../src/engine/repository/index.ts'
import { verify } from '../../src/engine/verify.ts'
import { createFsSink } from '../../src/sinks/fs.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { buildOverlapping, CHUNK, testPool, type Built } from '../replicate/helpers.ts'

const pool = testPool()
t.teardown(() => pool.destroy())

async function fixture(t: { teardown(fn: () => unknown): void }, passphrase?: string): Promise<{ root: string; repo: Repository; built: Built }> {
  const root = await tempDir()
  t.teardown(() => removeTempDir(root))
  const repo = await initRepository(createFsSink(root), { passphrase, pipeline: { pool, chunkSize: CHUNK } })
  t.teardown(() => repo.close())
  return { root, repo, built: await buildOverlapping(repo, new Date()) }
}

const file = (root: string, key: string) => join(root, ...key.split('/'))
const holders = (b: Built, key: string) => b.manifests.filter((m) => m.objects.some((o) => o.key === key)).map((m) => m.id).sort()

t.test('a sound repository verifies clean, with and without reading', async (t) => {
  const { repo, built } = await fixture(t, 'verify passphrase 1')
  const quick = await verify(repo)
  t.match(quick, { ok: true, read: false, problems: [], objects: 7, bytesRead: 0 })
  t.equal(quick.backups.length, 4)
  const full = await verify(repo, { read: true, parallelism: 3 })
  t.match(full, { ok: true, read: true, problems: [] })
  const raw = Object.values(built.refs).reduce((a, r) => a + r.rawSize, 0)
  t.equal(full.bytesRead, raw, 'every object was read through')
  const one = await verify(repo, { ids: [built.manifests[1]!.id], read: true })
  t.same(one.backups.map((b) => b.id), [built.manifests[1]!.id])
  t.equal(one.objects, 2)
})

t.test('a deleted object, a truncated object and a flipped byte are each named with their backups', async (t) => {
  const { root, repo, built } = await fixture(t)
  const { b, c, d } = built.refs as Record<string, { key: string; size: number }>
  await rm(file(root, b!.key))
  await truncate(file(root, c!.key), c!.size - 1)
  const bytes = await readFile(file(root, d!.key))
  bytes[Math.floor(bytes.length / 2)]! ^= 0x40
  await writeFile(file(root, d!.key), bytes)

  const quick = await verify(repo)
  t.equal(quick.ok, false)
  const seen = (r: typeof quick) => r.problems.map((p) => `${p.kind} ${p.key} ${p.backupId}`).sort()
  const expect = (kind: string, key: string) => holders(built, key).map((id) => `${kind} ${key} ${id}`)
  t.same(seen(quick), [...expect('missing', b!.key), ...expect('size', c!.key)].sort(), 'without --read: missing and truncated; the flipped byte keeps its size')
  t.match(quick.problems.find((p) => p.kind === 'size')?.message, `${c!.size - 1} bytes; the manifest records ${c!.size}`)

  const full = await verify(repo, { read: true })
  t.same(seen(full), [...expect('missing', b!.key), ...expect('size', c!.key), ...expect('content', d!.key)].sort())
  const flipped = full.problems.find((p) => p.kind === 'content')!
  t.equal(flipped.code, 'TM_ERR_INTEGRITY')
  t.match(flipped.message, /corrupt|sha256/)
  const pg = full.backups.find((x) => x.source === 'postgres')
  t.equal(pg?.problems, 0, 'the backup that shares nothing with them is fine')
})

t.test('a chunk that no longer decrypts is found by --read', async (t) => {
  const { root, repo, built } = await fixture(t, 'verify passphrase 2')
  const e = built.refs.e!
  const path = file(root, e.key)
  const bytes = await readFile(path)
  bytes[bytes.length - 20]! ^= 0x01
  await writeFile(path, bytes)
  // Make the manifest agree with the damaged bytes, so only authentication can tell.
  const m = built.manifests.find((x) => x.objects.some((o) => o.key === e.key))!
  const doctored: ManifestBase = { ...m, objects: m.objects.map((o) => (o.key === e.key ? { ...o, sha256: createHash('sha256').update(bytes).digest('hex') } : o)) }
  await writeFile(file(root, manifestKey(m.source, m.id)), JSON.stringify(doctored))
  const report = await verify(repo, { ids: [m.id], read: true })
  t.same(report.problems.map((p) => [p.key, p.code]), [[e.key, 'TM_ERR_DECRYPT']])
})

t.test('an unreadable manifest is a problem of its backup; the others are still checked', async (t) => {
  const { root, repo, built } = await fixture(t)
  const m = built.manifests[0]!
  await writeFile(file(root, manifestKey(m.source, m.id)), '{"truncated": ')
  const report = await verify(repo)
  t.equal(report.ok, false)
  t.same(report.problems.map((p) => [p.backupId, p.kind, p.key, p.code]), [[m.id, 'manifest', manifestKey(m.source, m.id), 'TM_ERR_REPO_CORRUPT']])
  t.equal(report.backups.length, 4)
  t.equal(report.backups.filter((b) => b.problems === 0).length, 3)
})

t.test('an unknown backup id is TM_ERR_MANIFEST_NOT_FOUND', async (t) => {
  const { repo } = await fixture(t)
  await t.rejects(verify(repo, { ids: ['20200101T000000Z-ch-0000'] }), { code: 'TM_ERR_MANIFEST_NOT_FOUND', message: /no clickhouse backup with id 20200101T000000Z-ch-0000/ })
  await t.rejects(verify(repo, { ids: ['nonsense'] }), { code: 'TM_ERR_MANIFEST_NOT_FOUND', message: /not a backup id/ })
})
