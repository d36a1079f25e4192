/**
 * The WAL archiver against a real server and a real (local directory) repository:
 * pg_receivewal killed mid-segment is restarted and no segment is missing afterwards;
 * WAL that was never streamed (the slot dropped while the archive was down) shows up
 * as a reported gap, never papered over; the open segment and heartbeats are uploaded;
 * a slot moved back onto removed WAL is created again instead of failing for ever.
 */
import t from 'tap'
import { connect } from 'node:net'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { WalArchiver, type WalArchiverOptions } from '../../src/engine/postgres/archiver.ts'
import type { PgLogger } from '../../src/engine/postgres/conn.ts'
import { readCatalog } from '../../src/engine/postgres/catalog.ts'
import { replicationFacts } from '../../src/engine/postgres/preflight-facts.ts'
import { WalStore, listArchive } from '../../src/engine/postgres/wal-store.ts'
import { findGaps, formatLsn, parseLsn, parseSegmentName, type Gap } from '../../src/engine/postgres/wal.ts'
import { initRepository, readAll, type Repository } from '../../src/engine/repository/index.ts'
import { claimWalDir } from '../../src/engine/postgres/wal-dir-guard.ts'
import { segmentSystemId } from '../../src/engine/postgres/wal-page.ts'
import { createFsSink } from '../../src/sinks/fs.ts'
import { PG_BIN, startPostgres, type PgServer, type Teardown } from '../harness/postgres.ts'
import { removeTempDir, tempDir, waitFor } from '../harness/proc.ts'

const MiB = 1 << 20

interface Setup {
  /** The archivers' warnings and errors, to explain a failed wait. */
  logs: string[]
  pg: PgServer
  repo: Repository
  dir: string
  systemId: string
  archiver(slot: string, extra?: Partial<WalArchiverOptions>): WalArchiver
}

async function setup(t: Teardown): Promise<Setup> {
  const pg = await startPostgres(t)
  const dir = await tempDir('tidemark-archiver-')
  const repo = await initRepository(createFsSink(join(dir, 'repo')), { pipeline: { threads: 1 } })
  t.teardown(async () => {
    await repo.close()
    await removeTempDir(dir)
  })
  const { systemId } = await replicationFacts(pg.replicationUrl, join(PG_BIN, 'psql'))
  const logs: string[] = []
  const keep = (level: string) => (o: object, msg: string) => void logs.push(`${level} ${msg} ${JSON.stringify(o, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v instanceof Error ? v.message : v))}`)
  const logger: PgLogger = { debug() {}, info: keep('info'), warn: keep('warn'), error: keep('error') }
  const archiver = (slot: string, extra: Partial<WalArchiverOptions> = {}) => {
    const a = new WalArchiver({ logger,
      repo, systemId, segSize: MiB, replicationUrl: pg.replicationUrl, sqlUrl: pg.replicationUrl, dir: join(dir, 'wal'), slot,
      pgReceivewal: join(PG_BIN, 'pg_receivewal'), psqlPath: join(PG_BIN, 'psql'), intervalMs: 500, retryMs: 200,
      receive: { minBackoffMs: 200, maxBackoffMs: 800, pollMs: 100 }, ...extra,
    })
    t.teardown(() => a.stop())
    return a
  }
  return { logs, pg, repo, dir, systemId, archiver }
}

/** waitFor, and on a timeout the archivers' recent log lines in the error. */
async function until<T>(s: Setup, what: string, check: () => Promise<T | undefined | false>, timeoutMs?: number, everyMs?: number): Promise<T> {
  try {
    return await waitFor(what, check, timeoutMs, everyMs)
  } catch (err) {
    const files = await readdir(join(s.dir, 'wal')).catch((e: Error) => [e.message])
    throw new Error(`${(err as Error).message}\nWAL directory: ${files.join(' ')}\narchiver log:\n${s.logs.slice(-40).join('\n')}`)
  }
}

const switchWal = async (pg: PgServer, note: string) => pg.psql(`INSERT INTO w (note) VALUES ('${note}'); SELECT pg_walfile_name(pg_switch_wal())`)

t.test('pg_receivewal killed mid-segment is restarted; no segment is missing afterwards', async (t) => {
  const s = await setup(t)
  await s.pg.psql('CREATE TABLE w (id serial, note text)')
  const a = s.archiver('kill_test')
  const gaps: Gap[] = []
  a.on('gap', (g: Gap) => gaps.push(g))
  await a.start()
  await until(s, 'the slot to be active', async () => (await s.pg.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'kill_test'")) === 't')
  const first = await switchWal(s.pg, 'first')
  // Half a segment of WAL, so pg_receivewal is in the middle of one when it dies.
  await s.pg.psql("INSERT INTO w (note) SELECT repeat('x', 500) FROM generate_series(1, 800)")
  const lsn = await s.pg.psql('SELECT pg_current_wal_lsn()')
  await until(s, 'the receiver to have the half segment', async () => (await s.pg.psql(`SELECT restart_lsn >= '${lsn}' FROM pg_replication_slots WHERE slot_name = 'kill_test'`)) === 't', 10_000, 50)
  const pid = a.receiverPid as number
  t.ok(pid, 'pg_receivewal runs')
  t.ok((parseLsn(lsn) % BigInt(MiB)) > 0n, 'the kill lands mid-segment')
  process.kill(pid, 'SIGKILL')
  await until(s, 'pg_receivewal to be restarted', async () => a.receiverRestarts >= 1 && a.receiverPid !== undefined && a.receiverPid !== pid, 20_000)
  const completed: string[] = []
  for (let i = 0; i < 4; i++) completed.push(await switchWal(s.pg, `after ${i}`))
  const store = new WalStore(s.repo, s.systemId)
  await until(s, 'every completed segment in the repository', async () => (await Promise.all(completed.map((n) => store.has(n)))).every(Boolean), 20_000)
  await a.stop()

  const tl1 = (await listArchive(s.repo, s.systemId)).get(s.systemId)?.get(1)
  const names = (tl1?.segments ?? []).sort()
  t.same(findGaps(names, MiB), [], 'findGaps over the repository: none')
  const lo = parseSegmentName(first, MiB).segno
  const hi = parseSegmentName(completed.at(-1) as string, MiB).segno
  t.ok(names.includes(first) && names.includes(completed.at(-1) as string), `segments ${first} to ${completed.at(-1)} archived (${Number(hi - lo) + 1} of them)`)
  t.same(gaps, [], 'no gap reported')
  t.equal(a.stats.gaps.length, 0)
  t.ok(a.stats.heartbeats >= 1 && a.stats.partialUploads >= 1, `heartbeats ${a.stats.heartbeats}, partial uploads ${a.stats.partialUploads}`)
  const [cat] = await readCatalog(s.repo)
  t.ok((cat?.archive?.timelines.get(1)?.heartbeats.length ?? 0) >= 1, 'heartbeats recorded in the repository')
  const rec = await store.fileRecord(first)
  const head = (await readAll(await s.repo.readObject(rec!.ref))).subarray(0, 40)
  t.equal(segmentSystemId(head, parseSegmentName(first, MiB).segno * BigInt(MiB)), s.systemId, 'a stored segment reads back with its header naming the cluster')
  await t.rejects(claimWalDir(join(s.dir, 'wal'), '42'), { code: 'TM_ERR_POSTGRES_CONFIG', message: /belongs to the PostgreSQL cluster \d+, not to this server \(42\)/ }, 'the WAL directory is refused to another cluster')
})

t.test('WAL never streamed is a reported gap', async (t) => {
  const s = await setup(t)
  await s.pg.psql('CREATE TABLE w (id serial, note text)')
  const a = s.archiver('gap_test')
  await a.start()
  await until(s, 'the slot to be active', async () => (await s.pg.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'gap_test'")) === 't')
  const before = await switchWal(s.pg, 'before')
  const store = new WalStore(s.repo, s.systemId)
  await until(s, `${before} archived`, async () => store.has(before), 20_000)
  await a.stop()
  // The archive is down and its slot is dropped: the server recycles WAL nobody streamed.
  await s.pg.psql("SELECT pg_drop_replication_slot('gap_test')")
  for (let i = 0; i < 4; i++) await switchWal(s.pg, `lost ${i}`)
  await s.pg.psql('CHECKPOINT')
  const b = s.archiver('gap_test')
  const gaps: Gap[] = []
  b.on('gap', (g: Gap) => gaps.push(g))
  await b.start()
  await until(s, 'the slot to be active again', async () => (await s.pg.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'gap_test'")) === 't')
  const after = await switchWal(s.pg, 'after')
  await until(s, `${after} archived`, async () => store.has(after), 20_000)
  await b.stop()
  t.ok(gaps.length >= 1, `gap reported: ${gaps.map((g) => `${g.from}..${g.to}`).join(', ')}`)
  const [cat] = await readCatalog(s.repo)
  const repoGaps = cat?.gaps.get(1) ?? []
  t.ok(repoGaps.length >= 1, 'the repository listing shows it too')
  t.equal(repoGaps[0]?.from, gaps[0]?.from)
})

t.test('a slot moved back onto removed WAL is created again from WAL the server has', async (t) => {
  const s = await setup(t)
  await s.pg.psql('CREATE TABLE w (id serial, note text)')
  for (let i = 0; i < 4; i++) await switchWal(s.pg, `old ${i}`)
  await s.pg.psql('CHECKPOINT')
  await s.pg.psql("SELECT pg_create_physical_replication_slot('back_test', true)")
  // pg_receivewal reports its start position as flushed before the server refuses it,
  // which can move the slot back onto removed WAL: do the same, deterministically.
  await startReplicationWithFeedback(s.pg.host, s.pg.port, 'back_test', 0x200000n)
  const slotLsn = async () => s.pg.psql("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'back_test'")
  t.equal(await slotLsn(), '0/200000', 'the slot points at removed WAL')
  const a = s.archiver('back_test')
  await a.start()
  await until(s, 'the slot to be active again', async () => (await s.pg.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'back_test'")) === 't')
  t.ok(s.logs.some((l) => l.includes('it was dropped and is created again')), 'the reset is logged')
  t.ok(parseLsn(await slotLsn()) > 0x200000n, 'the slot points past the removed WAL')
  const after = await switchWal(s.pg, 'after')
  const store = new WalStore(s.repo, s.systemId)
  await until(s, `${after} archived`, async () => store.has(after), 20_000)
  await a.stop()
  const restarts = s.logs.filter((l) => l.startsWith('warn pg_receivewal stopped')).length
  t.ok(restarts <= 3, `pg_receivewal recovers after ${restarts} restarts, not a loop`)
})

/**
 * What pg_receivewal does when it starts: START_REPLICATION at `lsn` and, in the same
 * packet, a standby status update reporting `lsn` as flushed (the walsender reads it
 * before it finds the WAL removed). Speaks the protocol as the trusted superuser.
 */
async function startReplicationWithFeedback(host: string, port: number, slot: string, lsn: bigint): Promise<string> {
  const msg = (type: string, body: Buffer) => {
    const head = Buffer.alloc(5)
    head.write(type, 0, 'latin1')
    head.writeInt32BE(body.length + 4, 1)
    return Buffer.concat([head, body])
  }
  const params = Buffer.from(['user', 'postgres', 'database', 'postgres', 'replication', 'true', ''].join('\0') + '\0')
  const startup = Buffer.alloc(8)
  startup.writeInt32BE(8 + params.length, 0)
  startup.writeInt32BE(196608, 4)
  const status = Buffer.alloc(34)
  status.write('r', 0, 'latin1')
  status.writeBigInt64BE(lsn, 1)
  status.writeBigInt64BE(lsn, 9)
  status.writeBigInt64BE(lsn, 17)
  const sock = connect(port, host)
  let buf = Buffer.alloc(0)
  let sent = false
  return await new Promise<string>((resolve, reject) => {
    sock.on('error', reject)
    sock.on('connect', () => sock.write(Buffer.concat([startup, params])))
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      while (buf.length >= 5 && buf.length >= 1 + buf.readInt32BE(1)) {
        const type = String.fromCharCode(buf[0] as number)
        const body = buf.subarray(5, 1 + buf.readInt32BE(1))
        buf = buf.subarray(1 + buf.readInt32BE(1))
        if (type === 'Z' && !sent) {
          sent = true
          sock.write(Buffer.concat([msg('Q', Buffer.from(`START_REPLICATION SLOT ${slot} PHYSICAL ${formatLsn(lsn)}\0`)), msg('d', status)]))
        } else if (type === 'E') {
          sock.destroy()
          resolve(body.toString('latin1'))
        }
      }
    })
  })
}
