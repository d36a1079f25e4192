/**
 * Point-in-time restore through tidemark itself, end to end: `tidemark wal-archive`
 * runs as a service, `tidemark backup postgres` takes base backups while a writer
 * commits a row every ~50 ms, `tidemark restore postgres` writes a data directory
 * whose restore_command is the real `bin/tidemark wal-fetch` (run by the restored
 * server as its own OS user, reading an encrypted repository with the passphrase from
 * the configuration file), and a server started on it must hold exactly the rows
 * committed at or before the target. Commit times come from track_commit_timestamp,
 * the timestamps recovery compares with.
 */
import t from 'tap'
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { formatMicros } from '../../src/engine/postgres/instant.ts'
import { serverTempDir, startPostgres, type PgServer } from '../harness/postgres.ts'
import { removeTempDir, waitFor } from '../harness/proc.ts'
import { cli, commitsOf, idsOf, json, startArchive, startRestored, writeConfig, type Commit } from './archive-helpers.ts'

const PASSPHRASE = 'pitr-cli-passphrase-1'
const ROWS = 140
const INTERVAL_S = 2

interface BackupOut { id: string; startTime: string; endTime: string; timeline: number; startLsn: string; stopLsn: string; walFiles: string[] }
interface RestoreOut { backupId: string; timeline: number; target: string; restoreCommand: string; provenUntil: string | null }
interface ListOut { sources: { postgres: { clusters: { systemId: string; recoveryWindows: { timeline: number; from: string; to: string }[]; timelines: { timeline: number; gaps: unknown[] }[] }[] } } }

const us = (iso: string) => BigInt(new Date(iso).getTime()) * 1000n + BigInt(/\.\d{3}(\d{3})Z$/.exec(iso)?.[1] ?? '0')

t.test('exact point-in-time restore through the tidemark CLI', async (t) => {
  const pg = await startPostgres(t, { settings: { track_commit_timestamp: 'on', autovacuum: 'off' } })
  const root = await serverTempDir('tidemark-pitr-cli-')
  t.teardown(() => removeTempDir(root))
  const repo = join(root, 'repo')
  const cfg = await writeConfig(join(root, 'tidemark.yaml'), { repo, url: pg.replicationUrl, slot: 'tidemark_pitr', walDir: join(root, 'wal'), passphrase: PASSPHRASE, intervalSeconds: INTERVAL_S })
  t.equal((await cli(cfg, ['repo', 'init'])).code, 0, 'repository created')

  const archive = startArchive(t, cfg)
  await waitFor('the archive to stream', async () => (await pg.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'tidemark_pitr'")) === 't', 30_000)
  await pg.psql('CREATE TABLE tick (id int PRIMARY KEY, ts timestamptz NOT NULL)')

  const a = json<BackupOut>(await cli(cfg, ['backup', 'postgres', '--json']), 'backup A')
  t.match(a, { timeline: 1, id: /^\d{8}T\d{6}Z-pg-[0-9a-f]{4}$/ }, `backup A ${a.id} before the writer starts`)

  // The writer: one commit every ~50 ms; backup B is taken while it runs.
  const writer = pg.psql(`DO $$ BEGIN FOR i IN 1..${ROWS} LOOP INSERT INTO tick VALUES (i, clock_timestamp()); COMMIT; PERFORM pg_sleep(0.05); END LOOP; END $$`)
  await waitFor('the first commits', async () => Number(await pg.psql('SELECT count(*) FROM tick')) >= 30, 30_000, 50)
  const b = json<BackupOut>(await cli(cfg, ['backup', 'postgres', '--json']), 'backup B')
  const duringB = Number(await pg.psql('SELECT count(*) FROM tick'))
  t.ok(duringB < ROWS - 30, `backup B ended while the writer ran (${duringB} rows by then)`)
  await writer
  const commits = await commitsOf(pg, 'tick')
  t.equal(commits.length, ROWS)
  const last = commits.at(-1) as Commit

  const list = async () => json<ListOut>(await cli(cfg, ['list', '--source', 'postgres', '--json']), 'list').sources.postgres.clusters
  await waitFor('the recovery window to reach the last commit', async () => {
    const w = (await list())[0]?.recoveryWindows.at(-1)
    return w !== undefined && us(w.to) > last.us
  }, 30_000, 500)
  const [cluster] = await list()
  t.equal(cluster?.recoveryWindows.length, 1, 'one recovery window')
  t.equal(cluster?.recoveryWindows[0]?.from, a.endTime, 'it starts where backup A became consistent')
  t.same(cluster?.timelines.map((x) => x.gaps), [[]], 'no gaps')

  let n = 0
  const restoreTo = async (at: string, asJson = true) => {
    const dir = join(root, `restore-${++n}`)
    return { dir, result: await cli(cfg, ['restore', 'postgres', '--at', at, '--target-dir', dir, ...(asJson ? ['--json'] : [])]) }
  }
  const scratch = await serverTempDir('tidemark-tap-scratch-')
  t.teardown(() => removeTempDir(scratch))
  const start = (dir: string) => startRestored(dir, scratch, t, { waitForPromotion: true, timeoutMs: 90_000, replicationPassword: pg.replicationPassword })
  const upTo = (id: number) => commits.filter((c) => c.id <= id).map((c) => c.id)
  const between = (x: Commit, y: Commit) => formatMicros((x.us + y.us) / 2n)

  const bEnd = us(b.endTime)
  const after = commits.filter((c) => c.us > bEnd + 1_000_000n)
  t.ok(after.length > 10, `${after.length} commits more than a second after backup B ended`)

  let restored: PgServer | undefined
  const x1 = after[Math.floor(after.length / 2)] as Commit
  await t.test('a target between two commits after backup B: exactly the rows committed up to it', async (t) => {
    const x = x1
    const y = commits[x.id] as Commit
    const { dir, result } = await restoreTo(between(x, y))
    const out = json<RestoreOut>(result, 'restore')
    t.equal(out.backupId, b.id, 'the newest backup ending before the target')
    const auto = await readFile(join(dir, 'postgresql.auto.conf'), 'utf8')
    t.match(auto, /restore_command = '.*bin\/tidemark --config .*tidemark\.yaml wal-fetch --repo file:\/\/.* --system-id \d+ %f %p'/, 'restore_command runs tidemark wal-fetch')
    t.notMatch(auto, PASSPHRASE, 'no secret in the data directory')
    t.match(auto, /recovery_target_time = '.*\+00:00'/)
    restored = await start(dir)
    t.same(await idsOf(restored, 'tick'), upTo(x.id), `rows 1..${x.id}, none after`)
  })

  await t.test('a target while backup B ran: backup A is used', async (t) => {
    const bStart = us(b.startTime)
    const inside = commits.filter((c) => c.us > bStart && c.us < bEnd)
    t.ok(inside.length >= 3, `${inside.length} commits during backup B`)
    const x = inside[0] as Commit
    const { result } = await restoreTo(between(x, commits[x.id] as Commit))
    t.equal(json<RestoreOut>(result, 'restore').backupId, a.id, 'the previous backup')
    const server = await start(join(root, `restore-${n}`))
    t.same(await idsOf(server, 'tick'), upTo(x.id))
    await server.stop()
  })

  await t.test('targets outside the window and a non-empty directory are refused, changing nothing', async (t) => {
    // One microsecond before backup A was consistent: inside its run, and no earlier backup exists.
    t.ok(us(a.startTime) < us(a.endTime) - 1n, 'the target lies inside backup A\'s run')
    const early = await restoreTo(formatMicros(us(a.endTime) - 1n), false)
    t.equal(early.result.code, 1, 'a target inside the first backup\'s run is refused')
    t.match(early.result.stderr, /^TM_ERR_RESTORE_OUT_OF_WINDOW .*before the earliest restorable time/)
    t.match(early.result.stderr, a.endTime, 'the message names the window')
    const late = await restoreTo(formatMicros(us(new Date(Date.now() + 3_600_000).toISOString())), false)
    t.equal(late.result.code, 1)
    t.match(late.result.stderr, /^TM_ERR_RESTORE_OUT_OF_WINDOW .*after the latest restorable time/)
    for (const r of [early, late]) t.rejects(readdir(r.dir), { code: 'ENOENT' }, 'no directory was created')
    const full = join(root, 'not-empty')
    await mkdir(full)
    await mkdir(join(full, 'something'))
    const busy = await cli(cfg, ['restore', 'postgres', '--at', 'latest', '--target-dir', full])
    t.equal(busy.code, 1)
    t.match(busy.stderr, /^TM_ERR_RESTORE_TARGET_NOT_EMPTY /)
    t.same(await readdir(full), ['something'], 'the directory is untouched')
    const bad = await cli(cfg, ['restore', 'postgres', '--at', '2026-11-28 09:40', '--target-dir', join(root, 'never')])
    t.equal(bad.code, 2)
    t.match(bad.stderr, /^TM_ERR_USAGE .*offset/)
  })

  await t.test('latest: every row acknowledged more than the upload interval + 3 s before a crash is restored', async (t) => {
    await pg.psql('CREATE TABLE late (id int PRIMARY KEY)')
    const acks: { id: number; at: number }[] = []
    const t0 = Date.now()
    for (let i = 1; Date.now() - t0 < 8000; i++) {
      await pg.psql(`INSERT INTO late VALUES (${i})`)
      acks.push({ id: i, at: Date.now() })
      await new Promise((r) => setTimeout(r, 100))
    }
    // The archiver dies with the primary: only what it uploaded before the crash counts.
    const crashAt = Date.now()
    await Promise.all([archive.kill(), pg.stop('immediate')])
    const { dir, result } = await restoreTo('latest')
    t.equal(json<RestoreOut>(result, 'restore').backupId, b.id)
    const server = await start(dir)
    const got = await idsOf(server, 'late')
    const must = acks.filter((x) => x.at < crashAt - (INTERVAL_S + 3) * 1000).map((x) => x.id)
    t.ok(must.length >= 10, `${must.length} rows acknowledged more than ${INTERVAL_S + 3} s before the crash`)
    t.same(got.slice(0, must.length), must, `all of them restored (${got.length} of ${acks.length} rows in all)`)
    t.same(got, Array.from({ length: got.length }, (_, i) => i + 1), 'and what was restored has no holes')
    t.equal((await idsOf(server, 'tick')).length, ROWS)
    await server.stop()
  })

  await t.test('a target on a new timeline: a promoted restore, archived in turn, restores from the old backup through its history', async (t) => {
    const s2 = restored as PgServer
    t.equal(await s2.psql('SELECT timeline_id FROM pg_control_checkpoint()'), '2', 'the first restore was promoted onto timeline 2')
    const cfg2 = await writeConfig(join(root, 'tidemark-2.yaml'), { repo, url: s2.replicationUrl, slot: 'tidemark_tl2', walDir: join(root, 'wal-2'), passphrase: PASSPHRASE, intervalSeconds: INTERVAL_S })
    const archive2 = startArchive(t, cfg2)
    await waitFor('the second archive to stream', async () => (await s2.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'tidemark_tl2'")) === 't', 30_000)
    await s2.psql('CREATE TABLE tick2 (id int PRIMARY KEY)')
    await s2.psql('DO $$ BEGIN FOR i IN 1..40 LOOP INSERT INTO tick2 VALUES (i); COMMIT; PERFORM pg_sleep(0.05); END LOOP; END $$')
    const commits2 = await commitsOf(s2, 'tick2')
    const last2 = commits2.at(-1) as Commit
    await waitFor('timeline 2 in the recovery window', async () => {
      const w = (await list())[0]?.recoveryWindows.find((x) => x.timeline === 2)
      return w !== undefined && us(w.to) > last2.us
    }, 30_000, 500)
    const stopped = await archive2.stop()
    t.same(stopped, { code: 0, signal: null }, 'SIGTERM stops the archive cleanly')
    t.match(archive2.output(), /WAL archive stopped/)
    const x = commits2[20] as Commit
    const { dir, result } = await restoreTo(between(x, commits2[21] as Commit))
    const out = json<RestoreOut>(result, 'restore')
    t.equal(out.timeline, 2, 'recovery follows timeline 2')
    t.ok([a.id, b.id].includes(out.backupId), 'from a backup of timeline 1')
    const server = await start(dir)
    t.same(await idsOf(server, 'tick'), upTo(x1.id), 'timeline 1 as it was when timeline 2 branched off')
    t.same(await idsOf(server, 'tick2'), commits2.filter((c) => c.id <= x.id).map((c) => c.id), `timeline 2 up to row ${x.id}`)
    t.equal(await idsOf(server, 'late').catch(() => 'no such table'), 'no such table', 'nothing of timeline 1 after the branch')
    await server.stop()
    await s2.stop()
  })
})
