/**
 * PostgreSQL physical-method benchmark (see bench/RESULTS.md).
 *
 *   npm run bench:postgres -- [--scale 70] [--runs 3] [--restore-runs 3] [--lag-seconds 130] [--no-record]
 *
 * Starts a harness PostgreSQL 15 (16 MiB WAL segments, archive_command = pgBackRest
 * archive-push), loads `pgbench -i -s <scale>` (about 1 GiB at 70), runs
 * `tidemark wal-archive` as a separate process, then, alternating sides each round:
 *   (a) base backup: `tidemark backup postgres` against
 *       `pg_basebackup -Ft -D - -X none -c fast | zstd -3 > file`;
 *   (b) the same backup with pgBackRest (posix repository, compress-type=zst,
 *       process-max=2, start-fast);
 *   (c) point-in-time restore to a time T inside a short pgbench load, until the
 *       restored server is promoted: `tidemark restore postgres --at T` + start,
 *       against `pgbackrest restore --type=time` + start;
 *   (d) under `pgbench -c 4` for --lag-seconds: every second a marker row is
 *       committed, its WAL insert LSN noted, and the repository polled (the open
 *       segment's `coversLsn`, stored segments) until that LSN is covered;
 *   (e) peak RSS of the tidemark backup processes (/usr/bin/time) and of the WAL
 *       archive process (VmHWM).
 * Tidemark, pgBackRest and the baseline are timed with /usr/bin/time (wall and CPU
 * of the process and its children). Appends the results to bench/RESULTS.md, stops
 * every process it started and deletes its temporary data.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { appendFile, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { stringify } from 'yaml'
import { parseLsn, walFileName } from '../src/engine/postgres/wal.ts'
import { WalStore } from '../src/engine/postgres/wal-store.ts'
import { openRepository } from '../src/engine/repository/index.ts'
import { createFsSink } from '../src/sinks/fs.ts'
import { PG_BIN, serverTempDir, startPostgres, startPostgresOnDir, type PgServer } from '../test/harness/postgres.ts'
import { removeTempDir } from '../test/harness/proc.ts'

const TIME = '/usr/bin/time'
const BIN = new URL('../bin/tidemark', import.meta.url).pathname
const SEG = 16 * 1024 * 1024

const { values: args } = parseArgs({
  options: {
    scale: { type: 'string', default: '70' },
    runs: { type: 'string', default: '3' },
    'restore-runs': { type: 'string', default: '3' },
    'lag-seconds': { type: 'string', default: '130' },
    'no-record': { type: 'boolean', default: false },
  },
})

interface Measured { wallMs: number; cpuMs: number; rssMiB: number; stdout: string }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)] as number
const secs = (ms: number) => (ms / 1000).toFixed(2)
const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const log = (msg: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`)

/** Runs argv under /usr/bin/time; wall, CPU (process and waited children), max RSS. */
async function measure(argv: string[], env: NodeJS.ProcessEnv, scratch: string): Promise<Measured> {
  const timeFile = join(scratch, 'time.txt')
  const start = performance.now()
  const proc = spawn(TIME, ['-v', '-o', timeFile, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env })
  let stdout = ''
  let stderr = ''
  proc.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
  proc.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)))
  const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve))
  const wallMs = performance.now() - start
  if (code !== 0) throw new Error(`${argv.join(' ')} exited with ${code}: ${stdout.slice(0, 1000)} ${stderr}`)
  const report = await readFile(timeFile, 'utf8')
  const field = (name: string) => Number(new RegExp(`${name}: ([\\d.]+)`).exec(report)?.[1])
  return { wallMs, cpuMs: (field('User time \\(seconds\\)') + field('System time \\(seconds\\)')) * 1000, rssMiB: field('Maximum resident set size \\(kbytes\\)') / 1024, stdout }
}

/** Runs a command to completion; rejects with its output on failure. */
function run(cmd: string, argv: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env })
    let out = ''
    p.stdout.on('data', (b: Buffer) => (out += b.toString()))
    p.stderr.on('data', (b: Buffer) => (out += b.toString()))
    p.on('error', reject)
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${argv.join(' ')} exited ${code}: ${out.slice(-2000)}`))))
  })
}

interface Bench {
  root: string
  pg: PgServer
  cfg: string
  pgbrConf: string
  env: NodeJS.ProcessEnv
  archive?: ChildProcess
}

const tm = (b: Bench, argv: string[]) => measure([BIN, '--config', b.cfg, ...argv, '--json'], b.env, b.root)
const pgbr = (b: Bench, argv: string[]) => ['runuser', '-u', 'postgres', '--', 'pgbackrest', `--config=${b.pgbrConf}`, '--stanza=bench', ...argv]

async function setup(): Promise<Bench> {
  const root = await serverTempDir('tidemark-bench-pg-')
  const pgbrConf = join(root, 'pgbackrest.conf')
  const pg = await startPostgres(undefined, {
    walSegSizeMb: 16,
    settings: {
      shared_buffers: '256MB', max_wal_size: '4GB', checkpoint_timeout: '30min', max_connections: 40,
      archive_mode: 'on', archive_command: `pgbackrest --config=${pgbrConf} --stanza=bench archive-push %p`,
    },
  })
  const socketDir = pg.socketDir
  await writeFile(pgbrConf, [
    '[global]', `repo1-path=${root}/pgbr-repo`, 'repo1-retention-full=99', 'compress-type=zst', 'compress-level=3', 'process-max=2', 'start-fast=y',
    `log-path=${root}/pgbr-log`, `lock-path=${root}/pgbr-lock`, `spool-path=${root}/pgbr-spool`, 'log-level-console=warn', 'log-level-file=off',
    '[bench]', `pg1-path=${pg.dataDir}`, `pg1-port=${pg.port}`, `pg1-socket-path=${socketDir}`, 'pg1-user=postgres', '',
  ].join('\n'), { mode: 0o644 })
  await run('chown', ['-R', 'postgres:postgres', root])
  const cfg = join(root, 'tidemark.yaml')
  await writeFile(cfg, stringify({
    repository: { url: join(root, 'tm-repo') },
    postgres: { url: pg.replicationUrl, binDir: PG_BIN, slot: 'bench', walDir: join(root, 'tm-wal'), baseBackupWalTimeoutSeconds: 300 },
    log: { level: 'warn' },
  }), { mode: 0o644 })
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_COMPILE_CACHE: join(root, 'compile-cache') }
  return { root, pg, cfg, pgbrConf, env }
}

async function load(b: Bench, scale: number): Promise<number> {
  log(`pgbench -i -s ${scale}`)
  await run(join(PG_BIN, 'pgbench'), ['-i', '-s', String(scale), '-q', '-h', b.pg.socketDir, '-p', String(b.pg.port), '-U', 'postgres', 'postgres'])
  await b.pg.psql('CHECKPOINT')
  return Number(await b.pg.psql("SELECT pg_database_size('postgres')"))
}

function startArchive(b: Bench): ChildProcess {
  const p = spawn(BIN, ['--config', b.cfg, 'wal-archive'], { stdio: ['ignore', 'ignore', 'pipe'], env: b.env })
  let err = ''
  p.stderr?.on('data', (x: Buffer) => (err = (err + x.toString()).slice(-4000)))
  p.on('exit', (code, sig) => { if (b.archive === p) log(`wal-archive exited (${code ?? sig}): ${err}`) })
  return p
}

/** Peak RSS (VmHWM) and CPU seconds of a running process, from /proc. */
async function procStats(pid: number): Promise<{ rssMiB: number; cpuS: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]) / 1024
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? []
  return { rssMiB: hwm, cpuS: (Number(stat[11]) + Number(stat[12])) / 100 }
}

interface BackupRound { tidemark: Measured; baseline: Measured; pgbackrest: Measured; tmStored: number; tmWalWaitMs: number; baseBytes: number }

async function backupRounds(b: Bench, runs: number): Promise<BackupRound[]> {
  const out: BackupRound[] = []
  const file = join(b.root, 'baseline.tar.zst')
  const baseline = `${PG_BIN}/pg_basebackup -Ft -D - -X none -c fast -d ${sh(b.pg.replicationUrl)} | zstd -3 -q > ${file}`
  for (let i = 0; i < runs; i++) {
    const sides: (() => Promise<[string, Measured]>)[] = [
      async () => ['tidemark', await tm(b, ['backup', 'postgres'])],
      async () => ['baseline', await measure(['bash', '-o', 'pipefail', '-c', baseline], b.env, b.root)],
      async () => ['pgbackrest', await measure(pgbr(b, ['--type=full', 'backup']), b.env, b.root)],
    ]
    // Rotate the order each round so no side always runs first (page cache, checkpoints).
    const r: Record<string, Measured> = {}
    for (let k = 0; k < sides.length; k++) {
      const [name, m] = await (sides[(k + i) % sides.length] as () => Promise<[string, Measured]>)()
      r[name] = m
      log(`round ${i + 1} ${name}: ${secs(m.wallMs)} s wall, ${secs(m.cpuMs)} CPU-s, ${m.rssMiB.toFixed(0)} MiB`)
    }
    const tmOut = JSON.parse((r.tidemark as Measured).stdout) as { storedBytes: number; walWaitMs: number }
    const baseBytes = Number((await run('stat', ['-c', '%s', file])).trim())
    await rm(file, { force: true })
    out.push({ tidemark: r.tidemark as Measured, baseline: r.baseline as Measured, pgbackrest: r.pgbackrest as Measured, tmStored: tmOut.storedBytes, tmWalWaitMs: tmOut.walWaitMs, baseBytes })
  }
  return out
}

interface RestoreRound { tidemarkMs: number; tidemarkCmdMs: number; tidemarkCpuMs: number; pgbackrestMs: number; pgbackrestCmdMs: number; pgbackrestCpuMs: number; tmRows: string; pgbrRows: string }

/** A short load with T in its middle; returns T (server time, ISO with offset). */
async function pitrTarget(b: Bench): Promise<string> {
  const bench = run(join(PG_BIN, 'pgbench'), ['-n', '-c', '2', '-T', '12', '-h', b.pg.socketDir, '-p', String(b.pg.port), '-U', 'postgres', 'postgres'])
  await sleep(6000)
  const t = await b.pg.psql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
  await bench
  // pgBackRest needs the segments holding T and a later commit archived; tidemark needs a heartbeat past T.
  const seg = await b.pg.psql('SELECT pg_walfile_name(pg_current_wal_lsn())')
  await b.pg.psql('SELECT pg_switch_wal()')
  for (let i = 0; i < 120 && (await b.pg.psql('SELECT coalesce(last_archived_wal, \'\') FROM pg_stat_archiver')) < seg; i++) await sleep(500)
  for (let i = 0; i < 120; i++) {
    const l = JSON.parse((await tm(b, ['list', '--source', 'postgres'])).stdout) as { sources: { postgres: { clusters: { recoveryWindows: { to: string }[] }[] } } }
    const to = l.sources.postgres.clusters[0]?.recoveryWindows.at(-1)?.to
    if (to !== undefined && to > t) break
    await sleep(1000)
  }
  return t
}

async function restoreRounds(b: Bench, runs: number): Promise<{ target: string; rounds: RestoreRound[] }> {
  const target = await pitrTarget(b)
  log(`PITR target ${target}`)
  const rows = 'SELECT count(*) || \':\' || coalesce(sum(delta), 0) FROM pgbench_history'
  const startOn = async (dataDir: string) => startPostgresOnDir(dataDir, undefined, { waitForPromotion: true, timeoutMs: 300_000, settings: { archive_mode: 'off', shared_buffers: '256MB' } })
  const rounds: RestoreRound[] = []
  for (let i = 0; i < runs; i++) {
    const r: Partial<RestoreRound> = {}
    const sides = [
      async () => {
        const dir = join(await serverTempDir('tidemark-bench-tm-'), 'data')
        const t0 = performance.now()
        const m = await tm(b, ['restore', 'postgres', '--at', target, '--target-dir', dir])
        const s = await startOn(dir)
        r.tidemarkMs = performance.now() - t0
        r.tidemarkCmdMs = m.wallMs
        r.tidemarkCpuMs = m.cpuMs
        r.tmRows = await s.psql(rows)
        await s.stop('immediate')
        await removeTempDir(join(dir, '..'))
      },
      async () => {
        const parent = await serverTempDir('tidemark-bench-br-')
        const dir = join(parent, 'data')
        const t0 = performance.now()
        const m = await measure(pgbr(b, ['restore', `--pg1-path=${dir}`, '--type=time', `--target=${target.replace('T', ' ').replace('Z', '+00')}`, '--target-action=promote', `--recovery-option=restore_command=pgbackrest --config=${b.pgbrConf} --stanza=bench --pg1-path=${dir} archive-get %f "%p"`]), b.env, b.root)
        const s = await startOn(dir)
        r.pgbackrestMs = performance.now() - t0
        r.pgbackrestCmdMs = m.wallMs
        r.pgbackrestCpuMs = m.cpuMs
        r.pgbrRows = await s.psql(rows)
        await s.stop('immediate')
        await removeTempDir(parent)
      },
    ]
    for (let k = 0; k < 2; k++) await (sides[(k + i) % 2] as () => Promise<void>)()
    log(`restore round ${i + 1}: tidemark ${secs(r.tidemarkMs as number)} s, pgbackrest ${secs(r.pgbackrestMs as number)} s; rows ${r.tmRows} / ${r.pgbrRows}`)
    rounds.push(r as RestoreRound)
  }
  return { target, rounds }
}

/** (d): marker commits under load, and when the repository covers each one's LSN. */
async function lagUnderLoad(b: Bench, seconds: number): Promise<{ lags: number[]; uncovered: number; tps: string }> {
  const repo = await openRepository(createFsSink(join(b.root, 'tm-repo')), { pipeline: { threads: 1 } })
  try {
    const systemId = (await b.pg.psql('SELECT system_identifier FROM pg_control_system()')).trim()
    const store = new WalStore(repo, systemId)
    await b.pg.psql('CREATE TABLE IF NOT EXISTS bench_marker (at timestamptz)')
    const pending: { lsn: bigint; at: number }[] = []
    const lags: number[] = []
    let done = false
    const bench = run(join(PG_BIN, 'pgbench'), ['-n', '-c', '4', '-j', '2', '-T', String(seconds), '-h', b.pg.socketDir, '-p', String(b.pg.port), '-U', 'postgres', 'postgres'])
    const markers = (async () => {
      while (!done) {
        const out = await b.pg.psql('INSERT INTO bench_marker VALUES (clock_timestamp()); SELECT pg_current_wal_insert_lsn()')
        pending.push({ lsn: parseLsn(out.trim().split('\n').at(-1) as string), at: Date.now() })
        await sleep(1000)
      }
    })()
    const covered = async (lsn: bigint): Promise<boolean> => {
      const segno = lsn / BigInt(SEG)
      const p = await store.partialRecord(1)
      if (p && p.segment === walFileName(1, segno, SEG) && parseLsn(p.coversLsn) >= lsn) return true
      return store.has(walFileName(1, segno, SEG))
    }
    const poll = async () => {
      while (pending.length > 0 && (await covered((pending[0] as { lsn: bigint }).lsn))) lags.push(Date.now() - (pending.shift() as { at: number }).at)
    }
    const tps = bench.then((out) => /tps = ([\d.]+)/.exec(out)?.[1] ?? '?')
    void tps.finally(() => (done = true))
    while (!done) {
      await poll()
      await sleep(200)
    }
    await markers
    for (let i = 0; i < 150 && pending.length > 0; i++) {
      await poll()
      await sleep(200)
    }
    return { lags, uncovered: pending.length, tps: await tps }
  } finally {
    await repo.close()
  }
}

function report(o: { scale: number; dbBytes: number; backups: BackupRound[]; restore: { target: string; rounds: RestoreRound[] }; lag: { lags: number[]; uncovered: number; tps: string }; archive: { rssMiB: number; cpuS: number }; pgbrVersion: string; seconds: number; totalS: number }): string {
  const col = (f: (r: BackupRound) => Measured) => ({ wall: median(o.backups.map((r) => f(r).wallMs)), cpu: median(o.backups.map((r) => f(r).cpuMs)), rss: Math.max(...o.backups.map((r) => f(r).rssMiB)), each: o.backups.map((r) => secs(f(r).wallMs)).join(', ') })
  const t = col((r) => r.tidemark)
  const z = col((r) => r.baseline)
  const p = col((r) => r.pgbackrest)
  const rt = median(o.restore.rounds.map((r) => r.tidemarkMs))
  const rp = median(o.restore.rounds.map((r) => r.pgbackrestMs))
  const MiB = (n: number) => (n / 1048576).toFixed(0)
  const row = (name: string, c: typeof t) => `| ${name} | ${secs(c.wall)} | ${secs(c.cpu)} | ${c.rss.toFixed(0)} | ${c.each} |`
  return [
    '',
    `## PostgreSQL physical backup, PITR and WAL lag vs pg_basebackup + zstd and pgBackRest — ${new Date().toISOString().slice(0, 16)}Z`,
    '',
    `- Machine: nproc ${cpus().length}, ${cpus()[0]?.model ?? '?'}, Node ${process.version}, PostgreSQL 15 (harness server: fsync off, shared_buffers 256MB, 16 MiB WAL segments, archive_command = pgBackRest archive-push throughout), ${o.pgbrVersion}; load average at the end ${loadavg().map((x) => x.toFixed(1)).join(' ')} (machine shared).`,
    `- Command: \`npx node bench/postgres.ts --scale ${o.scale} --runs ${o.backups.length} --restore-runs ${o.restore.rounds.length} --lag-seconds ${o.seconds}\` (total ${o.totalS.toFixed(0)} s). Data: \`pgbench -i -s ${o.scale}\`, database ${MiB(o.dbBytes)} MiB. tidemark stored ${MiB(median(o.backups.map((r) => r.tmStored)))} MiB per base backup and waited ${secs(median(o.backups.map((r) => r.tmWalWaitMs)))} s (median) after the stream for its last WAL segment to be archived, zstd -3 ${MiB(median(o.backups.map((r) => r.baseBytes)))} MiB.`,
    '- Every side under `/usr/bin/time -v` (CPU = the process and the children it waited for; server CPU not included); tidemark is the CLI (bin/tidemark, warm compile cache) with `tidemark wal-archive` running as a separate process; sides rotate order each round.',
    '',
    '| side | wall s (median) | CPU s (median) | peak RSS MiB (max) | wall s, each run |',
    '|---|---:|---:|---:|---|',
    row('(a) tidemark backup postgres (stream + wait for WAL + commit)', t),
    row('(a) baseline pg_basebackup -Ft -D - -X none -c fast \\| zstd -3 > file', z),
    row('(b) pgbackrest --type=full backup (zst, process-max=2, start-fast)', p),
    '',
    `- (a) tidemark / baseline: **${(t.wall / z.wall).toFixed(2)}** wall (target ≤ 1.15), CPU ${(t.cpu / z.cpu).toFixed(2)}.`,
    `- (b) tidemark / pgBackRest: **${(t.wall / p.wall).toFixed(2)}** wall (goal ≤ 1.0), CPU ${(t.cpu / p.cpu).toFixed(2)}.`,
    `- (c) PITR to ${o.restore.target} (inside a 12 s pgbench -c 2 load after the backups), command start until the restored server is promoted: tidemark **${secs(rt)} s** (each ${o.restore.rounds.map((r) => secs(r.tidemarkMs)).join(', ')}; restore command ${secs(median(o.restore.rounds.map((r) => r.tidemarkCmdMs)))} s wall / ${secs(median(o.restore.rounds.map((r) => r.tidemarkCpuMs)))} CPU-s, the rest is recovery with wal-fetch), pgBackRest **${secs(rp)} s** (each ${o.restore.rounds.map((r) => secs(r.pgbackrestMs)).join(', ')}; restore command ${secs(median(o.restore.rounds.map((r) => r.pgbackrestCmdMs)))} s wall / ${secs(median(o.restore.rounds.map((r) => r.pgbackrestCpuMs)))} CPU-s, the rest is recovery with archive-get); ratio **${(rt / rp).toFixed(2)}**. pgbench_history count:sum(delta) after restore — tidemark ${[...new Set(o.restore.rounds.map((r) => r.tmRows))].join(' / ')}, pgBackRest ${[...new Set(o.restore.rounds.map((r) => r.pgbrRows))].join(' / ')} (must be equal: same target).`,
    `- (d) commit → WAL in the repository under \`pgbench -n -c 4 -j 2 -T ${o.seconds}\` (${o.lag.tps} tps), walPartialIntervalSeconds 10 (default), one marker commit per second (time = when the commit returned to the client; covered = the open segment's upload covers its insert LSN, or its segment is stored): ${o.lag.lags.length} markers, p50 **${secs(pct(o.lag.lags, 50))} s**, p99 **${secs(pct(o.lag.lags, 99))} s**, max ${secs(Math.max(...o.lag.lags))} s (goal p99 ≤ 15 s); ${o.lag.uncovered} not covered within 30 s after the load.`,
    `- (e) peak RSS: tidemark backup postgres **${t.rss.toFixed(0)} MiB**, tidemark wal-archive **${o.archive.rssMiB.toFixed(0)} MiB** over the whole run (VmHWM; ${o.archive.cpuS.toFixed(1)} CPU-s of the node process, pg_receivewal not included) (target ≤ 256 MiB).`,
  ].join('\n') + '\n'
}

async function main(): Promise<void> {
  const t0 = performance.now()
  const scale = Number(args.scale)
  const seconds = Number(args['lag-seconds'])
  const b = await setup()
  try {
    const pgbrVersion = (await run('pgbackrest', ['version'])).trim()
    const dbBytes = await load(b, scale)
    log(`database ${(dbBytes / 1048576).toFixed(0)} MiB`)
    await run('runuser', ['-u', 'postgres', '--', 'pgbackrest', `--config=${b.pgbrConf}`, '--stanza=bench', 'stanza-create'])
    await run(BIN, ['--config', b.cfg, 'repo', 'init'], b.env)
    b.archive = startArchive(b)
    await sleep(3000)
    const backups = await backupRounds(b, Number(args.runs))
    const restore = await restoreRounds(b, Number(args['restore-runs']))
    log(`lag under load for ${seconds} s`)
    const lag = await lagUnderLoad(b, seconds)
    const archive = await procStats(b.archive.pid as number)
    const text = report({ scale, dbBytes, backups, restore, lag, archive, pgbrVersion, seconds, totalS: (performance.now() - t0) / 1000 })
    console.log(text)
    if (!args['no-record']) await appendFile(new URL('./RESULTS.md', import.meta.url), text)
  } finally {
    const a = b.archive
    b.archive = undefined
    if (a && a.exitCode === null) {
      a.kill('SIGTERM')
      await new Promise((r) => a.once('exit', r))
    }
    await b.pg.stop('fast')
    await removeTempDir(b.root)
  }
}

await main()
