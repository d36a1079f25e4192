import t from 'tap'
import { readdir, utimes } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { initRepository, openRepository } from '../../src/engine/repository/index.ts'
import { createFsSink } from '../../src/sinks/fs.ts'
import { tidemark } from '../cli/run.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { buildOverlapping, CHUNK, keysOf, testPool } from '../replicate/helpers.ts'

const pool = testPool()
t.teardown(() => pool.destroy())

async function age(dir: string, hours: number): Promise<void> {
  const when = new Date(Date.now() - hours * 3_600_000)
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) await utimes(join(e.parentPath, e.name), when, when)
}

t.test('tidemark prune: dry run, the run, the lease, and a secondary’s own policy', async (t) => {
  const root = await tempDir()
  t.teardown(() => removeTempDir(root))
  const repo = await initRepository(createFsSink(root), { pipeline: { pool, chunkSize: CHUNK } })
  const built = await buildOverlapping(repo, new Date())
  await repo.close()
  await age(join(root, 'data'), 3)
  const url = pathToFileURL(root).href
  const env = { TIDEMARK_RETENTION_KEEP_LAST: '1', TIDEMARK_RETENTION_KEEP_DAILY: '0', TIDEMARK_RETENTION_KEEP_WEEKLY: '0', TIDEMARK_RETENTION_MIN_AGE_HOURS: '0', TIDEMARK_RETENTION_SAFETY_MARGIN_HOURS: '1' }
  const before = await keysOf(createFsSink(root))

  const dry = await tidemark(['prune', '--dry-run', '--repo', url, '--json'], { env })
  t.equal(dry.code, 0, dry.stderr)
  const plan = JSON.parse(dry.stdout)
  t.match(plan, { dryRun: true, repository: url, policy: { keepLast: 1 } })
  t.same(plan.plan.manifests.map((m: { id: string }) => m.id).sort(), [built.manifests[0]!.id, built.manifests[2]!.id].sort())
  t.same(plan.plan.objects.map((o: { key: string }) => o.key).sort(), [built.refs.b!.key, built.refs.c!.key].sort())
  t.equal(plan.plan.bytes, built.refs.b!.size + built.refs.c!.size)
  t.same(await keysOf(createFsSink(root)), before, 'the dry run deleted nothing')
  const text = await tidemark(['prune', '--dry-run', '--repo', url], { env })
  t.match(text.stdout, new RegExp(`^dry run: ${url}: would delete 2 backups, 2 objects \\(.* KiB\\)`))
  t.match(text.stdout, `  object ${built.refs.b!.key} `)

  // A secondary's own policy (keep 3) applies when the repository is that secondary.
  const secondaries = JSON.stringify([{ name: 'dr', url, retention: { keepLast: 3, keepDaily: 0, keepWeekly: 0, minAgeHours: 0, safetyMarginHours: 1 } }])
  const own = await tidemark(['prune', '--dry-run', '--secondary', 'dr', '--json'], { env: { ...env, TIDEMARK_SECONDARIES: secondaries } })
  t.equal(own.code, 0, own.stderr)
  t.same(JSON.parse(own.stdout).plan.manifests, [], 'keepLast 3 keeps every ClickHouse backup')

  const holder = await openRepository(createFsSink(root), { pipeline: { pool } })
  const lease = await holder.lock('backup clickhouse')
  const locked = await tidemark(['prune', '--repo', url], { env })
  await lease.release()
  await holder.close()
  t.equal(locked.code, 1)
  t.match(locked.stderr, /^TM_ERR_REPO_LOCKED the repository is locked by another writer: backup clickhouse by \S+ pid \d+/)

  const run = await tidemark(['prune', '--repo', url, '--json'], { env })
  t.equal(run.code, 0, run.stderr)
  t.match(JSON.parse(run.stdout), { dryRun: false, deleted: { manifests: 2, objects: 2, bytes: plan.plan.bytes } })
  const check = await tidemark(['verify', '--read', '--repo', url])
  t.equal(check.code, 0, check.stderr)

  const all = await tidemark(['prune', '--repo', url], { env: { ...env, TIDEMARK_RETENTION_KEEP_LAST: '0' } })
  t.equal(all.code, 2, 'keepLast 0 is refused by the configuration schema')
  t.match(all.stderr, /^TM_ERR_CONFIG_INVALID .*retention.keepLast/)
})
