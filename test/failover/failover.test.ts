/**
 * Regional failover, end to end through bin/tidemark: ClickHouse and PostgreSQL
 * backups (plus the continuous WAL archive) go to a primary s3rver, `tidemark
 * replicate` copies them to a second s3rver (the DR region), `tidemark verify --read`
 * of the secondary is clean; then the primary's s3rver is stopped for good and
 * everything is restored from the secondary: ClickHouse into a fresh server (rows
 * and content digests match), PostgreSQL into an empty directory to a time T after
 * its base backup (the WAL came over too), started: exactly the rows committed by T.
 *
 * The ClickHouse restore uses the primary's configuration with `--repo <secondary url>`
 * (the secondary's own endpoint and keys are used); the PostgreSQL restore uses a
 * configuration whose repository is the secondary, which the restored server's
 * wal-fetch then reads as well.
 */
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { stringify } from 'yaml'
import { startClickHouse, type ClickHouseServer } from '../harness/clickhouse.ts'
import { PG_BIN, serverTempDir, startPostgres } from '../harness/postgres.ts'
import { removeTempDir, waitFor } from '../harness/proc.ts'
import { startS3rver, type S3rverInstance } from '../harness/s3rver.ts'
import { cli, idsOf, json, startArchive, startRestored } from '../postgres/archive-helpers.ts'

const PASSPHRASE = 'failover-passphrase-3'
const s3Of = (s: S3rverInstance) => ({ endpoint: s.endpoint, forcePathStyle: true, accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey })
/** A digest of a whole table: rows and an order-independent hash of every row. */
const digest = (ch: ClickHouseServer, table: string) => ch.query(`SELECT count(), sum(cityHash64(*)) FROM ${table}`)

t.test('replicate to a DR s3rver, verify it, lose the primary, restore everything from the DR copy', async (t) => {
  const [a, b] = await Promise.all([startS3rver(t), startS3rver(t)])
  const pg = await startPostgres(t, { settings: { autovacuum: 'off' } })
  const [chSrc, chDst] = await Promise.all([startClickHouse(t), startClickHouse(t)])
  const root = await serverTempDir('tidemark-failover-')
  t.teardown(() => removeTempDir(root))

  const common = {
    pipeline: { threads: 1 },
    postgres: { url: pg.replicationUrl, binDir: PG_BIN, slot: 'tidemark_failover', walDir: join(root, 'wal'), walPartialIntervalSeconds: 1, baseBackupWalTimeoutSeconds: 60 },
    clickhouse: { url: chSrc.url, user: chSrc.user, password: chSrc.password },
    log: { level: 'warn' },
  }
  const cfg = join(root, 'primary.yaml')
  await writeFile(cfg, stringify({ ...common, repository: { url: `s3://${a.bucket}/tm`, s3: s3Of(a), encryption: { passphrase: PASSPHRASE } }, secondaries: [{ name: 'dr', url: `s3://${b.bucket}/dr`, s3: s3Of(b) }] }), { mode: 0o644 })
  const drCfg = join(root, 'dr.yaml')
  await writeFile(drCfg, stringify({ ...common, repository: { url: `s3://${b.bucket}/dr`, s3: s3Of(b), encryption: { passphrase: PASSPHRASE } } }), { mode: 0o644 })

  t.equal((await cli(cfg, ['repo', 'init'])).code, 0, 'primary repository created')
  const archive = startArchive(t, cfg)
  await waitFor('the archive to stream', async () => (await pg.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'tidemark_failover'")) === 't', 30_000)

  await pg.psql('CREATE TABLE tick (id int PRIMARY KEY, note text); INSERT INTO tick SELECT g, md5(g::text) FROM generate_series(1, 50) g')
  await chSrc.query('CREATE DATABASE ls')
  await chSrc.query('CREATE TABLE ls.runs (d Date, id UInt64, s String) ENGINE = MergeTree PARTITION BY d ORDER BY id')
  await chSrc.query("INSERT INTO ls.runs SELECT toDate('2024-01-01') + number % 3, number, toString(number) FROM numbers(3000)")
  await chSrc.query('CREATE TABLE ls.lg (k String) ENGINE = Log')
  await chSrc.query("INSERT INTO ls.lg VALUES ('a'), ('b')")

  const base = json<{ id: string; endTime: string }>(await cli(cfg, ['backup', 'postgres', '--json']), 'backup postgres')
  const ch = json<{ id: string }>(await cli(cfg, ['backup', 'clickhouse', '--json']), 'backup clickhouse')

  // After the base backup: rows 51..80 before T, 81..100 after it.
  await pg.psql('INSERT INTO tick SELECT g, md5(g::text) FROM generate_series(51, 80) g')
  await sleep(1200)
  const T = new Date()
  await sleep(1200)
  await pg.psql('INSERT INTO tick SELECT g, md5(g::text) FROM generate_series(81, 100) g')
  await pg.psql('SELECT pg_switch_wal()')
  type ListOut = { sources: { postgres: { clusters: { recoveryWindows: { to: string }[] }[] } } }
  await waitFor('the recovery window to pass T', async () => {
    const w = json<ListOut>(await cli(cfg, ['list', '--source', 'postgres', '--json']), 'list').sources.postgres.clusters[0]?.recoveryWindows.at(-1)
    return w !== undefined && Date.parse(w.to) > T.getTime() + 1000
  }, 30_000, 500)
  await archive.stop()

  const rep = json<{ targets: { name: string; ok: boolean; result: { manifestsCopied: string[]; wal: { objectsCopied: number } }; lag: { ok: boolean; bytes: number } }[] }>(await cli(cfg, ['replicate', '--json']), 'replicate')
  t.match(rep.targets[0], { name: 'dr', ok: true, lag: { ok: true, bytes: 0 } })
  t.same([...rep.targets[0]!.result.manifestsCopied].sort(), [base.id, ch.id].sort(), 'both backups copied')
  t.ok(rep.targets[0]!.result.wal.objectsCopied > 0, `WAL archive copied (${rep.targets[0]!.result.wal.objectsCopied} objects)`)
  const verified = json<{ ok: boolean; problems: unknown[] }>(await cli(cfg, ['verify', '--all', '--read', '--secondary', 'dr', '--json']), 'verify the secondary')
  t.match(verified, { ok: true, problems: [] }, 'the secondary verifies clean, every object read back')

  // The primary region is gone.
  await a.stop()
  const down = await cli(cfg, ['list', '--json'], { timeoutMs: 120_000 })
  t.not(down.code, 0, 'the primary is unreachable')

  const chEnv = { CLICKHOUSE_HOST: '', CLICKHOUSE_PORT: '' }
  const targetUrl = `http://${chDst.user}:${encodeURIComponent(chDst.password)}@127.0.0.1:${chDst.httpPort}`
  // The primary's configuration with `--repo <secondary url>`: the secondary's own endpoint and keys are used.
  const chOut = json<{ backupId: string; ok: boolean }>(await cli(cfg, ['restore', 'clickhouse', '--repo', `s3://${b.bucket}/dr`, '--at', 'latest', '--target-url', targetUrl, '--json'], { env: chEnv }), 'restore clickhouse from the secondary')
  t.match(chOut, { backupId: ch.id, ok: true })
  for (const table of ['ls.runs', 'ls.lg']) t.equal(await digest(chDst, table), await digest(chSrc, table), `${table}: rows and digest match`)

  const dir = join(root, 'restored')
  const pgOut = json<{ backupId: string }>(await cli(drCfg, ['restore', 'postgres', '--at', T.toISOString(), '--target-dir', dir, '--json']), 'restore postgres from the secondary')
  t.equal(pgOut.backupId, base.id)
  const scratch = await serverTempDir('tidemark-tap-scratch-')
  t.teardown(() => removeTempDir(scratch))
  const restored = await startRestored(dir, scratch, t, { waitForPromotion: true, timeoutMs: 90_000, replicationPassword: pg.replicationPassword })
  t.same(await idsOf(restored, 'tick'), Array.from({ length: 80 }, (_, i) => i + 1), 'rows 1..80: the base backup plus the WAL up to T, from the secondary')
  await restored.stop()
})
