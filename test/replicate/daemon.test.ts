/**
 * The daemon keeps the secondaries current: WAL copied continuously by a supervised
 * service, backups copied right after each successful backup job, lag per secondary
 * in /metrics, and a secondary with wrong credentials reported as up=0 while the
 * primary's backups go on. Real repositories (files and an s3rver); the backup
 * source is the daemon tests' stand-in that commits real manifests.
 */
import { join } from 'node:path'
import t from 'tap'
import { pino } from 'pino'
import { manualClock } from '../../src/engine/clock.ts'
import { Daemon } from '../../src/engine/daemon/services.ts'
import type { MetricsSnapshot } from '../../src/engine/daemon/metrics.ts'
import { replicate, replicateWal, replicationLag, type ReplicaTarget } from '../../src/engine/replicate.ts'
import type { Repository } from '../../src/engine/repository/index.ts'
import { walDataKey } from '../../src/engine/postgres/wal-format.ts'
import { asTidemarkError } from '../../src/errors.ts'
import { openSink } from '../../src/sinks/url.ts'
import { startS3rver } from '../harness/s3rver.ts'
import { tempDir, removeTempDir, waitFor } from '../harness/proc.ts'
import { daemonConfig, tempRepository, testClickHouse } from '../daemon/helpers.ts'
import { keysOf, s3Sink } from './helpers.ts'

/** Runs `fn` for every target; fails after trying them all when any failed (one bad secondary does not hold up the others). */
async function each(targets: ReplicaTarget[], fn: (t: ReplicaTarget) => Promise<unknown>): Promise<unknown[]> {
  const out = await Promise.allSettled(targets.map(fn))
  const bad = out.find((r) => r.status === 'rejected')
  if (bad) throw asTidemarkError((bad as PromiseRejectedResult).reason)
  return out.map((r) => (r as PromiseFulfilledResult<unknown>).value)
}

function lagOf(repo: Repository, targets: ReplicaTarget[]) {
  return async (): Promise<MetricsSnapshot['replication']> =>
    Promise.all(targets.map(async (target) => {
      const l = await replicationLag(repo, target)
      return l.ok ? { target: l.target, ok: true, seconds: l.seconds, bytes: l.bytes } : { target: l.target, ok: false }
    }))
}

t.test('WAL copied continuously, backups after each job, lag and a failing secondary in /metrics', async (t) => {
  const clock = manualClock('2026-11-28T09:00:00Z')
  const { repo } = await tempRepository(t, clock)
  const s3 = await startS3rver(t)
  const dir = await tempDir('tidemark-dr-')
  t.teardown(() => removeTempDir(dir))
  const dr: ReplicaTarget = { name: 'dr', sink: openSink(`file://${join(dir, 'dr')}`) }
  const bad: ReplicaTarget = { name: 'bad', sink: s3Sink(s3, 'dr', { accessKeyId: 'WRONG' }) }
  t.teardown(async () => {
    await dr.sink.close()
    await bad.sink.close()
  })
  const targets = [dr, bad]
  const seg = walDataKey('7300000000000000001', '000000010000000000000001')
  await repo.sink.put(seg, Buffer.alloc(4096, 7))

  const daemon = new Daemon({
    version: '0.0.0-test', repo, clock, log: pino({ level: 'silent' }), config: daemonConfig(),
    clickhouse: testClickHouse(repo, clock),
    replicate: (signal) => each(targets, (x) => replicate(repo, x, { signal })),
    replicateWal: (signal) => each(targets, (x) => replicateWal(repo, x, { signal })),
    walReplicationIntervalMs: 200,
    replicationLag: lagOf(repo, targets),
  })
  t.teardown(() => daemon.shutdown(0, 2000))
  await daemon.start()

  await waitFor('the segment at the secondary', async () => (await keysOf(dr.sink, seg)).size === 1, 10_000)
  t.pass('the WAL service copied the segment to the good secondary without any backup')
  const seg2 = walDataKey('7300000000000000001', '000000010000000000000002')
  await repo.sink.put(seg2, Buffer.alloc(4096, 8))
  await waitFor('the second segment at the secondary', async () => (await keysOf(dr.sink, seg2)).size === 1, 10_000)
  t.pass('and keeps copying what the archive adds')

  const job = daemon.startBackup('clickhouse', true)
  await waitFor('the backup job', async () => daemon.getJob(job.id).state === 'succeeded', 10_000)
  const backupId = (daemon.getJob(job.id).result as { id: string }).id
  await waitFor('the replicate job', async () => daemon.listJobs({ kind: 'replicate' }).some((j) => j.state === 'failed' || j.state === 'succeeded'), 10_000)
  const rep = daemon.listJobs({ kind: 'replicate' })[0]!
  t.equal(rep.state, 'failed', 'the replicate job reports the bad secondary')
  t.match(rep.error, { code: 'TM_ERR_SINK_AUTH' })
  t.ok((await keysOf(dr.sink, `manifests/clickhouse/${backupId}`)).size === 1, 'the backup reached the good secondary right after the job')

  const text = await daemon.metrics()
  t.match(text, /tidemark_replication_up\{target="dr"\} 1/)
  t.match(text, /tidemark_replication_up\{target="bad"\} 0/)
  t.match(text, /tidemark_replication_lag_seconds\{target="dr"\} 0/)
  t.match(text, /tidemark_replication_lag_bytes\{target="dr"\} 0/)
  t.notMatch(text, /tidemark_replication_lag_bytes\{target="bad"\}/, 'no number is made up for a secondary that cannot be surveyed')
  t.match(text, /tidemark_service_failures_total\{service="wal-replication"\} [1-9]/, 'the WAL copy counts its failures')
  t.match(text, /tidemark_backup_failures_total\{store="clickhouse"\} 0/, 'the primary is unaffected')
})
