/**
 * The logical method against real PostgreSQL 15: a dump taken while a writer commits
 * holds exactly what its snapshot saw (checked with track_commit_timestamp against
 * the recorded `notBefore` / `at`), restores into an empty database on a second
 * server with every table's rows, sequences and a view intact (serially and with
 * `jobs: 2`), and a non-empty target is refused with nothing changed.
 */
import t from 'tap'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { restoreDump } from '../../src/engine/postgres/dump-restore.ts'
import { runDump } from '../../src/engine/postgres/dump.ts'
import { parseInstant } from '../../src/engine/postgres/instant.ts'
import { logicalPreflight, toolMismatch } from '../../src/engine/postgres/logical-preflight.ts'
import { rows } from '../../src/engine/postgres/psql.ts'
import { initRepository } from '../../src/engine/repository/index.ts'
import { TidemarkError } from '../../src/errors.ts'
import { createFsSink } from '../../src/sinks/fs.ts'
import { PG_BIN, startPostgres, type PgServer } from '../harness/postgres.ts'
import { removeTempDir, tempDir, waitFor } from '../harness/proc.ts'

const SCHEMA = `
CREATE TABLE odd (id int PRIMARY KEY, t text, j jsonb, n numeric(40,12), ts timestamptz, b bytea, ia int[], ta text[]);
INSERT INTO odd SELECT g,
  E'tab\\there, newline\\n, back\\\\slash, quote '' " , ünïcødé ✓ 🐘 ' || g,
  jsonb_build_object('g', g, 'nested', jsonb_build_array(1, 'two', null, true), 'esc', E'a\\u0001b'),
  g * 12345.678901234567 - 0.000000000001,
  timestamptz '2001-02-03 04:05:06.789012+00' + g * interval '1 hour 7 seconds',
  (SELECT string_agg(set_byte('\\x00'::bytea, 0, (i + g) % 256), '') FROM generate_series(0, 255) i),
  ARRAY[g, -g, NULL], ARRAY['a,b', E'c"d', NULL, '{x}']
FROM generate_series(1, 300) g;
CREATE TABLE counted (id bigserial PRIMARY KEY, v text);
INSERT INTO counted (v) SELECT md5(g::text) FROM generate_series(1, 2000) g;
DELETE FROM counted WHERE id > 1990;
CREATE SEQUENCE lone START 7 INCREMENT 3;
SELECT nextval('lone'), nextval('lone');
CREATE VIEW summary AS SELECT count(*) AS n, sum(n) AS total, max(ts) AS latest FROM odd;
CREATE TABLE tick (id int PRIMARY KEY, ts timestamptz NOT NULL);
`

const CHECKSUM = (table: string) => `SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM ${table} t`

async function fingerprint(pg: PgServer, db: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const table of ['odd', 'counted', 'summary']) out[table] = await pg.psql(CHECKSUM(table), db)
  out.counted_seq = await pg.psql('SELECT last_value || \':\' || is_called FROM counted_id_seq', db)
  out.lone = await pg.psql("SELECT last_value || ':' || is_called FROM lone", db)
  return out
}

t.test('toolMismatch names the tool of another major version', async (t) => {
  const e = toolMismatch([{ name: 'pg_dump', path: '/x/pg_dump', major: 14, version: '14.9' }], 15)
  t.equal(e?.code, 'TM_ERR_POSTGRES_TOOL_VERSION')
  t.match(e?.message, /PostgreSQL 14\.9 but the server is PostgreSQL 15/)
  t.equal(toolMismatch([{ name: 'pg_dump', path: '/x/pg_dump', major: 15, version: '15.1' }], 15), undefined)
})

t.test('dump on a snapshot, restore into empty databases on another server', async (t) => {
  const [src, dst] = await Promise.all([startPostgres(t, { settings: { track_commit_timestamp: 'on' } }), startPostgres(t)])
  const dir = await tempDir('tidemark-logical-')
  t.teardown(() => removeTempDir(dir))
  const repo = await initRepository(createFsSink(join(dir, 'repo')), { pipeline: { threads: 1 } })
  t.teardown(() => repo.close())
  await src.psql('CREATE DATABASE app')
  await src.psql(SCHEMA, 'app')
  for (const db of ['r1', 'r2']) await dst.psql(`CREATE DATABASE ${db}`)

  const srcUrl = src.urlFor('postgres', undefined, 'app')
  const pf = await logicalPreflight(srcUrl, ['pg_dump'], PG_BIN)
  t.same({ major: pf.serverMajor, db: pf.database }, { major: 15, db: 'app' }, 'preflight sees the server and database')

  // A writer commits a row every ~20 ms while the dump runs.
  const writer = src.psql('DO $$ BEGIN FOR i IN 1..150 LOOP INSERT INTO tick VALUES (i, clock_timestamp()); COMMIT; PERFORM pg_sleep(0.02); END LOOP; END $$', 'app')
  await waitFor('the first commits', async () => Number(await src.psql('SELECT count(*) FROM tick', 'app')) >= 40, 30_000, 20)
  const dump = pf.tools.pg_dump as NonNullable<typeof pf.tools.pg_dump>
  const r = await runDump({ repo, url: srcUrl, pgDump: dump.path, pgDumpVersion: dump.version, psqlPath: pf.tools.psql?.path })
  await writer
  t.equal(r.manifest.method, 'postgres-dump')
  t.equal(r.manifest.postgres.database, 'app')
  t.ok(r.manifest.postgres.dumpBytes > 300 * 256, `${r.manifest.postgres.dumpBytes} bytes dumped`)

  const restore = (db: string, jobs: number) => restoreDump({ repo, backupId: r.id, targetUrl: dst.urlFor('postgres', undefined, db), jobs, pgRestore: join(PG_BIN, 'pg_restore'), psqlPath: join(PG_BIN, 'psql'), tmpDir: dir })
  await restore('r1', 1)
  const want = await fingerprint(src, 'app')
  t.same(await fingerprint(dst, 'r1'), want, 'serial restore: every table, sequence and the view match')

  // Visibility: the snapshot decides; the recorded times bound it.
  const at = parseInstant(r.manifest.postgres.at)
  const notBefore = parseInstant(r.manifest.postgres.notBefore)
  t.ok(notBefore <= at, 'notBefore ≤ at')
  const commits = rows(await src.psql('SELECT id, (extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000000)::bigint FROM tick ORDER BY id', 'app')).map(([id, us]) => ({ id: Number(id), us: BigInt(us as string) }))
  const restored = new Set(rows(await dst.psql('SELECT id FROM tick', 'r1')).map(([id]) => Number(id)))
  t.equal(commits.length, 150)
  const before = commits.filter((c) => c.us < notBefore)
  const after = commits.filter((c) => c.us > at)
  t.ok(before.length >= 40 && after.length > 10, `${before.length} commits before the snapshot, ${after.length} after it`)
  t.same(before.filter((c) => !restored.has(c.id)), [], 'every row committed before the snapshot is restored')
  t.same(commits.filter((c) => restored.has(c.id) && c.us > at), [], 'no restored row was committed after `at`')

  await restore('r2', 2)
  t.same(await fingerprint(dst, 'r2'), want, 'parallel restore (jobs 2): every table, sequence and the view match')
  t.equal(await dst.psql("SELECT nextval('counted_id_seq')", 'r2'), '2001', 'the sequence continues where the source left it')
  t.same((await readdir(dir)).filter((f) => f.startsWith('tidemark-dump-')), [], 'the temporary file is removed')

  const err = await restore('r1', 1).catch((e: unknown) => e)
  t.ok(err instanceof TidemarkError && err.code === 'TM_ERR_RESTORE_TARGET_NOT_EMPTY', 'a non-empty target is refused')
  t.match((err as TidemarkError).message, /public\.counted/)
  t.same(await fingerprint(dst, 'r1'), want, 'and left unchanged')

  // pg_dump failing part-way (a table the role cannot read): nothing is committed, the object is removed.
  await src.psql("CREATE ROLE reader LOGIN PASSWORD 'reader-pw'; CREATE TABLE secret (x int); REVOKE ALL ON secret FROM PUBLIC; GRANT SELECT ON odd, counted, tick, summary TO reader", 'app')
  const failed = await runDump({ repo, url: src.urlFor('reader', 'reader-pw', 'app'), pgDump: dump.path, pgDumpVersion: dump.version, psqlPath: pf.tools.psql?.path }).catch((e: unknown) => e)
  t.ok(failed instanceof TidemarkError && failed.code === 'TM_ERR_POSTGRES_TOOL', 'a failing pg_dump fails the dump')
  t.match((failed as Error).message, /pg_dump failed.*permission denied/)
  t.same(await repo.listManifestIds('postgres'), [r.id], 'no manifest committed')
  t.same(await readdir(join(dir, 'repo', 'data', 'postgres', 'dump')), [`${r.id}.dump`], 'its object is deleted')
})
