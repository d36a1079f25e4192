/**
 * The core correctness experiment for point-in-time restore, with the building blocks
 * alone (no repository): WAL archived by the ReceiveWal supervisor into a directory
 * that stands for the repository, a base backup streamed by startBaseBackup and
 * extracted with tar, recovery settings from recovery.ts, and a restore_command script
 * that behaves like `tidemark wal-fetch` (a complete segment, else its newest
 * `.partial` upload, else exit 1). Every commit's exact time comes from
 * track_commit_timestamp, which records the same timestamp recovery compares with.
 */
import t from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { startBaseBackup, type BaseBackupResult } from '../../src/engine/postgres/basebackup.ts'
import { ReceiveWal, type WalFileEvent } from '../../src/engine/postgres/receivewal.ts'
import { findGaps, formatLsn, parseHistory, segmentRange } from '../../src/engine/postgres/wal.ts'
import { recoverySettings, walFetchCommand, writeRecoveryConfig, type RecoveryTarget } from '../../src/engine/postgres/recovery.ts'
import { rows } from '../../src/engine/postgres/psql.ts'
import { PG_BIN, serverTempDir, startPostgres, startPostgresOnDir, type PgServer } from '../harness/postgres.ts'
import { removeTempDir, waitFor } from '../harness/proc.ts'

const MiB = 1 << 20
const ROWS = 120

// Mirrors what `tidemark wal-fetch` must do: the complete segment, else its .partial upload.
const FETCH_SCRIPT = `#!/bin/sh
store="$1"; f="$3"; p="$4"
if [ -f "$store/$f" ]; then exec cp "$store/$f" "$p"; fi
if [ -f "$store/$f.partial" ]; then exec cp "$store/$f.partial" "$p"; fi
exit 1
`

interface Commit {
  id: number
  /** Commit time in microseconds since the epoch. */
  us: bigint
}

const targetAt = (us: bigint): RecoveryTarget => ({ time: new Date(Number(us / 1000n)), microsecond: Number(us % 1000n) })

t.test('point-in-time recovery from a streamed base backup and an archive fed by pg_receivewal', async (t) => {
  // No autovacuum: its commits would land at unpredictable times in the WAL.
  const pg = await startPostgres(t, { settings: { track_commit_timestamp: 'on', autovacuum: 'off' } })
  const root = await serverTempDir('tidemark-pitr-')
  t.teardown(() => removeTempDir(root))
  // A path with a space and a % sign checks the restore_command quoting end to end.
  const store = join(root, 'store 100%')
  await mkdir(store)
  const fetchScript = join(root, 'fetch.sh')
  await writeFile(fetchScript, FETCH_SCRIPT)
  const restoreCommand = walFetchCommand(['/bin/sh', fetchScript, store])

  // The archive: each completed file is "uploaded" (copied to the store), then removed.
  const sup = new ReceiveWal({ url: pg.replicationUrl, dir: join(root, 'incoming'), slot: 'pitr', pgReceivewal: join(PG_BIN, 'pg_receivewal'), segSize: MiB, pollMs: 100 })
  t.teardown(() => sup.stop())
  const archiver = (async () => {
    for await (const f of sup.files()) {
      await copyFile(f.path, join(store, f.name))
      // pg_receivewal writes 0600 files; the restored server's user must read the copies.
      await chmod(join(store, f.name), 0o644)
      await sup.remove(f.name)
    }
  })()
  await sup.start()
  await waitFor('the archive to stream', async () => (await pg.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'pitr'")) === 't')

  // The writer: one commit every ~50 ms, each row holding its own clock_timestamp().
  await pg.psql('CREATE TABLE tick (id int PRIMARY KEY, ts timestamptz NOT NULL)')
  const writer = pg.psql(`DO $$ BEGIN FOR i IN 1..${ROWS} LOOP INSERT INTO tick VALUES (i, clock_timestamp()); COMMIT; PERFORM pg_sleep(0.05); END LOOP; END $$`)
  await waitFor('the first commits', async () => Number(await pg.psql('SELECT count(*) FROM tick')) >= 20, 30_000, 50)

  // The base backup, held up mid-stream so commits land between its start and its end.
  const base = join(root, 'base')
  await mkdir(base, { mode: 0o700 })
  let pausedAt = 0
  let resumedAt = 0
  let seen = 0
  const hold = new Transform({
    transform(chunk: Buffer, _e, cb) {
      seen += chunk.length
      if (pausedAt !== 0 || seen < 4 * MiB) return cb(null, chunk)
      pausedAt = Date.now()
      setTimeout(() => {
        resumedAt = Date.now()
        cb(null, chunk)
      }, 1500)
    },
  })
  const tar = spawn('tar', ['-x', '-C', base], { stdio: ['pipe', 'inherit', 'inherit'] })
  const tarDone = new Promise((resolve) => tar.once('close', resolve))
  const backup = startBaseBackup({ url: pg.replicationUrl, pgBasebackup: join(PG_BIN, 'pg_basebackup') })
  await pipeline(backup.stream, hold, tar.stdin)
  const bb: BaseBackupResult = await backup.done
  t.equal(await tarDone, 0, 'the stream extracts')
  t.ok(pausedAt > 0 && resumedAt - pausedAt >= 1400, 'the backup was held up mid-stream')

  // The server switches segments at the end of a backup: its WAL arrives without help.
  const needed = segmentRange(bb.timeline, bb.startLsn, bb.stopLsn, MiB)
  await waitFor('the backup\'s WAL in the store', async () => {
    const have = execFileSync('ls', [store]).toString().split('\n')
    return needed.every((n) => have.includes(n))
  }, 10_000)
  t.pass(`segments ${needed.join(', ')} archived without a forced switch`)

  await writer
  // Complete the last segment, so everything up to here is in complete segments.
  const lastFull = await pg.psql('SELECT pg_walfile_name(pg_switch_wal())')
  await waitFor(`segment ${lastFull} in the store`, async () => execFileSync('ls', [store]).toString().split('\n').includes(lastFull), 20_000)

  const commits: Commit[] = rows(await pg.psql(`SELECT id, (extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000000)::bigint FROM tick ORDER BY id`))
    .map(([id, us]) => ({ id: Number(id), us: BigInt(us as string) }))
  t.equal(commits.length, ROWS)
  for (let i = 1; i < commits.length; i++) if ((commits[i] as Commit).us <= (commits[i - 1] as Commit).us) t.fail('commit times increase with ids')

  let n = 0
  const restore = async (target: RecoveryTarget, opts: { expectFailure?: boolean } = {}): Promise<{ server?: PgServer; error?: Error }> => {
    const dir = join(root, `restore-${++n}`)
    execFileSync('cp', ['-a', base, dir])
    await writeRecoveryConfig(dir, recoverySettings({ restoreCommand, target }))
    try {
      const server = await startPostgresOnDir(dir, t, { waitForPromotion: true, timeoutMs: 60_000, replicationPassword: pg.replicationPassword })
      if (opts.expectFailure) t.fail('recovery was expected to fail')
      return { server }
    } catch (error) {
      if (!opts.expectFailure) throw error
      return { error: error as Error }
    }
  }
  const ids = async (s: PgServer) => (await s.psql('SELECT coalesce(string_agg(id::text, \',\' ORDER BY id), \'\') FROM tick')).split(',').filter((x) => x !== '').map(Number)
  const upTo = (id: number) => commits.filter((c) => c.id <= id).map((c) => c.id)

  const stopMs = bb.endTime.getTime()
  const after = commits.filter((c) => Number(c.us / 1000n) > stopMs + 1000)
  t.ok(after.length > 10, `${after.length} commits well after the backup ended`)

  await t.test('a target between two commits keeps exactly the rows committed at or before it', async (t) => {
    const a = after[Math.floor(after.length / 2)] as Commit
    const b = commits[a.id] as Commit // ids are 1-based: commits[a.id] is the next commit
    const { server } = await restore(targetAt((a.us + b.us) / 2n))
    t.same(await ids(server as PgServer), upTo(a.id), `rows 1..${a.id}`)
    t.equal(await (server as PgServer).psql('SELECT timeline_id FROM pg_control_checkpoint()'), '2', 'promoted onto a new timeline')

    // Archiving the restored server starts with the new timeline's history file.
    const walDir = join(root, 'restored-wal')
    const sup2 = new ReceiveWal({ url: (server as PgServer).replicationUrl, dir: walDir, slot: 'after_restore', pgReceivewal: join(PG_BIN, 'pg_receivewal'), segSize: MiB, pollMs: 100 })
    const seen: WalFileEvent[] = []
    sup2.on('file', (f: WalFileEvent) => seen.push(f))
    t.teardown(() => sup2.stop())
    await sup2.start()
    // No wait for pg_receivewal to connect: the slot reserved WAL when start() created it.
    await (server as PgServer).psql('CREATE TABLE on_timeline_2 (x int); SELECT pg_switch_wal()')
    await waitFor('the history file and a timeline-2 segment', async () => seen.some((f) => f.type === 'history') && seen.some((f) => f.name.startsWith('00000002') && f.type === 'segment'), 20_000)
    t.equal(seen[0]?.name, '00000002.history', 'the history file comes first')
    const history = parseHistory(await readFile(join(walDir, '00000002.history'), 'utf8'))
    t.equal(history.length, 1)
    t.equal(history[0]?.parentTimeline, 1)
    t.ok((history[0]?.switchLsn ?? 0n) > bb.stopLsn, `timeline 1 ended at ${formatLsn(history[0]?.switchLsn ?? 0n)}, after the backup`)
    t.match(history[0]?.reason, /before .*\+00/, `the switch reason: ${history[0]?.reason}`)
    t.same(findGaps(seen.filter((f) => f.name.startsWith('00000002')).map((f) => f.name), MiB), [])
    await sup2.stop()
    await (server as PgServer).stop()
  })

  await t.test('the target is inclusive, to the microsecond', async (t) => {
    const c = after[3] as Commit
    const exact = await restore(targetAt(c.us))
    t.same(await ids(exact.server as PgServer), upTo(c.id), `target = commit time of row ${c.id}: row ${c.id} is kept`)
    await exact.server?.stop()
    const before = await restore(targetAt(c.us - 1n))
    t.same(await ids(before.server as PgServer), upTo(c.id - 1), `target = 1 µs earlier: row ${c.id} is not`)
    await before.server?.stop()
  })

  await t.test('a target while the base backup was running cannot be reached', async (t) => {
    const during = commits.filter((c) => Number(c.us / 1000n) > pausedAt + 200 && Number(c.us / 1000n) < resumedAt - 200)
    t.ok(during.length >= 2, `${during.length} commits while the backup was held up`)
    const c = during[0] as Commit
    const { error } = await restore(targetAt(c.us), { expectFailure: true })
    t.match(String(error), /requested recovery stop point is before consistent recovery point/, 'PostgreSQL refuses: the earliest restorable time of a backup is its end')
  })

  await t.test('a target after the end of the archive is refused', async (t) => {
    const last = commits.at(-1) as Commit
    const { error } = await restore(targetAt(last.us + 60_000_000n), { expectFailure: true })
    t.match(String(error), /recovery ended before configured recovery target was reached/)
  })

  await t.test('a target after the last write is reached only once a later commit is archived', async (t) => {
    const archived = async (sql: string) => {
      const name = (await pg.psql(`${sql}; SELECT pg_walfile_name(pg_switch_wal())`)).split('\n').at(-1) as string
      await waitFor(`segment ${name} in the store`, async () => execFileSync('ls', [store]).toString().split('\n').includes(name), 20_000)
    }
    const target = BigInt(Date.now()) * 1000n
    await new Promise((r) => setTimeout(r, 100))
    await archived('CHECKPOINT') // WAL after the target, but no commit record
    const quiet = await restore(targetAt(target), { expectFailure: true })
    t.match(String(quiet.error), /recovery ended before configured recovery target was reached/, 'WAL past the target is not enough: recovery stops only at a later commit')
    await archived('SELECT txid_current()') // a heartbeat: an empty transaction that writes a commit record
    const { server } = await restore(targetAt(target))
    t.same(await ids(server as PgServer), upTo(ROWS), 'with a heartbeat commit after it, the target is reached with every row')
    await server?.stop()
  })

  await t.test('latest replays the uploaded .partial too', async (t) => {
    // These commits exist only in the segment pg_receivewal is still writing.
    await pg.psql(`INSERT INTO tick SELECT ${ROWS} + g, clock_timestamp() FROM generate_series(1, 10) g`)
    const lsn = await pg.psql('SELECT pg_current_wal_lsn()')
    await waitFor('the archive to have received it', async () => (await pg.psql(`SELECT flush_lsn >= '${lsn}' FROM pg_stat_replication`)) === 't', 10_000, 50)
    const partial = await sup.currentPartial()
    t.ok(partial, 'a partial segment exists')
    await writeFile(join(store, `${partial?.segmentName}.partial`), partial?.data ?? Buffer.alloc(0))
    const { server } = await restore('latest')
    t.same(await ids(server as PgServer), Array.from({ length: ROWS + 10 }, (_, i) => i + 1), 'every row, including those only in the partial')
    await server?.stop()
  })

  await sup.stop()
  await archiver
})
