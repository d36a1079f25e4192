/**
 * ClickHouse logical backup benchmark against curl + zstd, measured in the same run
 * (see bench/RESULTS.md).
 *
 *   npm run bench:clickhouse -- [--days 30] [--rows-per-day 16000] [--runs 3] [--parallelism N] [--threads N] [--no-record]
 *   npm run bench:clickhouse -- --method parts [--days 30] [--rows-per-day 16000] [--runs 3] [--no-record]
 *
 * `--method parts` runs the parts method benchmark (bench/clickhouse-parts.ts) on the
 * same dataset instead.
 *
 * `--parallelism` / `--threads` set clickhouse.parallelism / pipeline.threads of
 * the tidemark runs (through their environment variables); unset, the defaults.
 *
 * Starts two real clickhouse-servers (source and restore target), generates a
 * LangSmith-like dataset on the source (bench/clickhouse-data.ts; the defaults give
 * about 1 GiB of Native data), then, alternating sides each round:
 *   (a) full backup: `tidemark backup clickhouse --full` against, for every storage
 *       table in turn, `curl 'SELECT * … FORMAT Native' | zstd -3 > file`;
 *   (b) restore into the empty target: `tidemark restore clickhouse` (DDL, loads, row
 *       and digest check) against `zstd -dc file | curl 'INSERT … FORMAT Native'`
 *       into tables created beforehand;
 *   (c) incremental backup after adding 1% new rows to the latest day, against (a);
 *       also through a running daemon (bench/clickhouse-daemon.ts), as its scheduler runs it;
 *   (d) peak RSS of the tidemark process during (a).
 * Every tidemark side is the real CLI (bin/tidemark) under `/usr/bin/time -v`, with a
 * warm Node compile cache as the daemon would have. Appends the medians to
 * bench/RESULTS.md, stops the servers and deletes its temporary data.
 */
import { existsSync } from 'node:fs'
import { appendFile, mkdtemp, rm, stat } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startClickHouse } from '../test/harness/clickhouse.ts'
import { BIN, curl, freshRepo, insertRuns, loadDataset, tm, type Bench } from './clickhouse-data.ts'
import { daemonRounds, type DaemonTimes } from './clickhouse-daemon.ts'
import { TIME, measure, median, secs, serverPids, shellQuote, type Measured } from './timed.ts'

const MIB = 1024 * 1024

const { values: args } = parseArgs({
  options: {
    days: { type: 'string', default: '30' },
    'rows-per-day': { type: 'string', default: '16000' },
    runs: { type: 'string', default: '3' },
    parallelism: { type: 'string' },
    threads: { type: 'string' },
    method: { type: 'string', default: 'logical' },
    'no-record': { type: 'boolean', default: false },
  },
})


/** Baseline (a): every storage table, one after the other, `curl … FORMAT Native | zstd -3 > file`. */
function baselineDump(b: Bench): Promise<Measured> {
  const script = b.tables.map((t, i) => `${curl(b.source, `SELECT * FROM ls.\`${t}\` FORMAT Native`)} | zstd -3 -q -f -o ${shellQuote(join(b.dir, `base-${i}.zst`))}`).join(' && ')
  return measure(['bash', '-o', 'pipefail', '-c', script], process.env, b.dir, b.servers)
}

/** Baseline (b): `zstd -dc file | curl 'INSERT … FORMAT Native'` for every table, into tables created beforehand. */
function baselineLoad(b: Bench): Promise<Measured> {
  const script = b.tables.map((t, i) => `zstd -dc -q ${shellQuote(join(b.dir, `base-${i}.zst`))} | ${curl(b.target, `INSERT INTO ls.\`${t}\` FORMAT Native`)} -X POST -T -`).join(' && ')
  return measure(['bash', '-o', 'pipefail', '-c', script], process.env, b.dir, b.servers)
}

async function resetTarget(b: Bench, createTables: boolean): Promise<void> {
  await b.target.query('DROP DATABASE IF EXISTS ls')
  if (!createTables) return
  await b.target.query('CREATE DATABASE ls')
  for (const t of b.tables) {
    const ddl = (await b.source.query(`SELECT create_table_query FROM system.tables WHERE database = 'ls' AND name = '${t}' FORMAT TSVRaw`)).trim()
    await b.target.query(ddl)
  }
}




interface Results {
  full: Measured[]
  dump: Measured[]
  restore: Measured[]
  load: Measured[]
  incr: Measured[]
  rawBytes: number
  storedBytes: number
  baseBytes: number
  exportedIncr: number[]
  /** Of those, exported as a delta (only the parts added since the previous backup), and the raw MiB written. */
  appendedIncr: number[]
  writtenIncr: number[]
  daemon?: DaemonTimes
}

async function rounds(b: Bench): Promise<Results> {
  const r: Results = { full: [], dump: [], restore: [], load: [], incr: [], rawBytes: 0, storedBytes: 0, baseBytes: 0, exportedIncr: [], appendedIncr: [], writtenIncr: [] }
  let repo = ''
  let id = ''
  for (let i = 0; i < Number(args.runs); i++) {
    const pair = [async () => r.dump.push(await baselineDump(b)), async () => {
      repo = await freshRepo(b, `repo-${i}`)
      const m = await tm(b, repo, ['backup', 'clickhouse', '--full'])
      r.full.push(m)
      const out = JSON.parse(m.stdout)
      id = out.id
      r.rawBytes = out.stats.rawBytes
      r.storedBytes = out.stats.storedBytes
    }]
    for (const side of i % 2 === 0 ? pair : pair.reverse()) await side()
    if (i > 0) await rm(join(b.dir, `repo-${i - 1}`), { recursive: true, force: true })
    console.log(`round ${i + 1} (a): tidemark ${secs(r.full[i]!.wallMs)} s, curl|zstd ${secs(r.dump[i]!.wallMs)} s`)
  }
  for (const i of b.tables.keys()) r.baseBytes += (await stat(join(b.dir, `base-${i}.zst`))).size
  for (let i = 0; i < Number(args.runs); i++) {
    const pair = [async () => {
      await resetTarget(b, true)
      r.load.push(await baselineLoad(b))
    }, async () => {
      await resetTarget(b, false)
      const m = await tm(b, repo, ['restore', 'clickhouse', '--backup', id, '--target-url', b.target.url], { ...b.env, CLICKHOUSE_USER: b.target.user, CLICKHOUSE_PASSWORD: b.target.password })
      if (!JSON.parse(m.stdout).ok) throw new Error('restore check failed')
      r.restore.push(m)
    }]
    for (const side of i % 2 === 0 ? pair : pair.reverse()) await side()
    console.log(`round ${i + 1} (b): tidemark ${secs(r.restore[i]!.wallMs)} s, zstd -dc|curl ${secs(r.load[i]!.wallMs)} s`)
  }
  const days = Number(args.days)
  const onePercent = Math.round((days * Number(args['rows-per-day'])) / 100)
  for (let i = 0; i < Number(args.runs); i++) {
    await b.source.query(insertRuns(days - 1, onePercent, 10_000_000 + i * onePercent))
    const m = await tm(b, repo, ['backup', 'clickhouse'])
    r.incr.push(m)
    const stats = (JSON.parse(m.stdout) as { stats: { partitionsExported: number; partitionsAppended?: number; exportedRawBytes: number } }).stats
    r.exportedIncr.push(stats.partitionsExported)
    r.appendedIncr.push(stats.partitionsAppended ?? 0)
    r.writtenIncr.push(stats.exportedRawBytes / 2 ** 20)
    console.log(`round ${i + 1} (c): incremental ${secs(m.wallMs)} s, ${r.exportedIncr[i]} partitions exported (${r.appendedIncr[i]} as deltas), ${r.writtenIncr[i]?.toFixed(1)} MiB raw written`)
  }
  r.daemon = await daemonRounds(b, Number(args.runs), days - 1, onePercent)
  return r
}

function report(r: Results, startupMs: number): string {
  const med = (ms: Measured[], f: (m: Measured) => number = (m) => m.wallMs) => median(ms.map(f))
  const each = (ms: Measured[]) => ms.map((m) => secs(m.wallMs)).join(', ')
  const ratio = (a: number, b: number) => (a / b).toFixed(2)
  const total = (m: Measured) => m.cpuMs + m.serverCpuMs
  const line = (name: string, ms: Measured[]) =>
    `| ${name} | ${secs(med(ms))} | ${secs(med(ms, (m) => m.cpuMs))} | ${secs(med(ms, total))} | ${Math.max(...ms.map((m) => m.rssMiB)).toFixed(0)} | ${each(ms)} |`
  const passArgs = process.argv.slice(2).join(' ')
  return `
## ClickHouse logical backup vs curl + zstd — ${new Date().toISOString().slice(0, 16)}Z

- Machine: nproc ${availableParallelism()}, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, ClickHouse 18.16 (Debian), both servers on the same machine; load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')} (machine shared with other work).
- Command: \`npm run bench:clickhouse${passArgs ? ` -- ${passArgs}` : ''}\` (bench/clickhouse.ts; pipeline threads ${args.threads ?? 'nproc (default)'}, clickhouse.parallelism ${args.parallelism ?? '4 (default)'}).
- Data (bench/clickhouse-data.ts): \`ls.runs\` ${args.days} daily partitions × ${args['rows-per-day']} rows, \`ls.feedback\`, materialized view \`ls.runs_stats\`: **${(r.rawBytes / MIB).toFixed(0)} MiB of Native**, stored ${(r.storedBytes / MIB).toFixed(0)} MiB by tidemark, ${(r.baseBytes / MIB).toFixed(0)} MiB by zstd -3.
- ${r.full.length} alternating runs per side; tidemark is the CLI under \`/usr/bin/time -v\` (process start included: \`tidemark version\` takes ${secs(startupMs)} s here).

| side | wall s (median) | CPU s, measured process (median) | CPU s, process + both servers (median) | peak RSS MiB (max) | wall s, each run |
|---|---:|---:|---:|---:|---|
${line('(a) tidemark backup clickhouse --full', r.full)}
${line('(a) baseline curl SELECT … Native \\| zstd -3', r.dump)}
${line('(b) tidemark restore clickhouse (incl. check)', r.restore)}
${line('(b) baseline zstd -dc \\| curl INSERT … Native', r.load)}
${line('(c) tidemark backup clickhouse after +1% rows', r.incr)}

- (a) full backup / baseline: **${ratio(med(r.full), med(r.dump))}** wall (target ≤ 1.15); all CPU (tidemark or curl+zstd, plus the servers): ${ratio(med(r.full, total), med(r.dump, total))}.
- (b) restore / baseline: **${ratio(med(r.restore), med(r.load))}** wall (target ≤ 1.15); all CPU: ${ratio(med(r.restore, total), med(r.load, total))}.
- (c) incremental after +1% rows / full backup: **${((100 * med(r.incr)) / med(r.full)).toFixed(1)} %** (target ≤ 5 %); partitions exported: ${r.exportedIncr.join(', ')} (the latest day of runs and of the MV's inner table), of which as deltas: ${r.appendedIncr.join(', ')}; raw MiB written: ${r.writtenIncr.map((x) => x.toFixed(1)).join(', ')}.
${r.daemon ? `- (c) through the daemon (its scheduler's path: one running process, backups started with POST /v1/backups, timed by the job's start and end): full backup ${secs(median(r.daemon.full))} s (each ${r.daemon.full.map(secs).join(', ')}), incremental after +1% rows ${secs(median(r.daemon.incr))} s (each ${r.daemon.incr.map(secs).join(', ')}; partitions exported/as deltas ${r.daemon.exported.join(', ')}): **${((100 * median(r.daemon.incr)) / median(r.daemon.full)).toFixed(1)} %**.
` : ''}- (d) peak RSS of tidemark during (a): **${Math.max(...r.full.map((m) => m.rssMiB)).toFixed(0)} MiB** (target ≤ 256 MiB).
`
}

async function main(): Promise<void> {
  if (!existsSync(TIME)) throw new Error(`${TIME} is missing: install the Debian package "time"`)
  const dir = await mkdtemp(join(tmpdir(), 'tidemark-chbench-'))
  const [source, target] = await Promise.all([startClickHouse(), startClickHouse()])
  try {
    const genStart = performance.now()
    await loadDataset((sql) => source.query(sql), Number(args.days), Number(args['rows-per-day']))
    console.log(`generated in ${secs(performance.now() - genStart)} s`)
    const tables = (await source.query("SELECT name FROM system.tables WHERE database = 'ls' AND engine LIKE '%MergeTree' ORDER BY name FORMAT TSVRaw")).trim().split('\n')
    const env = {
      PATH: process.env.PATH, HOME: process.env.HOME, NODE_COMPILE_CACHE: join(dir, 'compile-cache'),
      CLICKHOUSE_HOST: '127.0.0.1', CLICKHOUSE_PORT: String(source.httpPort), CLICKHOUSE_USER: source.user, CLICKHOUSE_PASSWORD: source.password, TIDEMARK_LOG_LEVEL: 'warn',
      ...(args.parallelism ? { TIDEMARK_CLICKHOUSE_PARALLELISM: args.parallelism } : {}),
      ...(args.threads ? { TIDEMARK_PIPELINE_THREADS: args.threads } : {}),
    }
    const servers = await serverPids([source.dataDir, target.dataDir])
    if (servers.length !== 2) console.warn(`found ${servers.length} server processes instead of 2: server CPU figures are incomplete`)
    const b: Bench = { dir, source, target, env, tables, servers }
    const startup = await measure([BIN, 'version'], env, dir, servers) // also fills the compile cache
    const warm = await freshRepo(b, 'warm') // warms the page cache and the compile cache of the backup path
    await tm(b, warm, ['backup', 'clickhouse'])
    await rm(join(dir, 'warm'), { recursive: true, force: true })
    const section = report(await rounds(b), (await measure([BIN, 'version'], env, dir, servers)).wallMs || startup.wallMs)
    console.log(section)
    if (!args['no-record']) await appendFile(new URL('./RESULTS.md', import.meta.url), section)
  } finally {
    await Promise.all([source.stop(), target.stop()])
    await rm(dir, { recursive: true, force: true })
  }
}

if (args.method === 'parts') await import('./clickhouse-parts.ts')
else if (args.method === 'logical') await main()
else throw new Error(`--method must be logical or parts, not ${args.method}`)
