import t from 'tap'
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { isTidemarkError } from '../../src/errors.ts'
import { psql } from '../../src/engine/postgres/psql.ts'
import { startPostgres } from '../harness/postgres.ts'

t.test('two servers at once, each with its own data, roles and settings', async (t) => {
  const [a, b] = await Promise.all([startPostgres(t), startPostgres(t, { walLevel: 'minimal' })])
  t.not(a.port, b.port, 'distinct ports')
  await a.psql('CREATE TABLE only_on_a (x int)')
  t.equal(await a.psql("SELECT count(*) FROM pg_class WHERE relname = 'only_on_a'"), '1')
  t.equal(await b.psql("SELECT count(*) FROM pg_class WHERE relname = 'only_on_a'"), '0', 'b is a different cluster')
  t.equal(await a.psql('SHOW wal_level'), 'replica')
  t.equal(await b.psql('SHOW wal_level'), 'minimal')
  t.equal(await b.psql('SHOW max_wal_senders'), '0', 'minimal implies max_wal_senders = 0')
  t.equal(await a.psql("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'"), String(1 << 20), '1 MiB WAL segments')
})

t.test('the replication role logs in with its password only', async (t) => {
  const pg = await startPostgres(t)
  t.equal(await psql(pg.replicationUrl, 'SELECT current_user'), 'tidemark')
  t.equal(await psql(pg.replicationUrl, "SELECT rolreplication FROM pg_roles WHERE rolname = current_user"), 't')
  await t.rejects(psql(pg.urlFor('tidemark', 'wrong'), 'SELECT 1'), { code: 'TM_ERR_POSTGRES_AUTH' })
  const err = await psql(pg.urlFor('tidemark'), 'SELECT 1').catch((e: unknown) => e)
  t.ok(isTidemarkError(err, 'TM_ERR_POSTGRES_AUTH'), 'no password: auth error')
})

t.test('stop, restart and kill', async (t) => {
  const pg = await startPostgres(t)
  await pg.psql('CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)')
  const port = pg.port
  await pg.restart()
  t.equal(pg.port, port, 'same port after restart')
  t.equal(await pg.psql('SELECT x FROM kept'), '42', 'data survives a restart')
  await pg.kill()
  t.notOk(pg.running)
  await t.rejects(psql(pg.superuserUrl, 'SELECT 1'), { code: 'TM_ERR_POSTGRES_UNREACHABLE' })
  await pg.restart()
  t.equal(await pg.psql('SELECT x FROM kept'), '42', 'crash recovery after kill keeps committed data')
  await pg.stop('smart')
  t.notOk(pg.running)
  await t.rejects(access(join(pg.dataDir, 'postmaster.pid')), 'a clean stop removes postmaster.pid')
})
