/**
 * ClickHouse parts method benchmark (see bench/RESULTS.md), on the dataset of
 * the logical benchmark (bench/clickhouse-data.ts).
 *
 *   npm run bench:clickhouse -- --method parts [--days 30] [--rows-per-day 16000] [--runs 3] [--no-record]
 *
 * Two real clickhouse-servers (source, restore target) whose data paths this
 * process reads and writes, as a sidecar with the data volume mounted would.
 * Alternating sides each round:
 *   (a) restore into a new database of the target (`--rename-db ls=<side>_<round>`):
 *       `tidemark restore clickhouse` of a parts backup (--target-data-path) against the
 *       same of a logical backup;
 *   (b) full parts backup (`TIDEMARK_CLICKHOUSE_METHOD=parts tidemark backup
 *       clickhouse --full`) against FREEZE + `tar -c <shadow dir> | zstd -3 > file`;
 *   (c) incremental parts backup after adding 1% new rows, against (b); also through a
 *       running daemon (bench/clickhouse-daemon.ts), as its scheduler runs it.
 * A reference row for (a): the same part files (the source's active parts, tarred and
 * compressed with `zstd -1` once) extracted with `zstd -dc | tar -x` into a new scratch
 * directory on the same disk: what writing those files costs on this machine, the
 * floor for any restore that writes parts, whatever the tool. Nothing restored or
 * extracted is removed before the rounds end (see rounds()).
 * Every tidemark side is the real CLI under `/usr/bin/time -v`; CPU of the
 * measured process and of both servers is recorded besides wall time.
 */
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import { tableDataDir } from '../src/engine/clickhouse/parts-shadow.ts'
import { startClickHouse } from '../test/harness/clickhouse.ts'
import { BIN, curl, freshRepo, insertRuns, loadDataset, tm, type Bench } from './clickhouse-data.ts'
import { daemonRounds, type DaemonTimes } from './clickhouse-daemon.ts'
import { measure, median, secs, serverPids, shellQuote as q, type Measured } from './timed.ts'

const { values: args } = parseArgs({
  options: {
    days: { type: 'string', default: '30' },
    'rows-per-day': { type: 'string', default: '16000' },
    runs: { type: 'string', default: '3' },
    method: { type: 'string', default: 'parts' },
    'no-record': { type: 'boolean', default: false },
  },
})


/** Baseline (b): FREEZE every MergeTree table, `tar -c shadow/<name> | zstd -3 > file`, remove the shadow directory. */
function baselineFreezeTar(b: Bench): Promise<Measured> {
  const data = join(b.source.dataDir, 'data')
  const freezes = b.tables.map((t) => `${curl(b.source, `ALTER TABLE ls.\`${t}\` FREEZE WITH NAME 'bench'`)} --data-binary ''`).join(' && ')
  const script = `${freezes} && tar -C ${q(data)} -c shadow/bench | zstd -3 -q -f -o ${q(join(b.dir, 'base.tar.zst'))} && rm -rf ${q(join(data, 'shadow', 'bench'))}`
  return measure(['bash', '-o', 'pipefail', '-c', script], process.env, b.dir, b.servers)
}




/** The source's active part directories as one `tar | zstd -1` file: the input of the extraction reference. */
async function packActiveParts(b: Bench): Promise<string> {
  const list = join(b.dir, 'active-parts.txt')
  const out = join(b.dir, 'active-parts.tar.zst')
  const root = join(b.source.dataDir, 'data')
  const parts = (await b.source.query("SELECT table, name FROM system.parts WHERE database = 'ls' AND active ORDER BY table, name FORMAT TSVRaw")).trim().split('\n')
  // Relative to the data path, with table names escaped as the server names their directories.
  await writeFile(list, parts.map((l) => { const [table, name] = l.split('\t') as [string, string]; return relative(root, join(tableDataDir(root, 'ls', table), name)) }).join('\n'))
  await measure(['bash', '-o', 'pipefail', '-c', `tar -C ${q(root)} -c -T ${q(list)} | zstd -1 -q -f -o ${q(out)}`], process.env, b.dir, b.servers)
  return out
}

/** Reference for (a): extracts `packed` into a new empty scratch directory `into`, kept until the end (see rounds). */
async function extractParts(b: Bench, packed: string, into: string): Promise<Measured> {
  await mkdir(into)
  return await measure(['bash', '-o', 'pipefail', '-c', `zstd -dc ${q(packed)} | tar -x -C ${q(into)}`], process.env, b.dir, b.servers)
}

interface Results {
  extract: Measured[]
  restoreParts: Measured[]
  restoreLogical: Measured[]
  full: Measured[]
  baseline: Measured[]
  incr: Measured[]
  daemon?: DaemonTimes
  uploadedIncr: number[]
}

async function rounds(b: Bench): Promise<Results> {
  const parts = { ...b.env, TIDEMARK_CLICKHOUSE_METHOD: 'parts', TIDEMARK_CLICKHOUSE_DATA_PATH: join(b.source.dataDir, 'data') }
  const partsRepo = await freshRepo(b, 'parts')
  const logicalRepo = await freshRepo(b, 'logical')
  const partsId = JSON.parse((await tm(b, partsRepo, ['backup', 'clickhouse'], parts)).stdout).id as string
  const logicalId = JSON.parse((await tm(b, logicalRepo, ['backup', 'clickhouse'])).stdout).id as string
  const target = `http://${b.target.user}:${encodeURIComponent(b.target.password)}@127.0.0.1:${b.target.httpPort}`
  const r: Results = { extract: [], restoreParts: [], restoreLogical: [], full: [], baseline: [], incr: [], uploadedIncr: [] }
  // Every restore goes into a database of its own, and every extraction into a directory of
  // its own, all removed only after the rounds: no side runs right after the deletion of
  // thousands of files. On this machine's ext4 (no journal) that made creating files several
  // times slower for minutes (the kernel skips inodes freed within the last 60 to 360 s,
  // one by one, for every new file), so each timed side paid for the cleanup before it.
  const restoreParts = async (i: number) => {
    r.restoreParts.push(await tm(b, partsRepo, ['restore', 'clickhouse', '--backup', partsId, '--rename-db', `ls=parts_${i}`, '--target-url', target, '--target-data-path', join(b.target.dataDir, 'data')]))
  }
  const restoreLogical = async (i: number) => {
    r.restoreLogical.push(await tm(b, logicalRepo, ['restore', 'clickhouse', '--backup', logicalId, '--rename-db', `ls=logical_${i}`, '--target-url', target]))
  }
  const full = async () => r.full.push(await tm(b, partsRepo, ['backup', 'clickhouse', '--full'], parts))
  const base = async () => r.baseline.push(await baselineFreezeTar(b))
  const packed = await packActiveParts(b)
  const extract = async (i: number) => r.extract.push(await extractParts(b, packed, join(b.dir, `extracted-${i}`)))
  const perDay = Number(args['rows-per-day'])
  const total = Number(args.days) * perDay
  for (let i = 0; i < Number(args.runs); i++) {
    for (const f of i % 2 === 0 ? [restoreParts, extract, restoreLogical, full, base] : [restoreLogical, extract, restoreParts, base, full]) await f(i)
    // 1% new rows into the latest day, then an incremental parts backup.
    await b.source.query(insertRuns(Number(args.days) - 1, Math.round(total / 100), 10_000_000 * (i + 1)))
    const m = await tm(b, partsRepo, ['backup', 'clickhouse'], parts)
    r.incr.push(m)
    r.uploadedIncr.push((JSON.parse(m.stdout) as { stats: { partitionsExported: number } }).stats.partitionsExported)
  }
  r.daemon = await daemonRounds(b, Number(args.runs), Number(args.days) - 1, Math.round(total / 100), { method: 'parts', dataPath: join(b.source.dataDir, 'data') })
  return r
}

function report(r: Results): string {
  const med = (ms: Measured[], f: (m: Measured) => number = (m) => m.wallMs) => median(ms.map(f))
  const total = (m: Measured) => m.cpuMs + m.serverCpuMs
  const row = (name: string, ms: Measured[]) => `| ${name} | ${secs(med(ms))} | ${secs(med(ms, (m) => m.cpuMs))} | ${secs(med(ms, total))} | ${ms.map((m) => secs(m.wallMs)).join(', ')} |`
  const ratio = (a: number, b: number) => (a / b).toFixed(2)
  return `
## ClickHouse parts method — ${new Date().toISOString().slice(0, 16)}Z

- Machine: nproc ${availableParallelism()}, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, ClickHouse 18.16; load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')} (machine shared with other work).
- Command: \`npm run bench:clickhouse -- --method parts --days ${args.days} --rows-per-day ${args['rows-per-day']} --runs ${args.runs}\` (dataset of bench/clickhouse-data.ts); ${args.runs} alternating runs per side, medians.

| side | wall s (median) | CPU s, process (median) | CPU s, process + servers (median) | wall s, each run |
|---|---:|---:|---:|---|
${row('(a) tidemark restore, parts backup', r.restoreParts)}
${row('(a) tidemark restore, logical backup', r.restoreLogical)}
${row('(a) reference: zstd -dc \\| tar -x of the same part files', r.extract)}
${row('(b) tidemark backup --full, parts', r.full)}
${row('(b) baseline FREEZE + tar -c shadow \\| zstd -3', r.baseline)}
${row('(c) tidemark backup, parts, after +1% rows', r.incr)}

- (a) logical restore / parts restore: **${ratio(med(r.restoreLogical), med(r.restoreParts))}×** wall (target ≥ 10×); all CPU: ${ratio(med(r.restoreLogical, total), med(r.restoreParts, total))}×. Logical restore / extraction of the same files with tar: ${ratio(med(r.restoreLogical), med(r.extract))}× (the most any restore that writes these files could reach here); parts restore / extraction: ${ratio(med(r.restoreParts), med(r.extract))}.
- (b) parts backup / baseline: **${ratio(med(r.full), med(r.baseline))}** wall (target ≤ 1.15); all CPU: ${ratio(med(r.full, total), med(r.baseline, total))}.
- (c) incremental after +1% rows / full parts backup: **${((100 * med(r.incr)) / med(r.full)).toFixed(1)} %** (target ≤ 5 %); objects uploaded: ${r.uploadedIncr.join(', ')}.
${r.daemon ? `- (c) through the daemon (clickhouse.method parts; one running process, backups started with POST /v1/backups, timed by the job's start and end): full ${secs(median(r.daemon.full))} s (each ${r.daemon.full.map(secs).join(', ')}), incremental after +1% rows ${secs(median(r.daemon.incr))} s (each ${r.daemon.incr.map(secs).join(', ')}): **${((100 * median(r.daemon.incr)) / median(r.daemon.full)).toFixed(1)} %**.
` : ''}`
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tidemark-chpbench-'))
  const [source, target] = await Promise.all([startClickHouse(), startClickHouse()])
  try {
    const t0 = performance.now()
    await loadDataset((sql) => source.query(sql), Number(args.days), Number(args['rows-per-day']))
    console.log(`generated in ${secs(performance.now() - t0)} s`)
    const tables = (await source.query("SELECT name FROM system.tables WHERE database = 'ls' AND engine LIKE '%MergeTree' ORDER BY name FORMAT TSVRaw")).trim().split('\n')
    const env = {
      PATH: process.env.PATH, HOME: process.env.HOME, NODE_COMPILE_CACHE: join(dir, 'compile-cache'),
      CLICKHOUSE_HOST: '127.0.0.1', CLICKHOUSE_PORT: String(source.httpPort), CLICKHOUSE_USER: source.user, CLICKHOUSE_PASSWORD: source.password, TIDEMARK_LOG_LEVEL: 'warn',
    }
    const servers = await serverPids([source.dataDir, target.dataDir])
    await measure([BIN, 'version'], env, dir, servers)
    const section = report(await rounds({ dir, source, target, env, tables, servers }))
    console.log(section)
    if (!args['no-record']) await appendFile(new URL('./RESULTS.md', import.meta.url), section)
  } finally {
    await Promise.all([source.stop(), target.stop()])
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
