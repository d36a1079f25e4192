import t from 'tap'
import { initRepository, openRepository, readAll } from '../../src/engine/repository/index.ts'
import { replicate, replicationLag } from '../../src/engine/replicate.ts'
import { verify } from '../../src/engine/verify.ts'
import { isTidemarkError, type TidemarkError } from '../../src/errors.ts'
import { withFaults } from '../../src/sinks/faulty.ts'
import { startS3rver } from '../harness/s3rver.ts'
import { buildOverlapping, CHUNK, distinct, keysOf, rawSha, s3Sink, snapshot, testPool } from './helpers.ts'

const pool = testPool()
t.teardown(() => pool.destroy())
const passphrase = 'replica passphrase 7d1e'
const opts = { passphrase, pipeline: { pool, chunkSize: CHUNK } }

t.test('replication to a second s3rver: complete, verifiable, and readable with the primary gone', async (t) => {
  const [a, b] = await Promise.all([startS3rver(t), startS3rver(t)])
  const primary = await initRepository(s3Sink(a, 'tm'), opts)
  t.teardown(() => primary.close())
  const now = new Date()
  const built = await buildOverlapping(primary, now)
  const all = distinct(built.manifests)
  const target = { name: 'dr', sink: s3Sink(b, 'dr/tm') }
  t.teardown(() => target.sink.close())

  const before = await replicationLag(primary, target, now)
  t.same(before, { target: 'dr', ok: true, seconds: 10 * 86_400, bytes: all.bytes, backups: 4, wal: { objects: 0, bytes: 0, seconds: 0 } }, 'lag before: the oldest missing backup ended 10 days ago')

  const res = await replicate(primary, target, { parallelism: 3 })
  t.equal(res.created, true, 'the secondary was initialised')
  t.equal(res.manifestsCopied.length, 4)
  t.equal(res.objectsCopied, all.keys.size, 'each shared object once')
  t.equal(res.bytesCopied, all.bytes)
  t.equal(res.objectsPresent, 0)
  t.same(await replicationLag(primary, target), { target: 'dr', ok: true, seconds: 0, bytes: 0, backups: 0, wal: { objects: 0, bytes: 0, seconds: 0 } }, 'lag after')
  t.same(await keysOf(target.sink, 'locks/'), new Map(), 'the lease was released')
  t.same(await keysOf(target.sink, 'journal/'), new Map(), 'journals are not copied')

  const again = await replicate(primary, target)
  t.match(again, { created: false, objectsCopied: 0, bytesCopied: 0, manifestsCopied: [] }, 'a second run sends nothing')

  const dr = await openRepository(s3Sink(b, 'dr/tm'), opts)
  t.teardown(() => dr.close())
  t.equal(dr.config.id, primary.config.id, 'same repository id, opened with the same key')
  const report = await verify(dr, { read: true })
  t.equal(report.ok, true, JSON.stringify(report.problems))
  t.equal(report.objects, all.keys.size)

  // Failover: the primary's store is gone for good.
  a.child.kill('SIGKILL')
  await new Promise((r) => a.child.once('exit', r))
  const after = await openRepository(s3Sink(b, 'dr/tm'), opts)
  t.teardown(() => after.close())
  t.same(await after.listManifestIds('clickhouse'), built.manifests.filter((m) => m.source === 'clickhouse').map((m) => m.id).sort())
  t.same(await after.listManifestIds('postgres'), built.manifests.filter((m) => m.source === 'postgres').map((m) => m.id))
  for (const m of built.manifests) {
    const read = await after.readManifest(m.source, m.id)
    for (const ref of read.objects) t.equal(await rawSha(after, ref), built.raw.get(ref.key), `${m.id} ${ref.key} reads back`)
  }
  const lag = await replicationLag(primary, target)
  t.match(lag, { ok: false, error: { code: 'TM_ERR_SINK_UNREACHABLE' } }, 'lag with the primary gone is an error, not a number')
})

t.test('a copy killed halfway resumes and sends only what is missing', async (t) => {
  const [a, b] = await Promise.all([startS3rver(t), startS3rver(t)])
  const primary = await initRepository(s3Sink(a, 'tm'), opts)
  t.teardown(() => primary.close())
  const built = await buildOverlapping(primary, new Date())
  const all = distinct(built.manifests)
  const sink = s3Sink(b, 'tm')
  t.teardown(() => sink.close())

  const K = 3
  let dataPuts = 0
  const dying = withFaults(sink, { failWhen: (c) => (c.op === 'put' && c.key.startsWith('data/') && ++dataPuts > K ? 'permanent' : undefined) })
  const err = (await replicate(primary, { name: 'dr', sink: dying }, { parallelism: 1 }).catch((e: unknown) => e)) as TidemarkError
  t.ok(isTidemarkError(err), String(err))
  t.match(err.message, /^secondary dr .*injected permanent fault/)

  const half = await keysOf(sink, 'data/')
  t.equal(half.size, K, `${K} objects arrived before the failure`)
  const halfBytes = [...half.values()].reduce((x, y) => x + y, 0)
  const partial = await openRepository(s3Sink(b, 'tm'), opts)
  t.teardown(() => partial.close())
  const committed = await verify(partial, { read: true })
  t.equal(committed.ok, true, 'every manifest at the secondary has all its data')
  t.ok(committed.backups.length < 4, 'not every backup was committed')

  const sent: string[] = []
  const counting = withFaults(sink, { failWhen: (c) => void (c.op === 'put' && c.key.startsWith('data/') && sent.push(c.key)) })
  const res = await replicate(primary, { name: 'dr', sink: counting })
  const lacking = distinct(built.manifests.filter((m) => !committed.backups.some((c) => c.id === m.id)))
  t.equal(res.objectsPresent, [...half.keys()].filter((k) => lacking.keys.has(k)).length, 'what arrived and is still needed is found, not sent')
  t.equal(res.objectsCopied, all.keys.size - K)
  t.equal(res.bytesCopied, all.bytes - halfBytes, 'bytes sent = bytes missing')
  t.same(sent.filter((k) => half.has(k)), [], 'no object that had arrived was sent again')
  t.equal(res.manifestsCopied.length, 4 - committed.backups.length)
  t.equal((await verify(partial, { read: true })).ok, true)
})

t.test('an object that does not match its manifest is refused, named, and not left at the secondary', async (t) => {
  const [a, b] = await Promise.all([startS3rver(t), startS3rver(t)])
  const primary = await initRepository(s3Sink(a, 'tm'), opts)
  t.teardown(() => primary.close())
  const built = await buildOverlapping(primary, new Date())
  // The primary's copy of d is damaged in storage (same size, other bytes).
  const bad = built.refs.d!
  const bytes = await readAll(await primary.sink.get(bad.key))
  bytes[1000] = bytes[1000]! ^ 0x01
  await primary.sink.put(bad.key, bytes)
  const sink = s3Sink(b, 'tm')
  t.teardown(() => sink.close())
  const err = (await replicate(primary, { name: 'dr', sink }, { parallelism: 1 }).catch((e: unknown) => e)) as TidemarkError
  t.equal(err.code, 'TM_ERR_INTEGRITY')
  t.match(err.message, bad.key)
  t.match(err.message, 'sha256')
  const there = await keysOf(sink, '')
  t.notOk(there.has(bad.key), 'the damaged object is not at the secondary')
  const withD = built.manifests.filter((m) => m.objects.some((o) => o.key === bad.key)).map((m) => `manifests/${m.source}/${m.id}.json`)
  for (const k of withD) t.notOk(there.has(k), `${k} was not written`)
  t.ok(there.has(`manifests/postgres/${built.manifests[1]!.id}.json`), 'backups without it were copied')
})

t.test('a secondary with wrong credentials or a missing bucket: clear error, primary untouched, lag reports it', async (t) => {
  const [a, b] = await Promise.all([startS3rver(t), startS3rver(t)])
  const primary = await initRepository(s3Sink(a, 'tm'), opts)
  t.teardown(() => primary.close())
  await buildOverlapping(primary, new Date())
  const before = await snapshot(primary.sink)
  const cases = [
    { what: 'wrong access key', sink: s3Sink(b, 'tm', { accessKeyId: 'NOT-S3RVER' }), code: 'TM_ERR_SINK_AUTH', says: /access denied.*check the S3 credentials/ },
    { what: 'missing bucket', sink: s3Sink(b, 'tm', { bucket: 'no-such-bucket' }), code: 'TM_ERR_SINK_NO_BUCKET', says: /bucket no-such-bucket does not exist/ },
  ]
  for (const c of cases) {
    t.teardown(() => c.sink.close())
    const err = (await replicate(primary, { name: 'dr', sink: c.sink }).catch((e: unknown) => e)) as TidemarkError
    t.equal(err.code, c.code, c.what)
    t.match(err.message, /^secondary dr \(s3:\/\//, `${c.what}: names the secondary`)
    t.match(err.message, c.says, c.what)
    const lag = await replicationLag(primary, { name: 'dr', sink: c.sink })
    t.match(lag, { target: 'dr', ok: false, error: { code: c.code } }, `${c.what}: lag is reported as an error`)
  }
  t.same(await snapshot(primary.sink), before, 'the primary is untouched')
  t.same(await keysOf(s3Sink(b, 'tm'), ''), new Map(), 'nothing was written at the secondary endpoint')
})

t.test('a location holding another repository is refused; a locked secondary is refused naming the holder', async (t) => {
  const [a, b] = await Promise.all([startS3rver(t), startS3rver(t)])
  const primary = await initRepository(s3Sink(a, 'tm'), opts)
  t.teardown(() => primary.close())
  await buildOverlapping(primary, new Date())
  const stranger = await initRepository(s3Sink(b, 'other'), opts)
  t.teardown(() => stranger.close())
  const err = (await replicate(primary, { name: 'dr', sink: stranger.sink }).catch((e: unknown) => e)) as TidemarkError
  t.equal(err.code, 'TM_ERR_REPLICA_MISMATCH')
  t.match(err.message, stranger.config.id)

  const sink = s3Sink(b, 'dr')
  t.teardown(() => sink.close())
  await replicate(primary, { name: 'dr', sink })
  const secondary = await openRepository(s3Sink(b, 'dr'), opts)
  t.teardown(() => secondary.close())
  const lease = await secondary.lock('prune')
  t.teardown(() => lease.release())
  await buildOverlapping(primary, new Date())
  const locked = (await replicate(primary, { name: 'dr', sink }).catch((e: unknown) => e)) as TidemarkError
  t.equal(locked.code, 'TM_ERR_REPO_LOCKED')
  t.match(locked.message, /locked by another writer: prune by .* pid \d+/)
})

t.test("the secondary's own policy: backups it would prune at once are not copied", async (t) => {
  const [a, b] = await Promise.all([startS3rver(t), startS3rver(t)])
  const primary = await initRepository(s3Sink(a, 'tm'), opts)
  t.teardown(() => primary.close())
  const built = await buildOverlapping(primary, new Date())
  const sink = s3Sink(b, 'tm')
  t.teardown(() => sink.close())
  const policy = { keepLast: 1, keepDaily: 0, keepWeekly: 0, minAgeHours: 1 }
  const res = await replicate(primary, { name: 'dr', sink, policy })
  const newest = [built.manifests[3]!.id, built.manifests[1]!.id].sort()
  t.same([...res.manifestsCopied].sort(), newest, 'only the newest backup of each source')
  t.same([...res.skippedByPolicy].sort(), [built.manifests[0]!.id, built.manifests[2]!.id].sort())
  t.same(distinct(built.manifests.filter((m) => newest.includes(m.id))).keys, new Set((await keysOf(sink, 'data/')).keys()), 'and only their objects')
  t.match(await replicationLag(primary, { name: 'dr', sink, policy }), { ok: true, seconds: 0, bytes: 0 }, 'skipped backups are no lag')
})
