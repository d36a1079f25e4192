import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Readable } from 'node:stream'
import { createFsSink } from '../../src/sinks/fs.ts'
import { listAll, type Sink } from '../../src/sinks/sink.ts'
import { manualClock } from '../../src/engine/clock.ts'
import { createPipelinePool } from '../../src/engine/pipeline/index.ts'
import { initRepository, openRepository, dataKey, newBackupId, readAll } from '../../src/engine/repository/index.ts'
import { acquireLease } from '../../src/engine/repository/lease.ts'
import { tempDir, removeTempDir } from '../harness/proc.ts'
import { startS3rver } from '../harness/s3rver.ts'
import { openSink } from '../../src/sinks/url.ts'
import { randomSource, testManifest } from './fixtures.ts'

const run = promisify(execFile)
const here = import.meta.dirname
const pool = createPipelinePool({ threads: 2 })
t.teardown(() => pool.destroy())
const pipeline = { pool, chunkSize: 64 * 1024 }

async function newRoot(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  return dir
}

async function keys(sink: Sink): Promise<string[]> {
  const out: string[] = []
  for await (const o of listAll(sink, '')) out.push(`${o.key}:${o.size}`)
  return out
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

for (const passphrase of [undefined, 'correct horse battery staple']) {
  const label = passphrase ? 'encrypted' : 'plain'

  t.test(`${label}: write objects and a manifest; another process reads them back`, async (t) => {
    const root = await newRoot(t)
    const repo = await initRepository(createFsSink(root), { passphrase, pipeline })
    t.equal(repo.codec, passphrase ? 'zstd+aes256gcm' : 'zstd')
    const a = randomSource(300_000)
    const b = randomSource(0)
    const refA = await repo.writeObject(dataKey('clickhouse', 'db/t/p1-aaaa'), a.stream)
    const refB = await repo.writeObject(dataKey('clickhouse', 'db/t/p2-bbbb'), b.stream)
    t.equal(refA.rawSize, 300_000)
    t.equal(refA.chunks, Math.ceil(300_000 / (64 * 1024)))
    t.equal(refB.rawSize, 0)
    t.equal(refA.reused, false)
    const id = newBackupId('clickhouse', new Date())
    await repo.commitManifest(testManifest(id, [refA, refB]))
    await repo.close()

    const { stdout } = await run('node', [join(here, 'child-reader.ts'), root, passphrase ?? ''])
    const out = JSON.parse(stdout)
    t.equal(out.info.manifests.clickhouse, 1)
    t.equal(out.info.encryption, passphrase ? 'aes-256-gcm' : 'none')
    t.same(out.backups, [{ id, hashes: [a.sha256, b.sha256] }])
  })

  t.test(`${label}: an object already stored is referenced, not uploaded again`, async (t) => {
    const root = await newRoot(t)
    const repo = await initRepository(createFsSink(root), { passphrase, pipeline })
    t.teardown(() => repo.close())
    const src = randomSource(100_000)
    const key = dataKey('clickhouse', 'db/t/p-fp1')
    const first = await repo.writeObject(key, src.stream)
    let opened = 0
    const again = await repo.writeObject(key, () => {
      opened++
      return src.stream()
    }, { known: first })
    t.equal(opened, 0, 'the source is not even opened')
    t.equal(again.reused, true)
    t.same({ ...again, reused: false }, first)
  })
}

t.test('a wrong passphrase is refused before anything is read or written', async (t) => {
  const root = await newRoot(t)
  const sink = createFsSink(root)
  const repo = await initRepository(sink, { passphrase: 'right one', pipeline })
  await repo.writeObject(dataKey('clickhouse', 'x'), Readable.from([Buffer.from('hello')]))
  await repo.close()
  const before = await keys(sink)
  await t.rejects(openRepository(createFsSink(root), { passphrase: 'wrong one', pipeline }), { code: 'TM_ERR_REPO_KEY', message: /wrong encryption key/ })
  await t.rejects(openRepository(createFsSink(root), { pipeline }), { code: 'TM_ERR_REPO_KEY', message: /is encrypted/ })
  t.same(await keys(sink), before, 'nothing changed')
})

t.test('a key given for an unencrypted repository is refused', async (t) => {
  const root = await newRoot(t)
  await (await initRepository(createFsSink(root), { pipeline })).close()
  await t.rejects(openRepository(createFsSink(root), { passphrase: 'p', pipeline }), { code: 'TM_ERR_REPO_KEY', message: /not encrypted/ })
})

t.test('format checks', async (t) => {
  const root = await newRoot(t)
  await t.rejects(openRepository(createFsSink(root), { pipeline }), { code: 'TM_ERR_REPO_NOT_FOUND' })
  await (await initRepository(createFsSink(root), { pipeline })).close()
  await t.rejects(initRepository(createFsSink(root), { pipeline }), { code: 'TM_ERR_REPO_EXISTS' })
  const cfgPath = join(root, 'config.json')
  const cfg = JSON.parse(await readFile(cfgPath, 'utf8'))
  await writeFile(cfgPath, JSON.stringify({ ...cfg, version: 99 }))
  await t.rejects(openRepository(createFsSink(root), { pipeline }), { code: 'TM_ERR_REPO_FORMAT', message: /version 99.*upgrade tidemark/ })
  await writeFile(cfgPath, JSON.stringify({ ...cfg, format: 'something-else' }))
  await t.rejects(openRepository(createFsSink(root), { pipeline }), { code: 'TM_ERR_REPO_FORMAT' })
  await writeFile(cfgPath, '{not json')
  await t.rejects(openRepository(createFsSink(root), { pipeline }), { code: 'TM_ERR_REPO_CORRUPT' })
})

t.test('a manifest is never committed over missing data', async (t) => {
  const root = await newRoot(t)
  const repo = await initRepository(createFsSink(root), { pipeline })
  t.teardown(() => repo.close())
  const ref = await repo.writeObject(dataKey('clickhouse', 'gone'), Readable.from([Buffer.from('data')]))
  await repo.sink.delete([ref.key])
  const id = newBackupId('clickhouse', new Date())
  await t.rejects(repo.commitManifest(testManifest(id, [ref])), { code: 'TM_ERR_REPO_CORRUPT', message: /missing/ })
  t.same(await repo.listManifestIds('clickhouse'), [])
  await t.rejects(repo.readManifest('clickhouse', id), { code: 'TM_ERR_MANIFEST_NOT_FOUND' })
})

t.test('checks started early: commit awaits them, still refuses an object found missing, and checks what they did not cover', async (t) => {
  const root = await newRoot(t)
  const repo = await initRepository(createFsSink(root), { pipeline })
  t.teardown(() => repo.close())
  const kept = await repo.writeObject(dataKey('clickhouse', 'early-kept'), Readable.from([Buffer.from('kept')]))
  const gone = await repo.writeObject(dataKey('clickhouse', 'early-gone'), Readable.from([Buffer.from('gone')]))
  const late = await repo.writeObject(dataKey('clickhouse', 'early-late'), Readable.from([Buffer.from('late')]))

  const ok = repo.objectChecks()
  ok.add(kept)
  t.equal(await ok.result(kept), true)
  t.equal(ok.result({ ...kept, size: kept.size + 1 }), undefined, 'a check is only taken over for the same size')
  t.equal(ok.result(late), undefined, 'nor for a key it was not started for')
  const first = newBackupId('clickhouse', new Date('2026-01-01T00:00:00Z'))
  await repo.commitManifest(testManifest(first, [kept, late]), ok)
  t.same(await repo.listManifestIds('clickhouse'), [first])

  await repo.sink.delete([gone.key])
  const missing = repo.objectChecks()
  missing.add(gone)
  await missing.settled()
  const second = newBackupId('clickhouse', new Date('2026-01-01T00:00:05Z'))
  await t.rejects(repo.commitManifest(testManifest(second, [kept, gone]), missing), { code: 'TM_ERR_REPO_CORRUPT', message: /early-gone is missing/ })

  // Deleted after its early check found it: the commit trusts that check (the lease keeps prune out), so
  // the uncovered object is what it checks again.
  await repo.sink.delete([late.key])
  const partial = repo.objectChecks()
  partial.add(kept)
  await t.rejects(repo.commitManifest(testManifest(second, [kept, late]), partial), { code: 'TM_ERR_REPO_CORRUPT', message: /early-late is missing/ })
  t.same(await repo.listManifestIds('clickhouse'), [first], 'nothing committed over missing data')
})

t.test('journals make an unfinished backup\'s objects known; commit removes the journal', async (t) => {
  const root = await newRoot(t)
  const repo = await initRepository(createFsSink(root), { pipeline })
  t.teardown(() => repo.close())
  const ref = await repo.writeObject(dataKey('clickhouse', 'j1'), Readable.from([Buffer.from('journaled')]))
  const failed = newBackupId('clickhouse', new Date())
  await repo.writeJournal('clickhouse', failed, [ref])
  const known = await repo.knownObjects('clickhouse')
  t.same(known.get(ref.key), { ref, committed: false }, 'known from the journal, not committed')
  await repo.commitManifest(testManifest(failed, [ref]))
  t.same(await readdir(join(root, 'journal', 'clickhouse')).catch(() => []), [])
})

t.test('known objects come from the newest committed manifest, not from every older one', async (t) => {
  const root = await newRoot(t)
  const repo = await initRepository(createFsSink(root), { pipeline })
  t.teardown(() => repo.close())
  const old = await repo.writeObject(dataKey('clickhouse', 'k-old'), Readable.from([Buffer.from('old')]))
  const kept = await repo.writeObject(dataKey('clickhouse', 'k-kept'), Readable.from([Buffer.from('kept')]))
  await repo.commitManifest(testManifest(newBackupId('clickhouse', new Date('2026-01-01T00:00:00Z')), [old, kept]))
  await repo.commitManifest(testManifest(newBackupId('clickhouse', new Date('2026-01-01T00:00:05Z')), [kept]))
  const known = await repo.knownObjects('clickhouse')
  t.same([...known.keys()], [kept.key], 'an object the newest backup no longer lists is not offered for reuse')
  t.same(known.get(kept.key), { ref: kept, committed: true })
})

t.test('reading detects a corrupted stored object', async (t) => {
  const root = await newRoot(t)
  const repo = await initRepository(createFsSink(root), { pipeline })
  t.teardown(() => repo.close())
  const ref = await repo.writeObject(dataKey('clickhouse', 'c1'), randomSource(200_000).stream)
  const path = join(root, ref.key)
  const bytes = await readFile(path)
  const at = Math.floor(bytes.length / 2)
  bytes.writeUInt8(bytes.readUInt8(at) ^ 0x40, at)
  await writeFile(path, bytes)
  await t.rejects(readAll(await repo.readObject(ref)), { code: /TM_ERR_(INTEGRITY|DECRYPT)/ })
})

t.test('the writer lease: a second writer is refused while the first holds it', async (t) => {
  const root = await newRoot(t)
  await (await initRepository(createFsSink(root), { pipeline })).close()
  const child = spawn('node', [join(here, 'child-locker.ts'), root], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => child.kill('SIGKILL'))
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => b.toString().includes('locked') && resolve())
    child.once('exit', (code) => reject(new Error(`locker exited ${code}`)))
  })
  const repo = await openRepository(createFsSink(root), { pipeline, leaseTtlSeconds: 5 })
  t.teardown(() => repo.close())
  await t.rejects(repo.lock('second writer'), { code: 'TM_ERR_REPO_LOCKED', message: new RegExp(`test writer by .* pid ${child.pid}`) })
  child.stdin.end()
  await new Promise((r) => child.once('exit', r))
  const lease = await repo.lock('second writer')
  t.equal(lease.record.purpose, 'second writer')
  await lease.release()
  t.same(await keys(createFsSink(root)).then((ks) => ks.filter((k) => k.startsWith('locks/'))), [], 'release removes the lock')
})

t.test('racing writers: exactly one wins', async (t) => {
  const root = await newRoot(t)
  await (await initRepository(createFsSink(root), { pipeline })).close()
  const repos = await Promise.all([0, 1, 2].map(() => openRepository(createFsSink(root), { pipeline })))
  t.teardown(() => Promise.all(repos.map((r) => r.close())))
  const results = await Promise.allSettled(repos.map((r, i) => r.lock(`writer ${i}`)))
  const won = results.filter((r) => r.status === 'fulfilled')
  t.equal(won.length, 1, 'one writer holds the lease')
  for (const r of results) if (r.status === 'rejected') t.equal(r.reason.code, 'TM_ERR_REPO_LOCKED')
  await (won[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release()
})

/** A sink whose puts wait until `letGo`; `parked` resolves at the first put. */
function parkedPuts(sink: Sink): { sink: Sink; parked: Promise<void>; letGo(): void } {
  const parked = Promise.withResolvers<void>()
  const held = Promise.withResolvers<void>()
  const proxy = new Proxy(sink, {
    get(target, p) {
      if (p === 'put') {
        return async (...args: Parameters<Sink['put']>) => {
          parked.resolve()
          await held.promise
          return target.put(...args)
        }
      }
      const v = Reflect.get(target, p) as unknown
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
  return { sink: proxy, parked: parked.promise, letGo: () => held.resolve() }
}

t.test('a writer whose clock read earlier but who wrote later does not share the lease with the one that won', async (t) => {
  const root = await newRoot(t)
  const sink = createFsSink(root)
  const early = () => manualClock('2026-11-28T10:00:00Z')
  const late = () => manualClock('2026-11-28T10:00:01Z')
  const lockCount = async () => (await keys(sink)).filter((k) => k.startsWith('locks/')).length

  // B reads its clock first and lists no lock, but its lock object reaches the store
  // only after A has written, listed and won. B's lock then looks older than A's.
  const slowB = parkedPuts(sink)
  const b = acquireLease(slowB.sink, { clock: early(), ttlMs: 60_000, purpose: 'b', contentionWaitMs: 400 })
  await slowB.parked
  const a = await acquireLease(sink, { clock: late(), ttlMs: 60_000, purpose: 'a' })
  slowB.letGo()
  // B sees only a younger lock: it waits for it to go, then withdraws and refuses.
  await t.rejects(b, { code: 'TM_ERR_REPO_LOCKED', message: /: a by / })
  t.equal(await lockCount(), 1, "only the winner's lock is left")
  await a.release()

  // The same race, but the winner releases while the other waits: the lease passes on.
  const slowD = parkedPuts(sink)
  let dSettled = false
  const d = acquireLease(slowD.sink, { clock: early(), ttlMs: 60_000, purpose: 'd', contentionWaitMs: 10_000 }).finally(() => (dSettled = true))
  await slowD.parked
  const e = await acquireLease(sink, { clock: late(), ttlMs: 60_000, purpose: 'e' })
  slowD.letGo()
  await new Promise((r) => setTimeout(r, 300))
  t.notOk(dSettled, 'the waiting writer does not take the lease while the winner holds it')
  t.equal(await lockCount(), 2)
  await e.release()
  const lease = await d
  t.equal(lease.record.purpose, 'd')
  await lease.release()
  t.equal(await lockCount(), 0)
})

t.test('an expired lease does not block; a live one is refreshed', async (t) => {
  const root = await newRoot(t)
  const clock = manualClock('2026-11-28T10:00:00Z')
  await (await initRepository(createFsSink(root), { pipeline })).close()
  const a = await openRepository(createFsSink(root), { pipeline, clock, leaseTtlSeconds: 60 })
  const b = await openRepository(createFsSink(root), { pipeline, clock, leaseTtlSeconds: 60 })
  t.teardown(async () => {
    await a.close()
    await b.close()
  })
  const lease = await a.lock('a')
  clock.advance(30_000)
  await t.rejects(b.lock('b'), { code: 'TM_ERR_REPO_LOCKED' })
  // The holder died without releasing: after its expiry the lock no longer counts.
  clock.advance(61_000)
  const second = await b.lock('b')
  t.equal(second.record.purpose, 'b')
  await second.release()
  await lease.release()
})

t.test('sha256 in the manifest is the sha256 of the stored bytes', async (t) => {
  const root = await newRoot(t)
  const repo = await initRepository(createFsSink(root), { pipeline })
  t.teardown(() => repo.close())
  const ref = await repo.writeObject(dataKey('postgres', 'wal/000000010000000000000001'), randomSource(150_000).stream)
  const stored = await readFile(join(root, ref.key))
  t.equal(stored.length, ref.size)
  t.equal(sha(stored), ref.sha256)
})

t.test('on S3 (s3rver): a repository written through one sink is read through another; the lease holds', async (t) => {
  const s3 = await startS3rver(t)
  const settings = { endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } }
  const url = `s3://${s3.bucket}/backups/prod`
  const writer = await initRepository(openSink(url, settings), { passphrase: 'pw', pipeline })
  const src = randomSource(700_000)
  const ref = await writer.writeObject(dataKey('clickhouse', 'db/t/p1'), src.stream)
  const id = newBackupId('clickhouse', new Date())
  await writer.commitManifest(testManifest(id, [ref]))
  const lease = await writer.lock('writer one')

  const reader = await openRepository(openSink(url, settings), { passphrase: 'pw', pipeline })
  t.teardown(() => reader.close())
  t.same(await reader.listManifestIds('clickhouse'), [id])
  const m = await reader.readManifest('clickhouse', id)
  t.equal(sha(await readAll(await reader.readObject(m.objects[0]!))), src.sha256)
  await t.rejects(reader.lock('writer two'), { code: 'TM_ERR_REPO_LOCKED', message: /writer one/ })
  await lease.release()
  await writer.close()
  await (await reader.lock('writer two')).release()
})
