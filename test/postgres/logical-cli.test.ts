/**
 * The logical method through bin/tidemark: `backup postgres` with postgres.method
 * logical given in the environment, `list --source postgres` showing the dump at its
 * snapshot time, `restore postgres --backup … --target-url …` into an empty database
 * (and the refusal of a non-empty one), and `restore --at latest` planned by the
 * daemon core over the logical catalog.
 */
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { PG_BIN, startPostgres } from '../harness/postgres.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { cli, json } from './archive-helpers.ts'

interface DumpOut { id: string; method: string; at: string; database: string }
interface ListOut { sources: { postgres: { clusters: unknown[]; dumps: DumpOut[] } } }

t.test('logical dump and restore through the CLI', async (t) => {
  const [src, dst] = await Promise.all([startPostgres(t), startPostgres(t)])
  const dir = await tempDir('tidemark-logical-cli-')
  t.teardown(() => removeTempDir(dir))
  await src.psql('CREATE DATABASE shop')
  await src.psql("CREATE TABLE item (id serial PRIMARY KEY, name text, price numeric(10,2)); INSERT INTO item (name, price) SELECT 'item ' || g, g * 1.25 FROM generate_series(1, 500) g", 'shop')
  for (const db of ['a', 'b']) await dst.psql(`CREATE DATABASE ${db}`)
  const cfg = join(dir, 'tidemark.yaml')
  await writeFile(cfg, stringify({ repository: { url: join(dir, 'repo') }, pipeline: { threads: 1 }, postgres: { url: src.urlFor('postgres', undefined, 'shop'), binDir: PG_BIN }, log: { level: 'warn' } }))
  const env = { TIDEMARK_POSTGRES_METHOD: 'logical' }
  t.equal((await cli(cfg, ['repo', 'init'])).code, 0, 'repository created')

  const d = json<DumpOut>(await cli(cfg, ['backup', 'postgres', '--json'], { env }), 'backup')
  t.match(d, { method: 'postgres-dump', database: 'shop', at: /^\d{4}-\d\d-\d\dT[\d:.]+Z$/ })
  const list = json<ListOut>(await cli(cfg, ['list', '--source', 'postgres', '--json'], { env }), 'list')
  t.same(list.sources.postgres.dumps.map((x) => ({ id: x.id, at: x.at })), [{ id: d.id, at: d.at }], 'list shows the dump at its snapshot time')
  t.same(list.sources.postgres.clusters, [], 'and no physical cluster')

  const into = (db: string) => dst.urlFor('postgres', undefined, db)
  const sum = "SELECT count(*) || ':' || md5(string_agg(i::text, ',' ORDER BY id)) FROM item i"
  const want = await src.psql(sum, 'shop')
  const r = await cli(cfg, ['restore', 'postgres', '--backup', d.id, '--target-url', into('a'), '--json'], { env })
  t.match(json<Record<string, unknown>>(r, 'restore'), { backupId: d.id, at: d.at, targetDatabase: 'a', jobs: 1 })
  t.equal(await dst.psql(sum, 'a'), want, 'restored rows match')

  const again = await cli(cfg, ['restore', 'postgres', '--backup', d.id, '--target-url', into('a'), '--jobs', '2'], { env })
  t.equal(again.code, 1, 'a non-empty target is refused')
  t.match(again.stderr, /TM_ERR_RESTORE_TARGET_NOT_EMPTY.*--allow-non-empty/s)
  t.equal(await dst.psql(sum, 'a'), want, 'and unchanged')

  const bad = await cli(cfg, ['restore', 'postgres', '--backup', d.id, '--target-url', into('b'), '--jobs', 'x'], { env })
  t.equal(bad.code, 2, '--jobs must be a number')

  const planned = await cli(cfg, ['restore', '--at', 'latest', '--sources', 'postgres', '--pg-target-url', into('b'), '--json'], { env })
  const report = json<{ ok: boolean; plan: { postgres: { method: string; dumpId: string } } }>(planned, 'restore --at latest')
  t.match(report, { ok: true, plan: { postgres: { method: 'logical', dumpId: d.id } } }, 'the planner restores the newest dump')
  t.equal(await dst.psql(sum, 'b'), want, 'through the daemon core too')
})
