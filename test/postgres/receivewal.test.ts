import t from 'tap'
import { join } from 'node:path'
import { readdir } from 'node:fs/promises'
import type { PgLogger } from '../../src/engine/postgres/conn.ts'
import { ReceiveWal, restartDelay, walOrder, type ReceiveWalExit, type WalFileEvent } from '../../src/engine/postgres/receivewal.ts'
import { classifyWalName, findGaps, nextSegmentName, walFileName, type WalName } from '../../src/engine/postgres/wal.ts'
import { PG_BIN, startPostgres, type PgServer, type Teardown } from '../harness/postgres.ts'
import { removeTempDir, tempDir, waitFor } from '../harness/proc.ts'

const MiB = 1 << 20

t.test('restart delays double up to the cap', async (t) => {
  t.same([1, 2, 3, 4, 5, 6, 7, 8].map((n) => restartDelay(n, 1000, 60_000)), [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000])
  t.equal(restartDelay(0, 500, 10_000), 500)
})

t.test('history files sort before segments, segments by timeline then number', async (t) => {
  const names = ['000000020000000000000001', '00000002.history', '000000010000000000000FFF', '000000010000000100000000', '00000003.history']
  const sorted = names.map((n) => classifyWalName(n, MiB) as WalName).sort(walOrder).map((c) => c.name)
  t.same(sorted, ['00000002.history', '00000003.history', '000000010000000000000FFF', '000000010000000100000000', '000000020000000000000001'])
})

interface Setup {
  pg: PgServer
  sup: ReceiveWal
  dir: string
  files: WalFileEvent[]
  exits: ReceiveWalExit[]
  warnings: Array<Record<string, unknown>>
}

async function setup(t: Teardown): Promise<Setup> {
  const pg = await startPostgres(t)
  const dir = await tempDir('tidemark-wal-')
  const warnings: Array<Record<string, unknown>> = []
  const logger: PgLogger = { debug() {}, info() {}, error() {}, warn: (o) => void warnings.push(o as Record<string, unknown>) }
  const sup = new ReceiveWal({ url: pg.replicationUrl, dir: join(dir, 'wal'), slot: 'tidemark_test', pgReceivewal: join(PG_BIN, 'pg_receivewal'), segSize: MiB, minBackoffMs: 200, maxBackoffMs: 800, pollMs: 100, logger })
  const files: WalFileEvent[] = []
  const exits: ReceiveWalExit[] = []
  sup.on('file', (e: WalFileEvent) => files.push(e))
  sup.on('exit', (e: ReceiveWalExit) => exits.push(e))
  t.teardown(async () => {
    await sup.stop()
    await removeTempDir(dir)
  })
  await pg.psql('CREATE TABLE w (id serial, note text)')
  await sup.start()
  await waitFor('the slot to be active', async () => (await pg.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'tidemark_test'")) === 't')
  return { pg, sup, dir, files, exits, warnings }
}

/** Writes a row, switches to a new segment, and returns the name of the segment just completed. */
async function writeAndSwitch(pg: PgServer, note: string): Promise<string> {
  return await pg.psql(`INSERT INTO w (note) VALUES ('${note}'); SELECT pg_walfile_name(pg_switch_wal())`)
}

const names = (files: WalFileEvent[]) => files.map((f) => f.name)

t.test('completed segments are reported as the server switches WAL; the partial holds fresh commits', async (t) => {
  const s = await setup(t)
  const iterated: string[] = []
  const consumer = (async () => {
    for await (const f of s.sup.files()) iterated.push(f.name)
  })()
  const completed: string[] = []
  for (let i = 0; i < 3; i++) completed.push(await writeAndSwitch(s.pg, `row ${i}`))
  await waitFor('three completed segments', async () => completed.every((n) => names(s.files).includes(n)), 20_000)
  t.same(findGaps(names(s.files), MiB), [], 'no gaps')
  t.ok(s.files.every((f) => f.type === 'segment'), 'only segments on timeline 1')
  t.same(names(s.files), [...names(s.files)].sort(), 'reported in order')
  t.same((await readdir(join(s.dir, 'wal'))).filter((n) => !n.endsWith('.partial')).sort(), names(s.files).sort(), 'every completed file in the directory was reported')

  const marker = `partial-marker-${Date.now()}`
  await s.pg.psql(`INSERT INTO w (note) VALUES ('${marker}')`)
  const partial = await waitFor('the commit in the partial segment', async () => {
    const p = await s.sup.currentPartial()
    return p?.data.includes(marker) ? p : undefined
  }, 10_000, 50)
  t.equal(partial.segmentName, nextSegmentName(completed.at(-1) as string, MiB), 'the partial is the segment after the last switch')
  t.equal(partial.data.length, MiB, 'pg_receivewal pads the partial to a full segment')

  await s.sup.remove(completed[0] as string)
  t.notOk((await readdir(join(s.dir, 'wal'))).includes(completed[0] as string), 'remove deletes the stored file')
  await t.rejects(s.sup.remove(partial.name), { code: 'TM_ERR_POSTGRES_WAL_NAME' }, 'the partial cannot be removed')
  await s.sup.stop()
  await consumer
  t.same(iterated, names(s.files), 'the async iterator saw every file and ended at stop')
  t.equal(s.exits.length, 0, 'no unplanned exits')
})

t.test('pg_receivewal killed mid-segment is restarted and no segment is missing', async (t) => {
  const s = await setup(t)
  const first = await writeAndSwitch(s.pg, 'before kill')
  const marker = `mid-segment-${Date.now()}`
  await s.pg.psql(`INSERT INTO w (note) SELECT '${marker}' || g FROM generate_series(1, 2000) g`)
  const partial = await waitFor('the mid-segment commit to arrive', async () => {
    const p = await s.sup.currentPartial()
    return p?.data.includes(marker) ? p : undefined
  }, 10_000, 50)
  const pid = s.sup.pid as number
  process.kill(pid, 'SIGKILL')
  await waitFor('a restart', async () => s.sup.pid !== undefined && s.sup.pid !== pid, 10_000, 50)
  t.equal(s.sup.restarts, 1, 'restarted once')
  t.equal(s.exits[0]?.signal, 'SIGKILL', 'the exit is reported with its signal')
  t.ok(s.warnings.some((w) => w.status === 'killed by SIGKILL'), 'and logged')

  // The server keeps writing while pg_receivewal is down and after it is back.
  await s.pg.psql(`INSERT INTO w (note) SELECT 'after kill ' || g FROM generate_series(1, 2000) g`)
  const completed: string[] = []
  for (let i = 0; i < 3; i++) completed.push(await writeAndSwitch(s.pg, `after restart ${i}`))
  const last = completed.at(-1) as string
  await waitFor(`segment ${last}`, async () => names(s.files).includes(last), 20_000)
  const got = names(s.files)
  t.same(findGaps(got, MiB), [], 'no gaps in what was reported')
  t.ok(got.includes(first) && got.includes(partial.segmentName), 'the segment being written at the kill was completed and reported')
  const from = classifyWalName(first, MiB) as { segno: bigint }
  const to = classifyWalName(last, MiB) as { segno: bigint }
  const expected: string[] = []
  for (let n = from.segno; n <= to.segno; n++) expected.push(walFileName(1, n, MiB))
  t.same(got.filter((n) => expected.includes(n)).sort(), expected, 'every segment from before the kill to the last switch')
})

t.test('restarts back off while the server is down and resume when it is back', async (t) => {
  const s = await setup(t)
  const before = await writeAndSwitch(s.pg, 'before outage')
  await waitFor(`segment ${before}`, async () => names(s.files).includes(before), 20_000)
  await s.pg.stop('fast')
  await waitFor('three failed restarts', async () => s.exits.length >= 4, 20_000, 50)
  t.same(s.exits.slice(0, 4).map((e) => e.restartInMs), [200, 400, 800, 800], 'delays double up to the cap')
  t.ok(s.exits.slice(1).every((e) => /connection|connect|server/i.test(e.stderr)), 'the reason (stderr) is kept')
  await s.pg.restart()
  const after = await writeAndSwitch(s.pg, 'after outage')
  await waitFor(`segment ${after}`, async () => names(s.files).includes(after), 20_000)
  t.same(findGaps(names(s.files), MiB), [], 'no gap across the outage')
})

t.test('slot names are checked before anything runs', async (t) => {
  for (const slot of ['Bad', 'has space', 'x"; DROP', '', 'a'.repeat(64)]) {
    t.throws(() => new ReceiveWal({ url: 'postgresql://x@127.0.0.1/x', dir: '/nonexistent', slot, pgReceivewal: 'pg_receivewal', segSize: MiB }), { code: 'TM_ERR_CONFIG_INVALID' }, JSON.stringify(slot))
  }
})
