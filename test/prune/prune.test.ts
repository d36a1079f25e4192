import t from 'tap'
import { writeFileSync } from 'node:fs'
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { dataKey, initRepository, manifestKey, newBackupId, openRepository, type ManifestBase, type Repository } from '../../src/engine/repository/index.ts'
import { prune, WAL_PREFIX, type PrunePolicy } from '../../src/engine/prune.ts'
import { verify } from '../../src/engine/verify.ts'
import { createFsSink } from '../../src/sinks/fs.ts'
import { withFaults } from '../../src/sinks/faulty.ts'
import type { Sink } from '../../src/sinks/sink.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { buildOverlapping, CHUNK, keysOf, snapshot, testPool, writeRandom, type Built } from '../replicate/helpers.ts'

const pool = testPool()
t.teardown(() => pool.destroy())
const HOUR = 3_600_000
const policy: PrunePolicy = { keepLast: 1, keepDaily: 0, keepWeekly: 0, minAgeHours: 0, safetyMarginHours: 1 }

/** Sets the modification time of every file under `prefix` (or of one key) to `ms` ago. */
async function backdate(root: string, prefix: string, agoMs: number): Promise<void> {
  const when = new Date(Date.now() - agoMs)
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = join(dir, e.name)
      if (e.isDirectory()) await walk(p)
      else await utimes(p, when, when)
    }
  }
  const path = join(root, ...prefix.split('/'))
  if (prefix.endsWith('/')) await walk(path)
  else await utimes(path, when, when)
}

interface Fixture {
  root: string
  repo: Repository
  built: Built
  /** A crash leftover: written, never referenced, old. */
  leftover: string
}

async function fixture(t: { teardown(fn: () => unknown): void }, wrap: (s: Sink) => Sink = (s) => s): Promise<Fixture> {
  const root = await tempDir()
  t.teardown(() => removeTempDir(root))
  await initRepository(createFsSink(root)).then((r) => r.close())
  const repo = await openRepository(wrap(createFsSink(root)), { pipeline: { pool, chunkSize: CHUNK } })
  t.teardown(() => repo.close())
  const built = await buildOverlapping(repo, new Date())
  const leftover = (await writeRandom(repo, dataKey('clickhouse', 'db/t/crashed-1'), 9_000)).key
  await backdate(root, 'data/', 3 * HOUR)
  return { root, repo, built, leftover }
}

const ids = (b: Built, ...i: number[]) => i.map((n) => b.manifests[n]!.id).sort()
const key = (b: Built, name: string) => b.refs[name]!.key

t.test('overlapping incremental backups: dry run shows exactly what goes, prune deletes unreferenced objects only', async (t) => {
  const { root, repo, built, leftover } = await fixture(t)
  const before = await snapshot(repo.sink)
  const dry = await prune(repo, { policy, dryRun: true })
  t.equal(dry.dryRun, true)
  t.same(dry.plan.manifests.map((m) => m.id).sort(), ids(built, 0, 2), 'ch1 and ch2 go; ch3 and pg1 stay')
  const gone = [key(built, 'b'), key(built, 'c'), leftover].sort()
  t.same(dry.plan.objects.map((o) => o.key).sort(), gone, 'b and c (only in removed backups) and the crash leftover')
  const sizes = await keysOf(repo.sink, 'data/')
  t.equal(dry.plan.bytes, gone.reduce((a, k) => a + sizes.get(k)!, 0))
  t.same(dry.plan.keep.map((k) => k.id), ids(built, 1, 3))
  t.same(await snapshot(repo.sink), before, 'a dry run deletes nothing and takes no lock')

  const done = await prune(repo, { policy })
  t.same(done.plan, dry.plan, 'the run did what the dry run showed')
  t.match(done.deleted, { manifests: 2, objects: 3, bytes: dry.plan.bytes, protectedByNewBackups: 0 })
  t.same([...(await keysOf(repo.sink, 'data/')).keys()].sort(), ['a', 'd', 'e', 'p', 'q'].map((n) => key(built, n)).sort())
  t.same(await keysOf(repo.sink, 'locks/'), new Map(), 'the lease was released')
  const report = await verify(repo, { read: true })
  t.equal(report.ok, true, JSON.stringify(report.problems))
  t.same(report.backups.map((b) => b.id).sort(), ids(built, 1, 3), 'every remaining backup verifies with --read')
  t.match((await prune(repo, { policy })).deleted, { manifests: 0, objects: 0, bytes: 0 }, 'nothing more to do')
  await t.resolves(readdir(root))
})

t.test('a backup being written (objects uploaded, no manifest yet) is not harmed', async (t) => {
  const { root, repo, built } = await fixture(t)
  // A backup in progress: two fresh objects, and an old one a live journal records.
  const y = await writeRandom(repo, dataKey('clickhouse', 'db/t/new-y'), 8_000)
  const z = await writeRandom(repo, dataKey('clickhouse', 'db/t/new-z'), 6_000)
  const w = await writeRandom(repo, dataKey('clickhouse', 'db/t/long-w'), 5_000)
  await backdate(root, w.key, 5 * HOUR)
  const running = newBackupId('clickhouse', new Date())
  await repo.writeJournal('clickhouse', running, [w, y])
  // A backup that died long ago: its journal is stale and protects nothing.
  const dead = await writeRandom(repo, dataKey('clickhouse', 'db/t/dead-v'), 4_000)
  await repo.writeJournal('clickhouse', '20200101T000000Z-ch-dead', [dead])
  await backdate(root, dead.key, 50 * HOUR)
  await backdate(root, 'journal/clickhouse/20200101T000000Z-ch-dead.json', 50 * HOUR)

  const res = await prune(repo, { policy })
  const left = await keysOf(repo.sink, 'data/')
  for (const o of [y, z, w]) t.ok(left.has(o.key), `${o.key} survives`)
  t.notOk(left.has(dead.key), 'the dead backup’s object is swept')
  t.match(res.plan.young, { objects: 1, bytes: z.size }, 'z is spared by the margin (y and w by the live journal)')
  t.same(res.plan.journals.map((j) => j.key), ['journal/clickhouse/20200101T000000Z-ch-dead.json'])
  t.same([...(await keysOf(repo.sink, 'journal/')).keys()], [`journal/clickhouse/${running}.json`], 'the live journal stays')

  const m: ManifestBase = { ...built.manifests[3]!, id: running, objects: [built.refs.a!, y, z, w] }
  await repo.commitManifest(m)
  t.equal((await verify(repo, { ids: [running], read: true })).ok, true, 'the backup commits and verifies after the prune')
})

t.test('a backup committed between the manifest deletions and the sweep protects its objects', async (t) => {
  let fired = false
  const seen: { root?: string; built?: Built } = {}
  const late = newBackupId('clickhouse', new Date())
  const f = await fixture(t, (s) =>
    withFaults(s, {
      failWhen: (c) => {
        // Right after prune deletes the manifests: another writer commits a backup reusing c.
        if (c.op === 'delete' && c.key.startsWith('manifests/') && !fired && seen.built && seen.root) {
          fired = true
          const m: ManifestBase = { ...seen.built.manifests[3]!, id: late, objects: [seen.built.refs.c!] }
          writeFileSync(join(seen.root, ...manifestKey('clickhouse', late).split('/')), JSON.stringify(m))
        }
        return undefined
      },
    }),
  )
  seen.root = f.root
  seen.built = f.built
  const res = await prune(f.repo, { policy })
  t.ok(fired)
  t.match(res.deleted, { objects: 2, protectedByNewBackups: 1 })
  t.ok((await keysOf(f.repo.sink, 'data/')).has(key(f.built, 'c')), 'c survives')
  t.equal((await verify(f.repo, { ids: [late], read: true })).ok, true)
})

t.test('prune without the lease is refused, naming the holder; nothing is deleted', async (t) => {
  const { root, repo } = await fixture(t)
  const other = await openRepository(createFsSink(root), { pipeline: { pool } })
  t.teardown(() => other.close())
  const lease = await other.lock('backup clickhouse')
  t.teardown(() => lease.release())
  const before = await snapshot(repo.sink)
  await t.rejects(prune(repo, { policy }), { code: 'TM_ERR_REPO_LOCKED', message: /locked by another writer: backup clickhouse by .* pid \d+/ })
  t.same(await snapshot(repo.sink), before)
  await lease.release()
  t.ok((await prune(repo, { policy, dryRun: true })).plan.objects.length > 0, 'a dry run needs no lease')
})

t.test('a policy that would delete every backup is refused; nothing is deleted and no lock is left', async (t) => {
  const { repo } = await fixture(t)
  const before = await snapshot(repo.sink)
  const none = { keepLast: 0, keepDaily: 0, keepWeekly: 0, minAgeHours: 0, safetyMarginHours: 0 }
  await t.rejects(prune(repo, { policy: none }), { code: 'TM_ERR_RETENTION_UNSAFE', message: /would delete every/ })
  await t.rejects(prune(repo, { policy: { ...none, keepDaily: 3 }, dryRun: true }), { code: 'TM_ERR_RETENTION_UNSAFE' })
  t.same(await snapshot(repo.sink), before)
})

t.test('WAL is never swept as unreferenced; the WAL rule decides; stale locks go', async (t) => {
  const { root, repo, built } = await fixture(t)
  const wal = [1, 2].map((n) => `${WAL_PREFIX}00000001000000000000000${n}`)
  for (const k of wal) await repo.sink.put(k, Buffer.alloc(1000, 1))
  await backdate(root, WAL_PREFIX, 10 * HOUR)
  await mkdir(join(root, 'locks'), { recursive: true })
  await writeFile(join(root, 'locks', 'gone.json'), JSON.stringify({ owner: 'gone', expiresAt: new Date(Date.now() - 5 * HOUR).toISOString() }))
  t.same((await prune(repo, { policy, dryRun: true })).plan.objects.filter((o) => o.key.startsWith(WAL_PREFIX)), [], 'not by default')

  let keptSeen: string[] = []
  const res = await prune(repo, {
    policy,
    continuousRemovable: (kept) => {
      keptSeen = kept.map((m) => m.id).sort()
      return [wal[0]!]
    },
  })
  t.same(keptSeen, ids(built, 1, 3), 'the rule is given the backups that stay')
  const left = await keysOf(repo.sink, WAL_PREFIX)
  t.same([...left.keys()], [wal[1]], 'what the WAL rule removes goes, the rest stays')
  t.same(res.plan.locks, ['locks/gone.json'])
  t.same(await keysOf(repo.sink, 'locks/'), new Map())
})
