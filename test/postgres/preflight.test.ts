import t from 'tap'
import { chmod, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { TidemarkError } from '../../src/errors.ts'
import { evaluatePreflight, gatherPreflightFacts, preflight, type PreflightFacts, type SqlFacts } from '../../src/engine/postgres/preflight.ts'
import { ReceiveWal } from '../../src/engine/postgres/receivewal.ts'
import { PG_BIN, serverTempDir, startPostgres } from '../harness/postgres.ts'
import { removeTempDir, tempDir, waitFor } from '../harness/proc.ts'

const MiB = 1 << 20
const TOOLS = ['pg_basebackup', 'pg_receivewal'] as const

const goodSql: SqlFacts = {
  serverVersionNum: 150018, walLevel: 'replica', maxWalSenders: 10, walSendersInUse: 1, maxReplicationSlots: 10, slotsInUse: 1,
  slotExists: false, slotActive: false, roleName: 'tm', canReplicate: true, tablespaces: [],
}
const good: PreflightFacts = {
  sql: goodSql,
  replication: { systemId: '1', timeline: 1, xlogPos: 0x3000000n, walLevel: 'replica', walSegSize: 16 * MiB, serverVersionNum: 150018 },
  tools: [{ name: 'pg_basebackup', tool: { name: 'pg_basebackup', path: '/x/pg_basebackup', major: 15, version: '15.18' } }],
}
const codes = (f: PreflightFacts, needs = {}) => evaluatePreflight(f, needs).map((e) => e.code)

t.test('evaluatePreflight (table)', async (t) => {
  const cases: Array<[string, PreflightFacts, object, string[]]> = [
    ['a fit server', good, {}, []],
    ['wal_level minimal', { ...good, sql: { ...goodSql, walLevel: 'minimal', maxWalSenders: 0, walSendersInUse: 0 } }, {}, ['TM_ERR_POSTGRES_WAL_LEVEL']],
    ['no REPLICATION', { ...good, sql: { ...goodSql, canReplicate: false } }, {}, ['TM_ERR_POSTGRES_NO_REPLICATION']],
    ['all WAL senders busy', { ...good, sql: { ...goodSql, maxWalSenders: 2, walSendersInUse: 2 } }, {}, ['TM_ERR_POSTGRES_WAL_SENDERS']],
    ['two needed, one free', { ...good, sql: { ...goodSql, maxWalSenders: 2, walSendersInUse: 1 } }, { walSendersNeeded: 2 }, ['TM_ERR_POSTGRES_WAL_SENDERS']],
    ['slot active elsewhere', { ...good, sql: { ...goodSql, slotExists: true, slotActive: true } }, { slot: 's' }, ['TM_ERR_POSTGRES_SLOTS']],
    ['no free slot for a new one', { ...good, sql: { ...goodSql, slotsInUse: 10 } }, { slot: 's' }, ['TM_ERR_POSTGRES_SLOTS']],
    ['existing slot needs no free one', { ...good, sql: { ...goodSql, slotsInUse: 10, slotExists: true } }, { slot: 's' }, []],
    ['two tablespaces', { ...good, sql: { ...goodSql, tablespaces: ['fast', 'slow'] } }, {}, ['TM_ERR_POSTGRES_TABLESPACES']],
    ['tool of another major', { ...good, tools: [{ name: 'pg_basebackup', tool: { name: 'pg_basebackup', path: '/x', major: 16, version: '16.1' } }] }, {}, ['TM_ERR_POSTGRES_TOOL_VERSION']],
    ['only replication access (no SQL)', { ...good, sql: undefined, sqlError: new TidemarkError('TM_ERR_POSTGRES_AUTH', 'no pg_hba.conf entry') }, {}, []],
    ['unreachable', { tools: [], sqlError: new TidemarkError('TM_ERR_POSTGRES_UNREACHABLE', 'x'), replicationError: new TidemarkError('TM_ERR_POSTGRES_UNREACHABLE', 'x') }, {}, ['TM_ERR_POSTGRES_UNREACHABLE']],
    ['several problems, most fundamental first', { ...good, sql: { ...goodSql, canReplicate: false, tablespaces: ['x'] }, replicationError: new TidemarkError('TM_ERR_POSTGRES_NO_REPLICATION', 'x') }, {}, ['TM_ERR_POSTGRES_NO_REPLICATION', 'TM_ERR_POSTGRES_TABLESPACES']],
  ]
  for (const [name, facts, needs, expected] of cases) t.same(codes(facts, needs), expected, name)
  const msg = evaluatePreflight({ ...good, sql: { ...goodSql, maxWalSenders: 2, walSendersInUse: 2 } })[0]?.message
  t.match(msg, /max_wal_senders = 2.*raise max_wal_senders/, 'the message says what to change')
})

t.test('a fit server passes and is described', async (t) => {
  const pg = await startPostgres(t)
  const r = await preflight({ url: pg.replicationUrl, binDir: PG_BIN, tools: [...TOOLS], slot: 'tidemark' })
  t.equal(r.timeline, 1)
  t.equal(r.walSegSize, MiB)
  t.equal(r.serverMajor, 15)
  t.equal(r.tools.pg_basebackup?.path, join(PG_BIN, 'pg_basebackup'))
  t.same(r.warnings, [])
  t.equal(await pg.psql('SELECT count(*) FROM pg_replication_slots'), '0', 'nothing was created')
})

t.test('bad servers and roles give clear errors and change nothing', async (t) => {
  const [pg, minimal] = await Promise.all([startPostgres(t, { maxWalSenders: 1 }), startPostgres(t, { walLevel: 'minimal' })])
  const check = (url: string, extra = {}) => preflight({ url, binDir: PG_BIN, tools: [...TOOLS], ...extra })

  await t.rejects(check(minimal.replicationUrl), { code: 'TM_ERR_POSTGRES_WAL_LEVEL', message: /wal_level = replica/ }, 'wal_level minimal')

  await pg.psql("CREATE ROLE plain LOGIN PASSWORD 'pw'")
  await t.rejects(check(pg.urlFor('plain', 'pw')), { code: 'TM_ERR_POSTGRES_NO_REPLICATION', message: /ALTER ROLE "plain" REPLICATION/ }, 'role without REPLICATION')
  await t.rejects(check(pg.urlFor('tidemark', 'wrong')), { code: 'TM_ERR_POSTGRES_AUTH' }, 'wrong password')
  await t.rejects(check(`postgresql://tidemark:x@127.0.0.1:1/postgres`), { code: 'TM_ERR_POSTGRES_UNREACHABLE' }, 'nothing listening')

  const tsDir = await serverTempDir('tidemark-ts-')
  t.teardown(() => removeTempDir(tsDir))
  await pg.psql(`CREATE TABLESPACE extra LOCATION '${tsDir}'`)
  await t.rejects(check(pg.replicationUrl), { code: 'TM_ERR_POSTGRES_TABLESPACES', message: /extra/ }, 'a second tablespace')
  await pg.psql('DROP TABLESPACE extra')

  // The only WAL sender is taken by a WAL archive of another role (whose sessions plain roles see less of).
  const walDir = await tempDir('tidemark-pf-')
  t.teardown(() => removeTempDir(walDir))
  await pg.psql("CREATE ROLE archiver LOGIN REPLICATION PASSWORD 'pw'")
  const sup = new ReceiveWal({ url: pg.urlFor('archiver', 'pw'), dir: walDir, slot: 'busy', pgReceivewal: join(PG_BIN, 'pg_receivewal'), segSize: MiB })
  t.teardown(() => sup.stop())
  await sup.start()
  await waitFor('the archive to stream', async () => (await pg.psql("SELECT count(*) FROM pg_stat_replication")) === '1')
  t.equal((await gatherPreflightFacts({ url: pg.replicationUrl, binDir: PG_BIN, tools: [] })).sql?.walSendersInUse, 1, 'another role\'s WAL sender is counted')
  const busy = await check(pg.replicationUrl, { slot: 'busy' }).then(() => undefined, (e: unknown) => e)
  t.equal(busy instanceof TidemarkError && busy.code, 'TM_ERR_POSTGRES_WAL_SENDERS', 'no free WAL sender')
  t.same(((busy as TidemarkError).details?.problems as Array<{ code: string }>).map((p) => p.code), ['TM_ERR_POSTGRES_WAL_SENDERS', 'TM_ERR_POSTGRES_SLOTS'], 'and the slot is taken too')
  await sup.stop()
  t.equal(await pg.psql("SELECT string_agg(slot_name, ',') FROM pg_replication_slots"), 'busy', 'only the archive\'s own slot exists: preflight created none')
})

t.test('pg_hba.conf without a replication entry for the role', async (t) => {
  const pg = await startPostgres(t)
  const hba = join(pg.dataDir, 'pg_hba.conf')
  await writeFile(hba, (await readFile(hba, 'utf8')).replace(/^host\s+replication\s+all.*$/m, ''))
  await pg.psql('SELECT pg_reload_conf()')
  await t.rejects(preflight({ url: pg.replicationUrl, binDir: PG_BIN, tools: [...TOOLS] }), { code: 'TM_ERR_POSTGRES_NO_REPLICATION', message: /pg_hba\.conf/ })
})

t.test('missing tools and tools of another major version', async (t) => {
  const pg = await startPostgres(t)
  const bin = await tempDir('tidemark-bin-')
  t.teardown(() => removeTempDir(bin))
  await symlink(join(PG_BIN, 'psql'), join(bin, 'psql'))
  // A stand-in for a PostgreSQL 14 pg_basebackup: only its version answer matters here.
  await writeFile(join(bin, 'pg_basebackup'), '#!/bin/sh\necho "pg_basebackup (PostgreSQL) 14.10"\n')
  await chmod(join(bin, 'pg_basebackup'), 0o755)
  const e = (await preflight({ url: pg.replicationUrl, binDir: bin, tools: [...TOOLS] }).then(() => undefined, (x: unknown) => x)) as TidemarkError
  t.ok(e instanceof TidemarkError, 'preflight fails')
  t.equal(e.code, 'TM_ERR_POSTGRES_TOOL_VERSION')
  t.match(e.message, /PostgreSQL 14\.10 but the server is PostgreSQL 15.*postgresql-client-15/)
  t.same((e.details?.problems as Array<{ code: string }>).map((p) => p.code), ['TM_ERR_POSTGRES_TOOL_VERSION', 'TM_ERR_POSTGRES_TOOL_MISSING'])
  t.match((e.details?.problems as Array<{ message: string }>)[1]?.message, /pg_receivewal was not found in postgres.binDir/)
  await t.rejects(preflight({ url: pg.replicationUrl, tools: [...TOOLS], slot: 'Bad-Name' }), { code: 'TM_ERR_CONFIG_INVALID' })
})
