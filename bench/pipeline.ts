/**
 * Pipeline benchmark against the zstd CLI, measured in the same run (see bench/RESULTS.md).
 *
 *   npm run bench:pipeline -- [--mib 1024] [--runs 3] [--threads 2] [--chunk-mib 4] [--level 3]
 *                             [--max-in-flight N] [--read-kib 1024] [--no-record]
 *
 * Generates ClickHouse-like data once, then runs every side of SIDES in turn, `runs` times
 * (alternating, so a busy moment of a shared machine hurts all sides alike). Every side is its
 * own process under `/usr/bin/time -v`, so peak RSS is the real maximum resident set. Tidemark
 * processes run with a warm Node compile cache, as the daemon should (in Node 24 it also caches
 * type-stripped TypeScript); one side shows encode without it. They also report their
 * in-process time (pool created beforehand, as in the daemon). Then checks every output decodes
 * to the input, appends the medians to bench/RESULTS.md and deletes its temporary data.
 */
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream, existsSync } from 'node:fs'
import { appendFile, mkdtemp, open, readFile, rm, stat } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import { createPipelinePool, decode, encode } from '../src/engine/pipeline/index.ts'

const MIB = 1024 * 1024
const TIME = '/usr/bin/time'
const OBJECT_ID = 'bench/object'

const { values: args } = parseArgs({
  options: {
    mib: { type: 'string', default: '1024' },
    runs: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
    'chunk-mib': { type: 'string', default: '4' },
    level: { type: 'string', default: '3' },
    'max-in-flight': { type: 'string' },
    'read-kib': { type: 'string', default: '1024' },
    'no-record': { type: 'boolean', default: false },
    // child side only
    child: { type: 'string' },
    in: { type: 'string' },
    out: { type: 'string' },
    encrypt: { type: 'boolean', default: false },
    stream: { type: 'boolean', default: false },
  },
})

// ---- child side: one tidemark encode or decode, timed from the first byte to the end ----

async function child(): Promise<void> {
  const pool = createPipelinePool({ threads: Number(args.threads) })
  const key = args.encrypt ? Buffer.from(process.env.TM_BENCH_KEY ?? '', 'hex') : undefined
  const options = {
    pool,
    ...(key ? { key, objectId: OBJECT_ID } : {}),
    ...(args['max-in-flight'] === undefined ? {} : { maxInFlight: Number(args['max-in-flight']) }),
  }
  const stream = () => createReadStream(args.in!, { highWaterMark: Number(args['read-kib']) * 1024 })
  const start = performance.now()
  let result: unknown
  if (args.child === 'encode') {
    const file = args.stream ? undefined : await open(args.in!, 'r')
    const encoded = encode(file ?? stream(), { ...options, chunkSize: Number(args['chunk-mib']) * MIB, level: Number(args.level) })
    await pipeline(encoded.stream, createWriteStream(args.out!))
    result = await encoded.done
    await file?.close()
  } else {
    await pipeline(decode(stream(), options), createWriteStream(args.out!))
  }
  const innerMs = performance.now() - start
  await pool.destroy()
  process.stdout.write(JSON.stringify({ innerMs, result }) + '\n')
}

// ---- parent side ----

interface Measured {
  wallMs: number
  /** Tidemark only: from the first byte read to the last written, inside the process. */
  innerMs: number | undefined
  /** User + system CPU of the whole process: steadier than wall time on a shared machine. */
  cpuMs: number
  rssMiB: number
}

/** Runs `cmd` under `/usr/bin/time -v` with stdout to `stdoutPath`. */
async function measure(cmd: string, argv: string[], stdoutPath: string, env: NodeJS.ProcessEnv = process.env): Promise<Measured> {
  const timeFile = `${stdoutPath}.time`
  const out = await open(stdoutPath, 'w')
  const start = performance.now()
  const proc = spawn(TIME, ['-v', '-o', timeFile, cmd, ...argv], { stdio: ['ignore', out.fd, 'inherit'], env })
  const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve))
  const wallMs = performance.now() - start
  await out.close()
  if (code !== 0) throw new Error(`${cmd} ${argv.join(' ')} exited with ${code}`)
  const report = await readFile(timeFile, 'utf8')
  const field = (name: string) => Number(new RegExp(`${name}: ([\\d.]+)`).exec(report)?.[1])
  const cpuMs = (field('User time \\(seconds\\)') + field('System time \\(seconds\\)')) * 1000
  return { wallMs, innerMs: undefined, cpuMs, rssMiB: field('Maximum resident set size \\(kbytes\\)') / 1024 }
}

interface Context {
  dir: string
  data: string
  key: Buffer
  /** Environment of tidemark children: compile cache on. */
  env: NodeJS.ProcessEnv
}

const file = (ctx: Context, name: string) => join(ctx.dir, name)

/** A tidemark child process; its in-process time comes back on stdout. */
async function tidemark(ctx: Context, mode: 'encode' | 'decode', input: string, output: string, flags: string[] = [], env = ctx.env): Promise<Measured> {
  const report = `${output === '/dev/null' ? join(ctx.dir, `${mode}-${flags.join('')}`) : output}.json`
  const pass = ['threads', 'chunk-mib', 'level', 'read-kib', 'max-in-flight'].flatMap((k) => {
    const v = args[k as keyof typeof args]
    return v === undefined ? [] : [`--${k}`, String(v)]
  })
  const argv = [import.meta.filename, '--child', mode, '--in', input, '--out', output, ...pass, ...flags]
  const measured = await measure(process.execPath, argv, report, env)
  const line = JSON.parse(await readFile(report, 'utf8')) as { innerMs: number }
  return { ...measured, innerMs: line.innerMs }
}

/** What is measured, in the order it runs each round. */
const SIDES = {
  zstd: (c: Context) => measure('zstd', [`-T${args.threads}`, `-${args.level}`, '-q', '-c', c.data], file(c, 'zstd.zst')),
  tidemark: (c: Context) => tidemark(c, 'encode', c.data, file(c, 'tm.zst')),
  'tidemark+aes': (c: Context) => tidemark(c, 'encode', c.data, file(c, 'tm.sealed'), ['--encrypt']),
  'tidemark, stream source': (c: Context) => tidemark(c, 'encode', c.data, file(c, 'tm-stream.zst'), ['--stream']),
  'tidemark, no compile cache': (c: Context) =>
    tidemark(c, 'encode', c.data, file(c, 'tm-nocache.zst'), [], { ...c.env, NODE_COMPILE_CACHE: undefined, NODE_DISABLE_COMPILE_CACHE: '1' }),
  'zstd -dc': (c: Context) => measure('zstd', ['-dc', '-q', file(c, 'zstd.zst')], '/dev/null'),
  'tidemark decode': (c: Context) => tidemark(c, 'decode', file(c, 'tm.zst'), '/dev/null'),
  'tidemark+aes decode': (c: Context) => tidemark(c, 'decode', file(c, 'tm.sealed'), '/dev/null', ['--encrypt']),
} as const
type Side = keyof typeof SIDES

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path, { highWaterMark: MIB }), hash)
  return hash.digest('hex')
}

/** sha256 of what `zstd -dc file` writes. */
async function sha256OfZstd(path: string): Promise<string> {
  const proc = spawn('zstd', ['-dc', path], { stdio: ['ignore', 'pipe', 'inherit'] })
  const hash = createHash('sha256')
  await pipeline(proc.stdout, hash)
  return hash.digest('hex')
}

async function sha256OfDecode(path: string, key: Buffer | undefined): Promise<string> {
  const pool = createPipelinePool({ threads: Number(args.threads) })
  try {
    const hash = createHash('sha256')
    await pipeline(decode(createReadStream(path), { pool, ...(key ? { key, objectId: OBJECT_ID } : {}) }), hash)
    return hash.digest('hex')
  } finally {
    await pool.destroy()
  }
}

/** Every output checked against the input, by sha256. */
async function checks(c: Context): Promise<Record<string, boolean>> {
  const want = await sha256File(c.data)
  const plain = await sha256File(file(c, 'tm.zst'))
  return {
    'zstd -dc of the tidemark object': (await sha256OfZstd(file(c, 'tm.zst'))) === want,
    'tidemark decode': (await sha256OfDecode(file(c, 'tm.zst'), undefined)) === want,
    'tidemark+aes decode': (await sha256OfDecode(file(c, 'tm.sealed'), c.key)) === want,
    'stream-source and no-cache objects identical to the file-source one':
      (await sha256File(file(c, 'tm-stream.zst'))) === plain && (await sha256File(file(c, 'tm-nocache.zst'))) === plain,
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

interface Summary {
  wallMs: number
  cpuMs: number
  innerMs: number | undefined
  rssMiB: number
  mibps: number
  innerMibps: number | undefined
}

function summarize(runs: Measured[], rawMiB: number): Summary {
  const wallMs = median(runs.map((r) => r.wallMs))
  const inner = runs[0]?.innerMs === undefined ? undefined : median(runs.map((r) => r.innerMs!))
  return {
    wallMs,
    cpuMs: median(runs.map((r) => r.cpuMs)),
    innerMs: inner,
    rssMiB: Math.max(...runs.map((r) => r.rssMiB)),
    mibps: rawMiB / (wallMs / 1000),
    innerMibps: inner === undefined ? undefined : rawMiB / (inner / 1000),
  }
}

function table(by: Record<Side, Summary>, runs: Record<Side, Measured[]>): string {
  const f = (n: number | undefined, d = 0) => (n === undefined ? '–' : n.toFixed(d))
  const lines = [
    '| side | wall s (median) | MiB/s (wall) | MiB/s (in-process) | CPU s (median) | peak RSS MiB (max) | wall s, each run |',
    '|---|---:|---:|---:|---:|---:|---|',
  ]
  for (const side of Object.keys(SIDES) as Side[]) {
    const r = by[side]
    const each = runs[side].map((m) => (m.wallMs / 1000).toFixed(2)).join(', ')
    lines.push(`| ${side} | ${f(r.wallMs / 1000, 2)} | ${f(r.mibps)} | ${f(r.innerMibps)} | ${f(r.cpuMs / 1000, 2)} | ${f(r.rssMiB)} | ${each} |`)
  }
  return lines.join('\n')
}

function report(by: Record<Side, Summary>, runs: Record<Side, Measured[]>, rawBytes: number, sizes: Record<string, number>, ok: Record<string, boolean>): string {
  const ratio = (a: number, b: number) => (a / b).toFixed(2)
  const vs = (side: Side, base: Side) => `${ratio(by[side].mibps, by[base].mibps)} wall, ${ratio(by[side].innerMibps!, by[base].mibps)} in-process`
  const vsZstd = (side: Side) => vs(side, 'zstd')
  const vsDc = (side: Side) => vs(side, 'zstd -dc')
  const passArgs = process.argv.slice(2).join(' ')
  return `
## Pipeline vs zstd CLI — ${new Date().toISOString().slice(0, 16)}Z

- Machine: nproc ${availableParallelism()}, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')} (machine shared with other work).
- Command: \`npm run bench:pipeline${passArgs ? ` -- ${passArgs}` : ''}\` (threads ${args.threads}, chunk ${args['chunk-mib']} MiB, level ${args.level}, stream-source read size ${args['read-kib']} KiB, maxInFlight ${args['max-in-flight'] ?? 'default'}).
- Data: ${(rawBytes / MIB).toFixed(0)} MiB of generated ClickHouse Native \`runs\` blocks (bench/gen-clickhouse-like.ts, seed 42). Compression: zstd CLI ${ratio(rawBytes, sizes.zstd!)}×, tidemark ${ratio(rawBytes, sizes.tm!)}×, tidemark+aes ${ratio(rawBytes, sizes.sealed!)}×.
- ${runs.zstd.length} alternating runs per side, each its own process under \`/usr/bin/time -v\`. MiB/s are raw (uncompressed) MiB per second; "in-process" leaves out process start and pool creation (the daemon does both once). Tidemark encodes read the file through a FileHandle unless marked "stream source".

${table(by, runs)}

- Encode throughput tidemark / zstd: **${vsZstd('tidemark')}** (target ≥ 0.85). With AES-256-GCM: ${vsZstd('tidemark+aes')}. From a stream source: ${vsZstd('tidemark, stream source')}.
- CPU time zstd / tidemark (whole processes, start included): ${ratio(by.zstd.cpuMs, by.tidemark.cpuMs)}. A load-independent proxy for the wall-time ratio when every core is busy.
- Decode throughput tidemark / \`zstd -dc\`: ${vsDc('tidemark decode')}; with AES-256-GCM ${vsDc('tidemark+aes decode')}.
- Peak RSS tidemark encode **${by.tidemark.rssMiB.toFixed(0)} MiB** (target < 200 MiB), with AES ${by['tidemark+aes'].rssMiB.toFixed(0)} MiB, from a stream source ${by['tidemark, stream source'].rssMiB.toFixed(0)} MiB, without the compile cache ${by['tidemark, no compile cache'].rssMiB.toFixed(0)} MiB; zstd ${by.zstd.rssMiB.toFixed(0)} MiB.
- Checks (sha256): ${Object.entries(ok).map(([k, v]) => `${k}: ${v ? 'yes' : 'NO'}`).join('; ')}.
`
}

async function parent(): Promise<void> {
  if (!existsSync(TIME)) throw new Error(`${TIME} is missing: install the Debian package "time"`)
  const { generateClickhouseLike } = await import('./gen-clickhouse-like.ts')
  const dir = await mkdtemp(join(tmpdir(), 'tidemark-bench-'))
  try {
    const data = join(dir, 'runs.native')
    const genStart = performance.now()
    const rawBytes = generateClickhouseLike(data, Number(args.mib) * MIB)
    console.log(`generated ${(rawBytes / MIB).toFixed(0)} MiB in ${((performance.now() - genStart) / 1000).toFixed(1)} s`)
    const ctx: Context = { dir, data, key: randomBytes(32), env: { ...process.env, NODE_COMPILE_CACHE: join(dir, 'compile-cache') } }
    ctx.env.TM_BENCH_KEY = ctx.key.toString('hex')
    await tidemark(ctx, 'encode', data, file(ctx, 'warm-up.zst')) // fills the compile cache
    const runs = Object.fromEntries(Object.keys(SIDES).map((s) => [s, [] as Measured[]])) as Record<Side, Measured[]>
    for (let i = 0; i < Number(args.runs); i++) {
      for (const side of Object.keys(SIDES) as Side[]) runs[side].push(await SIDES[side](ctx))
      console.log(`round ${i + 1}: ${(Object.keys(SIDES) as Side[]).map((s) => `${s} ${(runs[s][i]!.wallMs / 1000).toFixed(2)} s`).join(', ')}`)
    }
    const sizes = { zstd: (await stat(file(ctx, 'zstd.zst'))).size, tm: (await stat(file(ctx, 'tm.zst'))).size, sealed: (await stat(file(ctx, 'tm.sealed'))).size }
    const ok = await checks(ctx)
    const by = Object.fromEntries(Object.keys(SIDES).map((s) => [s, summarize(runs[s as Side], rawBytes / MIB)])) as Record<Side, Summary>
    const section = report(by, runs, rawBytes, sizes, ok)
    console.log(section)
    if (!args['no-record']) await appendFile(new URL('./RESULTS.md', import.meta.url), section)
    if (Object.values(ok).some((v) => !v)) throw new Error('an output did not decode to the input')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

if (args.child) await child()
else await parent()
