/**
 * Prune with the PostgreSQL WAL rule on a repository fed by the real archive
 * (`tidemark wal-archive` against a harness server) and three base backups
 * (`tidemark backup postgres`): with keepLast 2 the oldest base backup goes, and with
 * it the WAL that ends before the oldest kept backup's start; everything from that
 * start on stays (no gap), heartbeats stay, `verify --all --read` is clean, and the
 * oldest kept backup still restores (a real restore to a time before the next
 * backup, started: the rows committed by then).
 */
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { stringify } from 'yaml'
import { listArchive } from '../../src/engine/postgres/wal-store.ts'
import { findGaps } from '../../src/engine/postgres/wal.ts'
import { openRepository } from '../../src/engine/repository/index.ts'
import { createFsSink } from '../../src/sinks/fs.ts'
import { PG_BIN, serverTempDir, startPostgres } from '../harness/postgres.ts'
import { removeTempDir, waitFor } from '../harness/proc.ts'
import { cli, idsOf, json, startArchive, startRestored } from '../postgres/archive-helpers.ts'

const MiB = 1 << 20
interface BackupOut { id: string; startTime: string; endTime: string; startLsn: string; walFiles: string[] }
interface PruneOut { plan: { manifests: { id: string }[]; objects: { key: string }[] }; deleted: { objects: number } }

t.test('prune removes WAL older than the oldest kept base backup, and only that', async (t) => {
  const pg = await startPostgres(t, { settings: { autovacuum: 'off' } })
  const root = await serverTempDir('tidemark-walprune-')
  t.teardown(() => removeTempDir(root))
  const repoDir = join(root, 'repo')
  const cfg = join(root, 'tidemark.yaml')
  await writeFile(cfg, stringify({
    repository: { url: repoDir },
    pipeline: { threads: 1 },
    postgres: { url: pg.replicationUrl, binDir: PG_BIN, slot: 'tidemark_walprune', walDir: join(root, 'wal'), walPartialIntervalSeconds: 1, baseBackupWalTimeoutSeconds: 60 },
    retention: { keepLast: 2, keepDaily: 0, keepWeekly: 0, minAgeHours: 0, safetyMarginHours: 0 },
    log: { level: 'warn' },
  }), { mode: 0o644 })
  t.equal((await cli(cfg, ['repo', 'init'])).code, 0)
  const archive = startArchive(t, cfg)
  await waitFor('the archive to stream', async () => (await pg.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'tidemark_walprune'")) === 't', 30_000)
  await pg.psql('CREATE TABLE tick (id int PRIMARY KEY)')

  let next = 1
  /** Ten rows and a segment switch, so each backup has WAL before it. */
  const churn = async () => {
    for (let i = 0; i < 2; i++) {
      await pg.psql(`INSERT INTO tick SELECT g FROM generate_series(${next}, ${next + 4}) g; SELECT pg_switch_wal()`)
      next += 5
    }
  }
  const backups: BackupOut[] = []
  let between: Date | undefined
  let rowsAtBetween = 0
  for (let i = 0; i < 3; i++) {
    await churn()
    if (i === 2) {
      // A point after the second backup and before the third: restorable from the second alone.
      await sleep(1100)
      between = new Date()
      rowsAtBetween = next - 1
      await sleep(1100)
      await churn()
    }
    backups.push(json<BackupOut>(await cli(cfg, ['backup', 'postgres', '--json']), `backup ${i + 1}`))
  }
  await archive.stop()

  const repo = await openRepository(createFsSink(repoDir))
  t.teardown(() => repo.close())
  const segments = async () => {
    const tls = [...(await listArchive(repo)).values()][0]!
    return [...(tls.get(1)?.segments ?? [])].sort()
  }
  const before = await segments()
  const [b1, b2] = backups as [BackupOut, BackupOut, BackupOut]
  const start2 = b2.walFiles.filter((n) => /^[0-9A-F]{24}$/.test(n)).sort()[0]!
  t.ok(before.filter((n) => n < start2).length >= 4, `WAL before the second backup: ${before.filter((n) => n < start2).length} segments`)

  const dry = json<PruneOut>(await cli(cfg, ['prune', '--dry-run', '--json']), 'prune --dry-run')
  const out = json<PruneOut>(await cli(cfg, ['prune', '--json']), 'prune')
  t.same(out.plan.manifests.map((m) => m.id), [b1.id], 'the oldest base backup goes')
  t.same(out.plan.objects.map((o) => o.key).sort(), dry.plan.objects.map((o) => o.key).sort(), 'the dry run showed exactly what went')
  const walGone = out.plan.objects.map((o) => o.key).filter((k) => k.startsWith('data/postgres/wal/'))
  t.ok(walGone.some((k) => k.endsWith('.ref.json')) && walGone.some((k) => !k.endsWith('.json')), 'segments and their records removed')

  const after = await segments()
  t.same(after, before.filter((n) => n >= start2), 'every segment before the oldest kept start is gone, every one from it on stays')
  t.equal(after[0], start2, 'the segment holding the oldest kept start stays')
  t.same(findGaps(after, MiB), [], 'no gap in what stays')
  const tl = [...(await listArchive(repo)).values()][0]!.get(1)!
  t.ok(tl.heartbeats && tl.partial, 'heartbeats.json and partial.json stay')

  const v = json<{ ok: boolean; problems: unknown[] }>(await cli(cfg, ['verify', '--all', '--read', '--json']), 'verify')
  t.match(v, { ok: true, problems: [] }, 'every remaining backup verifies, every object read back')

  const dir = join(root, 'restored')
  const r = json<{ backupId: string }>(await cli(cfg, ['restore', 'postgres', '--at', between!.toISOString(), '--target-dir', dir, '--json']), 'restore')
  t.equal(r.backupId, b2.id, 'the oldest kept backup is the one restored')
  const scratch = await serverTempDir('tidemark-tap-scratch-')
  t.teardown(() => removeTempDir(scratch))
  const restored = await startRestored(dir, scratch, t, { waitForPromotion: true, timeoutMs: 90_000, replicationPassword: pg.replicationPassword })
  t.same(await idsOf(restored, 'tick'), Array.from({ length: rowsAtBetween }, (_, i) => i + 1), `rows 1..${rowsAtBetween} after pruning`)
  await restored.stop()
})
