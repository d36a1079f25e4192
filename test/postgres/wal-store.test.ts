/**
 * The WAL archive's storage on a real (local directory) repository, encrypted:
 * idempotent stores by name, conflicting history files, the newest partial upload,
 * and what wal-fetch finds and writes.
 */
import t from 'tap'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isTidemarkError } from '../../src/errors.ts'
import { initRepository, type Repository } from '../../src/engine/repository/index.ts'
import { fetchTempPath, fetchWal } from '../../src/engine/postgres/wal-fetch.ts'
import { partialKey, walDataKey } from '../../src/engine/postgres/wal-format.ts'
import { WalStore, listArchive } from '../../src/engine/postgres/wal-store.ts'
import { createFsSink } from '../../src/sinks/fs.ts'
import type { Teardown } from '../harness/postgres.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'

const MiB = 1 << 20
const SEG = '000000010000000000000003'
const NEXT = '000000010000000000000004'

async function setup(t: Teardown): Promise<{ dir: string; repo: Repository; store: WalStore }> {
  const dir = await tempDir('tidemark-walstore-')
  const repo = await initRepository(createFsSink(join(dir, 'repo')), { passphrase: 'wal-store-test-1', pipeline: { threads: 1 } })
  t.teardown(async () => {
    await repo.close()
    await removeTempDir(dir)
  })
  return { dir, repo, store: new WalStore(repo, '7312') }
}

const segment = (fill: number) => Buffer.alloc(MiB, fill)

t.test('a completed file is stored once by name; storing it again is a no-op', async (t) => {
  const { dir, store } = await setup(t)
  await writeFile(join(dir, SEG), segment(1))
  const first = await store.storeFile(SEG, join(dir, SEG))
  t.equal(first.reused, false)
  t.equal(first.record.ref.key, walDataKey('7312', SEG))
  t.equal(first.record.ref.codec, 'zstd+aes256gcm')
  t.ok(await store.has(SEG))
  const again = await store.storeFile(SEG, join(dir, SEG))
  t.equal(again.reused, true, 'a segment streamed twice (pg_receivewal restarted) is not stored twice')
  t.same(again.record, first.record)
  const listing = (await listArchive(store.repo)).get('7312')?.get(1)
  t.same(listing?.segments, [SEG])
})

t.test('a history file archived with other content is refused', async (t) => {
  const { dir, store } = await setup(t)
  await writeFile(join(dir, 'h'), '1\t0/5000100\tbefore 2026-11-28 09:40:00+00\n')
  await store.storeFile('00000002.history', join(dir, 'h'))
  t.equal((await store.storeFile('00000002.history', join(dir, 'h'))).reused, true, 'the same content again is fine')
  await writeFile(join(dir, 'h2'), '1\t0/7000000\tno recovery target specified\n')
  await t.rejects(store.storeFile('00000002.history', join(dir, 'h2')), { code: 'TM_ERR_REPO_CORRUPT', message: /promoted onto timeline 2/ })
})

t.test('the open segment: newest upload wins, older uploads are deleted, coverage never regresses', async (t) => {
  const { dir, repo, store } = await setup(t)
  const a = await store.storePartial({ timeline: 1, segment: SEG, data: segment(2), coversLsn: 3n * BigInt(MiB) + 100n })
  t.equal(a.uploaded, true)
  const same = await store.storePartial({ timeline: 1, segment: SEG, data: segment(2), coversLsn: 3n * BigInt(MiB) + 100n })
  t.equal(same.uploaded, false, 'unchanged bytes and coverage: nothing uploaded')
  const b = await store.storePartial({ timeline: 1, segment: NEXT, data: segment(3), coversLsn: 4n * BigInt(MiB) + 10n })
  t.equal((await store.partialRecord(1))?.segment, NEXT)
  await t.rejects(repo.sink.head(a.record.ref.key), 'the replaced upload is deleted')
  const older = await store.storePartial({ timeline: 1, segment: SEG, data: segment(4), coversLsn: 3n * BigInt(MiB) + 900n })
  t.equal(older.uploaded, false, 'an upload of an earlier segment never replaces a later one')
  t.same(older.record, b.record)
  t.ok(await repo.sink.head(partialKey('7312', 1)))

  // wal-fetch: the partial serves its segment only, and only while the segment is not complete.
  const out = join(dir, 'RECOVERYXLOG')
  t.equal((await fetchWal(store, NEXT, out))?.source, 'partial')
  t.same(await readFile(out), segment(3))
  t.equal(await fetchWal(store, SEG, out), undefined, 'no complete copy and the partial is of another segment: missing')
  await writeFile(join(dir, NEXT), segment(5))
  await store.storeFile(NEXT, join(dir, NEXT))
  t.equal((await fetchWal(store, NEXT, out))?.source, 'segment', 'the complete segment wins over the partial')
  t.same(await readFile(out), segment(5))
  t.equal(await fetchWal(store, '00000009.history', out), undefined)
  t.equal(await fetchWal(store, 'RECOVERYHISTORY', out), undefined, 'a name that is no WAL file is missing, not an error')
  t.notOk((await readdir(dir)).some((n) => n.includes('.tidemark-')), 'no temp file left')
})

t.test('a corrupt object fails the fetch and leaves neither the file nor a temp file', async (t) => {
  const { dir, store } = await setup(t)
  await writeFile(join(dir, SEG), segment(6))
  await store.storeFile(SEG, join(dir, SEG))
  const stored = join(dir, 'repo', walDataKey('7312', SEG))
  const bytes = await readFile(stored)
  bytes[bytes.length - 20] = (bytes[bytes.length - 20] as number) ^ 0xff
  await writeFile(stored, bytes)
  const out = join(dir, 'RECOVERYXLOG')
  try {
    await fetchWal(store, SEG, out)
    t.fail('a corrupt object was fetched')
  } catch (err) {
    t.ok(isTidemarkError(err), `refused: ${(err as Error).message}`)
  }
  await t.rejects(readFile(out), { code: 'ENOENT' })
  await t.rejects(readFile(fetchTempPath(out)), { code: 'ENOENT' })
})

t.test('read-ahead: a fetch also fetches the following complete segments; the next call only renames', async (t) => {
  const { dir, repo, store } = await setup(t)
  const names = ['000000010000000000000003', '000000010000000000000004', '000000010000000000000005', '000000010000000000000006']
  for (const [i, n] of names.entries()) {
    await writeFile(join(dir, n), segment(10 + i))
    await store.storeFile(n, join(dir, n))
  }
  // The newest segment exists only as a partial upload: it must never be read ahead.
  await store.storePartial({ timeline: 1, segment: '000000010000000000000007', data: segment(20), coversLsn: 7n * BigInt(MiB) + 5n })
  const spool = join(dir, 'spool')
  const out = join(dir, 'RECOVERYXLOG')
  const prefetch = { dir: spool, count: 8 }
  t.equal((await fetchWal(store, names[0]!, out, { prefetch }))?.source, 'segment')
  t.same(await readFile(out), segment(10))
  t.same((await readdir(spool)).sort(), names.slice(1), 'the complete segments after it, not the partial')
  // The repository's objects are gone: the next fetches are served from the spool alone.
  await repo.sink.delete(names.slice(1).map((n) => walDataKey('7312', n)))
  t.equal((await fetchWal(store, names[1]!, out, { prefetch }))?.source, 'prefetched')
  t.same(await readFile(out), segment(11))
  t.notOk((await readdir(spool)).includes(names[1]!), 'taken, not copied')
  t.equal((await fetchWal(store, '000000010000000000000007', out, { prefetch }))?.source, 'partial')
  t.same(await readFile(out), segment(20))
})
