import t from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { startBaseBackup, type BaseBackupOptions } from '../../src/engine/postgres/basebackup.ts'
import { formatLsn, segmentRange } from '../../src/engine/postgres/wal.ts'
import { PG_BIN, serverTempDir, startPostgres, type PgServer } from '../harness/postgres.ts'
import { removeTempDir, tempDir, waitFor } from '../harness/proc.ts'
import { readAllInto } from '../harness/read-into.ts'

const MiB = 1 << 20
const bb = (pg: PgServer, extra: Partial<BaseBackupOptions> = {}) => startBaseBackup({ url: pg.replicationUrl, pgBasebackup: join(PG_BIN, 'pg_basebackup'), ...extra })
const sink = () => new Writable({ write(_c, _e, cb) { cb() } })
const serverNow = async (pg: PgServer) => new Date(await pg.psql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"))

t.test('a streamed base backup is a complete tar with its label, and reports its WAL range', async (t) => {
  const pg = await startPostgres(t)
  await pg.psql('CREATE TABLE big AS SELECT g, md5(g::text) FROM generate_series(1, 20000) g')
  const dir = await tempDir('tidemark-bb-')
  t.teardown(() => removeTempDir(dir))
  const tarPath = join(dir, 'base.tar')
  const before = await serverNow(pg)
  const b = bb(pg, { label: 'nightly 2026-11-28' })
  await pipeline(b.stream, createWriteStream(tarPath))
  const r = await b.done
  const after = await serverNow(pg)

  const listing = execFileSync('tar', ['-tf', tarPath]).toString().split('\n')
  for (const name of ['backup_label', 'PG_VERSION', 'global/pg_control', 'base/1/', 'backup_manifest']) t.ok(listing.includes(name), `tar holds ${name}`)
  t.notOk(listing.some((n) => n.startsWith('pg_wal/0')), 'no WAL in the backup (-X none)')
  t.equal(r.label, 'nightly 2026-11-28')
  t.equal(r.timeline, 1)
  t.equal(r.stopTimeline, 1)
  t.ok(r.startLsn <= r.stopLsn, `start ${formatLsn(r.startLsn)} <= stop ${formatLsn(r.stopLsn)}`)
  t.ok(r.startTime.getTime() >= Math.floor(before.getTime() / 1000) * 1000 && r.startTime <= after, 'start time (whole seconds) within the backup')
  t.ok(r.startTimeExact)
  t.ok(r.bytes > 10 * MiB, `${r.bytes} bytes streamed`)
  const segs = segmentRange(r.timeline, r.startLsn, r.stopLsn, MiB)
  t.equal(segs[0], r.startWalFile, 'first segment is the label\'s start WAL file')
  t.equal(segs.at(-1), await pg.psql(`SELECT pg_walfile_name('${formatLsn(r.stopLsn)}')`), 'last segment agrees with pg_walfile_name(stop LSN)')

  // The manifest pg_basebackup appended lets pg_verifybackup check every restored file.
  const restored = join(dir, 'restored')
  execFileSync('mkdir', ['-m', '700', restored])
  execFileSync('tar', ['-xf', tarPath, '-C', restored])
  execFileSync(join(PG_BIN, 'pg_verifybackup'), ['-n', '-q', restored])
  t.pass('pg_verifybackup accepts the extracted stream')
})

t.test('START TIME in other server time zones converts to UTC', async (t) => {
  const pg = await startPostgres(t)
  const zones: Array<[string, RegExp]> = [
    ['Asia/Kolkata', / IST\n/], // ambiguous: resolved by the time the backup was started
    ['America/New_York', / E[SD]T\n/],
    ['Asia/Kathmandu', / \+0545\n/],
    ['Europe/Dublin', / (GMT|IST)\n/],
  ]
  for (const [zone, abbrev] of zones) {
    await pg.psql(`ALTER SYSTEM SET log_timezone = '${zone}'; SELECT pg_reload_conf()`)
    await waitFor('the reload', async () => (await pg.psql('SHOW log_timezone')) === zone)
    const before = await serverNow(pg)
    const b = bb(pg)
    await pipeline(b.stream, sink())
    const r = await b.done
    const skew = r.startTime.getTime() - before.getTime()
    t.match(r.backupLabel, abbrev, `${zone}: label written with ${abbrev}`)
    t.equal(r.startTimeExact, !/ IST\n/.test(r.backupLabel), 'exact unless the abbreviation is ambiguous')
    t.ok(skew > -1000 && skew < 5000, `${zone}: label time ${r.startTime.toISOString()} vs server ${before.toISOString()}`)
  }
})

t.test('read with readInto (as the pipeline reads it), the backup is the same whole tar; a failure fails the read', async (t) => {
  const pg = await startPostgres(t)
  await pg.psql('CREATE TABLE big AS SELECT g, md5(g::text) FROM generate_series(1, 20000) g')
  const b = bb(pg)
  const tar = await readAllInto(b.stream, 100_000)
  const r = await b.done
  t.equal(tar.length, r.bytes, 'every byte the scan saw')
  const listing = execFileSync('tar', ['-t'], { input: tar }).toString().split('\n')
  for (const name of ['backup_label', 'PG_VERSION', 'backup_manifest']) t.ok(listing.includes(name), `tar holds ${name}`)
  const wrong = startBaseBackup({ url: pg.urlFor('tidemark', 'wrong'), pgBasebackup: join(PG_BIN, 'pg_basebackup') })
  await t.rejects(readAllInto(wrong.stream), { code: 'TM_ERR_POSTGRES_AUTH' }, 'the read fails with the tool\'s error')
})

t.test('failures become clear errors', async (t) => {
  const pg = await startPostgres(t)
  const wrong = startBaseBackup({ url: pg.urlFor('tidemark', 'wrong'), pgBasebackup: join(PG_BIN, 'pg_basebackup') })
  await t.rejects(pipeline(wrong.stream, sink()), { code: 'TM_ERR_POSTGRES_AUTH' }, 'the stream fails')
  await t.rejects(wrong.done, { code: 'TM_ERR_POSTGRES_AUTH', message: /password authentication failed/ }, 'and done, with the tool\'s words')

  const missing = startBaseBackup({ url: pg.replicationUrl, pgBasebackup: '/nonexistent/pg_basebackup' })
  await t.rejects(missing.done, { code: 'TM_ERR_POSTGRES_TOOL_MISSING' })

  const tsDir = await serverTempDir('tidemark-ts-')
  t.teardown(() => removeTempDir(tsDir))
  await pg.psql(`CREATE TABLESPACE extra LOCATION '${tsDir}'`)
  const two = bb(pg)
  await t.rejects(pipeline(two.stream, sink()), { code: 'TM_ERR_POSTGRES_TABLESPACES', message: /single tablespace/ })
  await pg.psql('DROP TABLESPACE extra')
})

t.test('abort and an early-closing consumer kill pg_basebackup and leave the server clean', async (t) => {
  const pg = await startPostgres(t)
  const backends = () => pg.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'")
  const a = bb(pg)
  const first = await new Promise<Buffer>((resolve) => a.stream.once('data', resolve))
  t.ok(first.length > 0, 'streaming')
  a.abort('operator asked')
  await t.rejects(a.done, { code: 'TM_ERR_ABORTED', message: /operator asked/ })
  await waitFor('the walsender to go', async () => (await backends()) === '0')

  const c = bb(pg, { signal: AbortSignal.timeout(60_000) })
  c.stream.once('data', () => c.stream.destroy())
  await t.rejects(c.done, { code: 'TM_ERR_ABORTED' })
  await waitFor('the walsender to go', async () => (await backends()) === '0')

  const ok = bb(pg)
  await pipeline(ok.stream, sink())
  t.ok((await ok.done).stopLsn > 0n, 'a backup after the aborted ones succeeds')
  // The child is really gone: no pg_basebackup process of ours remains.
  const ps = spawn('pgrep', ['-f', `pg_basebackup.*${pg.port}`])
  const code = await new Promise((resolve) => ps.once('close', resolve))
  t.equal(code, 1, 'no pg_basebackup left running')
})
