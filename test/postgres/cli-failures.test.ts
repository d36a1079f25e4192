/**
 * The physical method's failure paths through the real CLI: a base backup without
 * the WAL archive times out and commits nothing; a failed preflight changes nothing;
 * wal-fetch's exit statuses (missing: 1 and quiet; failure: above 125; a stop signal:
 * 128 + n, never death by the signal); restore and list of an empty repository.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { BIN, cleanEnv, tidemark } from '../cli/run.ts'
import { startPostgres } from '../harness/postgres.ts'
import { removeTempDir, tempDir, waitFor } from '../harness/proc.ts'
import { cli, startArchive, writeConfig } from './archive-helpers.ts'

const exists = (p: string) => readdir(p).then(() => true, () => false)

t.test('a base backup with the WAL archive stopped fails after its timeout and commits nothing', async (t) => {
  const pg = await startPostgres(t)
  const dir = await tempDir('tidemark-bbfail-')
  t.teardown(() => removeTempDir(dir))
  const repo = join(dir, 'repo')
  const cfg = await writeConfig(join(dir, 'tidemark.yaml'), { repo, url: pg.replicationUrl, slot: 'tidemark_stopped', walDir: join(dir, 'wal'), walTimeoutSeconds: 3 })
  t.equal((await cli(cfg, ['repo', 'init'])).code, 0)
  const archive = startArchive(t, cfg)
  await waitFor('the archive to stream', async () => (await pg.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'tidemark_stopped'")) === 't', 30_000)
  t.same(await archive.stop(), { code: 0, signal: null }, 'the archive stops cleanly on SIGTERM')
  const started = Date.now()
  const r = await cli(cfg, ['backup', 'postgres'])
  t.equal(r.code, 1)
  t.match(r.stderr, /^TM_ERR_POSTGRES_WAL_TIMEOUT base backup \S+ was not committed: after 3 s, .*WAL segments.*tidemark wal-archive/m)
  t.ok(Date.now() - started >= 3000, 'it waited for the timeout')
  const list = JSON.parse((await cli(cfg, ['list', '--source', 'postgres', '--json'])).stdout)
  t.same(list.sources.postgres.clusters[0].backups, [], 'no backup committed')
  t.same(await readdir(join(repo, 'data', 'postgres', 'base')).catch(() => []), [], 'its tar was removed')
  t.same(await readdir(join(repo, 'journal', 'postgres')).catch(() => []), [], 'and its journal')
})

t.test('a failed preflight is a clear error and changes nothing', async (t) => {
  const pg = await startPostgres(t)
  await pg.psql("CREATE ROLE app LOGIN PASSWORD 'app-pass-1'")
  const dir = await tempDir('tidemark-preflight-')
  t.teardown(() => removeTempDir(dir))
  const repo = join(dir, 'repo')
  const cfg = await writeConfig(join(dir, 'tidemark.yaml'), { repo, url: pg.urlFor('app', 'app-pass-1'), slot: 'tidemark_app', walDir: join(dir, 'wal') })
  t.equal((await cli(cfg, ['repo', 'init'])).code, 0)
  const initial = (await readdir(repo)).sort()
  const backup = await cli(cfg, ['backup', 'postgres'])
  t.equal(backup.code, 1)
  t.match(backup.stderr, /^TM_ERR_POSTGRES_NO_REPLICATION role "app" lacks the REPLICATION attribute: run ALTER ROLE "app" REPLICATION/)
  const archive = await cli(cfg, ['wal-archive', '--json'])
  t.equal(archive.code, 1)
  t.match(JSON.parse(archive.stderr), { error: { code: 'TM_ERR_POSTGRES_NO_REPLICATION' } })
  t.equal(await pg.psql('SELECT count(*) FROM pg_replication_slots'), '0', 'no slot created')
  t.notOk(await exists(join(dir, 'wal')), 'no WAL directory created')
  t.same((await readdir(repo)).sort(), initial, 'nothing written to the repository')
  const noTool = await writeConfig(join(dir, 'other.yaml'), { repo, url: pg.replicationUrl, slot: 's', walDir: join(dir, 'wal'), binDir: join(dir, 'no-such-bin') })
  const missing = await cli(noTool, ['backup', 'postgres'])
  t.match(missing.stderr, /^TM_ERR_POSTGRES_TOOL_MISSING psql was not found in postgres.binDir/)
})

t.test('wal-fetch: missing is exit 1 and quiet; failures are above 125', async (t) => {
  const dir = await tempDir('tidemark-walfetch-')
  t.teardown(() => removeTempDir(dir))
  const repo = join(dir, 'repo')
  t.equal((await tidemark(['repo', 'init', '--repo', repo])).code, 0)
  const out = join(dir, 'RECOVERYXLOG')
  const missing = await tidemark(['wal-fetch', '--repo', repo, '--system-id', '7312', '000000010000000000000001', out])
  t.same({ code: missing.code, signal: missing.signal, stdout: missing.stdout, stderr: missing.stderr }, { code: 1, signal: null, stdout: '', stderr: '' }, 'exit 1, nothing printed')
  const history = await tidemark(['wal-fetch', '--repo', repo, '--system-id', '7312', '00000002.history', out])
  t.equal(history.code, 1, 'a history file PostgreSQL probes for')
  t.same(await readdir(dir), ['repo'], 'nothing written')
  const noRepo = await tidemark(['wal-fetch', '--repo', join(dir, 'elsewhere'), '--system-id', '7312', '000000010000000000000001', out])
  t.equal(noRepo.code, 255, 'an unreachable repository is a failure, not a missing file: PostgreSQL must not end recovery')
  t.match(noRepo.stderr, /^TM_ERR_REPO_NOT_FOUND /)
  const noSystem = await tidemark(['wal-fetch', '--repo', repo, '000000010000000000000001', out])
  t.equal(noSystem.code, 255)
  t.match(noSystem.stderr, /^TM_ERR_USAGE .*--system-id/)
  const usage = await tidemark(['restore', 'postgres', '--at', 'latest', '--target-dir', join(dir, 'r'), '--repo', repo])
  t.equal(usage.code, 1)
  t.match(usage.stderr, /^TM_ERR_RESTORE_NO_BACKUP /)
  t.notOk(await exists(join(dir, 'r')))
  const list = await tidemark(['list', '--source', 'postgres', '--repo', repo])
  t.equal(list.code, 0)
  t.match(list.stdout, /no PostgreSQL backups or WAL/)
  const bad = await tidemark(['list', '--source', 'redis', '--repo', repo])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /^TM_ERR_USAGE unknown source "redis"; known: .*postgres/)
})

t.test('wal-fetch never dies by SIGTERM, SIGINT or SIGQUIT', async (t) => {
  // An S3 endpoint that accepts connections and never answers: the fetch hangs.
  const sockets = new Set<Socket>()
  const blackhole = createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
  })
  await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    blackhole.close()
  })
  const port = (blackhole.address() as { port: number }).port
  const env = cleanEnv({ TIDEMARK_S3_ENDPOINT: `http://127.0.0.1:${port}`, TIDEMARK_S3_FORCE_PATH_STYLE: 'true', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' })
  const dir = await tempDir('tidemark-walfetch-sig-')
  t.teardown(() => removeTempDir(dir))
  for (const [sig, n] of [['SIGTERM', 15], ['SIGINT', 2], ['SIGQUIT', 3]] as const) {
    const child = spawn(BIN, ['wal-fetch', '--repo', 's3://bucket/repo', '--system-id', '7312', '000000010000000000000001', join(dir, 'x')], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    t.teardown(() => void child.kill('SIGKILL'))
    let stderr = ''
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })))
    await waitFor('the fetch to reach the repository', async () => sockets.size > 0 || child.exitCode !== null, 10_000, 50)
    t.equal(child.exitCode, null, `wal-fetch is waiting for the repository when ${sig} arrives`)
    child.kill(sig)
    t.same(await exited, { code: 128 + n, signal: null }, `${sig}: exit ${128 + n}, not death by the signal`)
    t.match(stderr, `stopped by ${sig}`)
    for (const s of sockets) s.destroy()
    sockets.clear()
  }
})
