/**
 * Replication benchmark against `rclone copy`, measured in the same run (see bench/RESULTS.md).
 *
 *   npm run bench:replicate -- [--objects 256] [--object-mib 4] [--manifests 8] [--runs 3] [--parallel 8] [--no-record]
 *
 * Two s3rver instances stand for two regions. The first gets a repository of
 * `objects` × `object-mib` MiB of random (incompressible) data written through the
 * pipeline, referenced by `manifests` overlapping manifests. Then, alternating,
 * `runs` times each: `tidemark replicate` (the real CLI, one process under
 * `/usr/bin/time -v`) and `rclone copy` between the same two endpoints, each into a
 * fresh prefix of the second instance, with the same parallelism. Every copy is
 * checked (keys and sizes equal the source's). Lag is measured before and after a
 * tidemark run. The CPU time of both s3rver processes is sampled per run, to tell
 * when s3rver itself is the bottleneck. Appends the medians to bench/RESULTS.md and
 * deletes everything it created.
 *
 * `--put-ab` measures only the copy of one object in-process instead (no CLI, no
 * rclone): `objects` objects copied with copyStreamed between the two s3rvers, with
 * the known sha256 passed to put (one streamed PutObject, the hash signed as given)
 * and without it (lib-storage's Upload: the part buffered and hashed by the SDK),
 * alternating `runs` times; prints wall and CPU seconds of this process. Records nothing.
 */
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { appendFile, mkdtemp, open, readFile, rm } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { parseArgs } from 'node:util'
import { mapLimit } from '../src/engine/parallel.ts'
import { dataKey, initRepository, newBackupId, type ManifestBase, type ObjectRef, type Repository } from '../src/engine/repository/index.ts'
import { replicationLag } from '../src/engine/replicate.ts'
import { copyStreamed } from '../src/engine/replicate/copy.ts'
import { listAll, type Sink } from '../src/sinks/sink.ts'
import { openSink } from '../src/sinks/url.ts'
import { startS3rver, type S3rverInstance } from '../test/harness/s3rver.ts'

const MIB = 1024 * 1024
const TIME = '/usr/bin/time'
const BIN = new URL('../bin/tidemark', import.meta.url).pathname

const { values: args } = parseArgs({
  options: {
    objects: { type: 'string', default: '256' },
    'object-mib': { type: 'string', default: '4' },
    manifests: { type: 'string', default: '8' },
    runs: { type: 'string', default: '3' },
    parallel: { type: 'string', default: '8' },
    'no-record': { type: 'boolean', default: false },
    'put-ab': { type: 'boolean', default: false },
  },
})

interface Measured {
  wallMs: number
  cpuMs: number
  rssMiB: number
  /** CPU seconds the two s3rver processes used during the run. */
  s3rverCpuMs: number
}

/** utime + stime of a process, in ms (Linux /proc). */
async function cpuOf(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
}

/** Runs `cmd` under `/usr/bin/time -v`; returns its stdout too. */
async function measure(cmd: string, argv: string[], env: NodeJS.ProcessEnv, dir: string, servers: S3rverInstance[]): Promise<Measured & { stdout: string }> {
  const timeFile = join(dir, 'time.txt')
  const outFile = join(dir, 'stdout.txt')
  const out = await open(outFile, 'w')
  const cpu0 = await Promise.all(servers.map((s) => cpuOf(s.child.pid!)))
  const start = performance.now()
  const proc = spawn(TIME, ['-v', '-o', timeFile, cmd, ...argv], { stdio: ['ignore', out.fd, 'inherit'], env })
  const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve))
  const wallMs = performance.now() - start
  const cpu1 = await Promise.all(servers.map((s) => cpuOf(s.child.pid!)))
  await out.close()
  const stdout = await readFile(outFile, 'utf8')
  if (code !== 0) throw new Error(`${cmd} ${argv.join(' ')} exited with ${code}: ${stdout}`)
  const report = await readFile(timeFile, 'utf8')
  const field = (name: string) => Number(new RegExp(`${name}: ([\\d.]+)`).exec(report)?.[1])
  return {
    wallMs,
    cpuMs: (field('User time \\(seconds\\)') + field('System time \\(seconds\\)')) * 1000,
    rssMiB: field('Maximum resident set size \\(kbytes\\)') / 1024,
    s3rverCpuMs: cpu1.reduce((a, c, i) => a + c - cpu0[i]!, 0),
    stdout,
  }
}

function sinkOn(s3: S3rverInstance, prefix: string): Sink {
  return openSink(`s3://${s3.bucket}/${prefix}`, { endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } })
}

async function listing(sink: Sink): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for await (const o of listAll(sink, '')) if (!o.key.startsWith('locks/')) out.set(o.key, o.size)
  return out
}

async function deletePrefix(s3: S3rverInstance, prefix: string): Promise<void> {
  const sink = sinkOn(s3, prefix)
  try {
    await sink.delete([...(await listing(sink)).keys()])
  } finally {
    await sink.close()
  }
}

/** `objects` random objects through the pipeline, referenced by overlapping manifests (each a quarter of them, shifted). */
async function buildPrimary(repo: Repository): Promise<{ bytes: number; manifests: number }> {
  const n = Number(args.objects)
  const size = Number(args['object-mib']) * MIB
  const refs: ObjectRef[] = await mapLimit([...Array(n).keys()], 4, async (i) => {
    const { reused: _r, ...ref } = await repo.writeObject(dataKey('clickhouse', `bench/t/part-${i}-${randomBytes(4).toString('hex')}`), Readable.from([randomBytes(size)]))
    return ref
  })
  // Manifest j holds a window of 2k objects starting at j·k: each shares half its objects with the next, like incrementals.
  const m = Number(args.manifests)
  const k = Math.max(1, Math.floor(n / m))
  for (let j = 0; j < m; j++) {
    const at = new Date(Date.now() - (m - j) * 60_000)
    const objects = refs.slice(j * k, j === m - 1 ? n : j * k + 2 * k)
    const manifest: ManifestBase = { format: 'tidemark-repository', version: 1, id: newBackupId('clickhouse', at), source: 'clickhouse', method: 'bench', startedAt: at.toISOString(), endedAt: at.toISOString(), objects }
    await repo.commitManifest(manifest)
  }
  return { bytes: refs.reduce((a, r) => a + r.size, 0), manifests: m }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

function rcloneEnv(name: string, s3: S3rverInstance): Record<string, string> {
  const p = `RCLONE_CONFIG_${name}_`
  return {
    [`${p}TYPE`]: 's3',
    [`${p}PROVIDER`]: 'Other',
    [`${p}ENDPOINT`]: s3.endpoint,
    [`${p}ACCESS_KEY_ID`]: s3.accessKeyId,
    [`${p}SECRET_ACCESS_KEY`]: s3.secretAccessKey,
    [`${p}REGION`]: 'us-east-1',
    [`${p}FORCE_PATH_STYLE`]: 'true',
    [`${p}V2_AUTH`]: 'false',
  }
}

interface Lag {
  seconds: number
  bytes: number
  backups: number
  ms: number
}

async function lagTo(primary: Repository, s3: S3rverInstance, prefix: string): Promise<Lag> {
  const sink = sinkOn(s3, prefix)
  try {
    const start = performance.now()
    const lag = await replicationLag(primary, { name: 'dr', sink })
    if (!lag.ok) throw new Error(`lag: ${lag.error.message}`)
    return { seconds: lag.seconds, bytes: lag.bytes, backups: lag.backups, ms: performance.now() - start }
  } finally {
    await sink.close()
  }
}

type Side = 'tidemark replicate' | 'rclone copy'

async function report(runs: Record<Side, Measured[]>, data: { bytes: number; manifests: number }, lag: { before: Lag; after: Lag }, copied: number[]): Promise<string> {
  const mib = data.bytes / MIB
  const row = (side: Side) => {
    const r = runs[side]
    const wall = median(r.map((m) => m.wallMs)) / 1000
    return `| ${side} | ${wall.toFixed(2)} | ${(mib / wall).toFixed(0)} | ${(median(r.map((m) => m.cpuMs)) / 1000).toFixed(2)} | ${(median(r.map((m) => m.s3rverCpuMs)) / 1000).toFixed(2)} | ${Math.max(...r.map((m) => m.rssMiB)).toFixed(0)} | ${r.map((m) => (m.wallMs / 1000).toFixed(2)).join(', ')} |`
  }
  const tm = median(runs['tidemark replicate'].map((m) => m.wallMs))
  const rc = median(runs['rclone copy'].map((m) => m.wallMs))
  const s3rverShare = median(runs['tidemark replicate'].map((m) => m.s3rverCpuMs / m.wallMs))
  const passArgs = process.argv.slice(2).join(' ')
  return `
## Replication vs rclone copy — ${new Date().toISOString().slice(0, 16)}Z

- Machine: nproc ${availableParallelism()}, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')} (machine shared with other work).
- Command: \`npm run bench:replicate${passArgs ? ` -- ${passArgs}` : ''}\` (= \`node bench/replicate.ts\`; objects ${args.objects} × ${args['object-mib']} MiB, ${data.manifests} overlapping manifests, parallelism ${args.parallel} on both sides: tidemark \`secondaries[].parallelism\`, rclone \`--transfers ${args.parallel} --checkers ${args.parallel} --fast-list\`).
- Data: ${mib.toFixed(0)} MiB stored (random bytes through the pipeline, zstd level 1, unencrypted) in s3rver A; each run copies it into a fresh prefix of s3rver B (both on this machine, path style, v4 auth). rclone ${await rcloneVersion()} with an env-only S3 remote per endpoint (provider Other); \`--fast-list\` because s3rver 3.7.1 reports a common prefix in a delimiter listing only when an object sits directly under it (so rclone's directory walk would copy only \`config.json\`), and it lists the whole prefix in one pass as tidemark does.
- ${runs['rclone copy'].length} alternating runs per side, each its own process under \`/usr/bin/time -v\`. Every copy checked: keys and sizes equal the source's. tidemark reported ${copied.map((b) => (b / MIB).toFixed(0)).join(', ')} MiB copied per run (sha256 of every object checked on arrival).

| side | wall s (median) | MiB/s | CPU s (median) | both s3rvers CPU s (median) | peak RSS MiB (max) | wall s, each run |
|---|---:|---:|---:|---:|---:|---|
${row('tidemark replicate')}
${row('rclone copy')}

- Time ratio tidemark / rclone: **${(tm / rc).toFixed(2)}** (target ≤ 1.1).
- Peak RSS of the tidemark process: **${Math.max(...runs['tidemark replicate'].map((m) => m.rssMiB)).toFixed(0)} MiB**.
- s3rver load: during the tidemark runs the two s3rver processes used ${(s3rverShare * 100).toFixed(0)}% of one core per second of wall time (median); ${s3rverShare > 0.8 ? 's3rver (single-threaded Node, writing every object to disk and computing its MD5) is a bottleneck here, so the ratio says more about the client overhead than about a real object store' : 's3rver had CPU to spare'}. The machine has ${availableParallelism()} cores shared by both s3rvers and the copier.
- Lag (\`replicationLag\`, as the daemon will export it): before a run ${lag.before.seconds} s and ${(lag.before.bytes / MIB).toFixed(0)} MiB in ${lag.before.backups} backups (computed in ${lag.before.ms.toFixed(0)} ms); after it ${lag.after.seconds} s, ${lag.after.bytes} B, ${lag.after.backups} backups (${lag.after.ms.toFixed(0)} ms).
`
}

async function rcloneVersion(): Promise<string> {
  const proc = spawn('rclone', ['version'], { stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()))
  await new Promise((r) => proc.on('exit', r))
  return out.split('\n')[0]?.replace(/^rclone /, '') ?? 'unknown'
}

/** The `--put-ab` comparison (see the header). */
async function putAb(): Promise<void> {
  const [a, b] = [await startS3rver(), await startS3rver()]
  const src = sinkOn(a, 'ab')
  const dst = sinkOn(b, 'ab')
  try {
    const objs: { key: string; size: number; sha256: string }[] = []
    for (let i = 0; i < Number(args.objects); i++) {
      const buf = randomBytes(Number(args['object-mib']) * MIB)
      objs.push({ key: `data/o${i}`, size: buf.length, sha256: createHash('sha256').update(buf).digest('hex') })
      await src.put(`data/o${i}`, buf)
    }
    for (let i = 0; i < Number(args.runs); i++) {
      for (const hint of [true, false]) {
        const t0 = performance.now()
        const c0 = process.cpuUsage()
        await mapLimit(objs, Number(args.parallel), (o) => copyStreamed(src, dst, hint ? o : { key: o.key, size: o.size }))
        const c = process.cpuUsage(c0)
        console.log(`round ${i + 1}: ${hint ? 'sha256 hint (streamed PutObject)' : 'no hint (lib-storage Upload)'}: wall ${((performance.now() - t0) / 1000).toFixed(2)} s, CPU ${((c.user + c.system) / 1e6).toFixed(2)} s`)
      }
    }
  } finally {
    await src.close()
    await dst.close()
    await a.stop()
    await b.stop()
  }
}

async function main(): Promise<void> {
  if (!existsSync(TIME)) throw new Error(`${TIME} is missing: install the Debian package "time"`)
  const dir = await mkdtemp(join(tmpdir(), 'tidemark-bench-replicate-'))
  const servers: S3rverInstance[] = []
  try {
    servers.push(await startS3rver(), await startS3rver())
    const [a, b] = servers as [S3rverInstance, S3rverInstance]
    const primary = await initRepository(sinkOn(a, 'tm'), { pipeline: { threads: 2, level: 1 } })
    const buildStart = performance.now()
    const data = await buildPrimary(primary)
    console.log(`primary: ${(data.bytes / MIB).toFixed(0)} MiB in ${data.manifests} manifests, written in ${((performance.now() - buildStart) / 1000).toFixed(1)} s`)
    const source = await listing(primary.sink)

    const base = { ...process.env, NODE_COMPILE_CACHE: join(dir, 'compile-cache') }
    const tmEnv = (prefix: string) => ({
      ...base,
      TIDEMARK_REPOSITORY: `s3://${a.bucket}/tm`,
      TIDEMARK_S3_ENDPOINT: a.endpoint,
      TIDEMARK_S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: a.accessKeyId,
      AWS_SECRET_ACCESS_KEY: a.secretAccessKey,
      TIDEMARK_LOG_LEVEL: 'warn',
      TIDEMARK_SECONDARIES: JSON.stringify([
        { name: 'dr', url: `s3://${b.bucket}/${prefix}`, parallelism: Number(args.parallel), s3: { endpoint: b.endpoint, forcePathStyle: true, accessKeyId: b.accessKeyId, secretAccessKey: b.secretAccessKey } },
      ]),
    })
    // rclone fails on a custom CA bundle with plain-http endpoints; the endpoints here need none.
    const rcEnv = { ...base, ...rcloneEnv('SRC', a), ...rcloneEnv('DST', b), AWS_CA_BUNDLE: undefined }
    const p = args.parallel
    const sides: Record<Side, (prefix: string) => Promise<Measured & { stdout: string }>> = {
      'tidemark replicate': (prefix) => measure(BIN, ['replicate', '--json'], tmEnv(prefix), dir, servers),
      'rclone copy': (prefix) => measure('rclone', ['copy', `SRC:${a.bucket}/tm`, `DST:${b.bucket}/${prefix}`, '--transfers', p, '--checkers', p, '--fast-list'], rcEnv, dir, servers),
    }
    const runs: Record<Side, Measured[]> = { 'tidemark replicate': [], 'rclone copy': [] }
    const copied: number[] = []
    let lag: { before: Lag; after: Lag } | undefined
    for (let i = 0; i < Number(args.runs); i++) {
      for (const side of Object.keys(sides) as Side[]) {
        const prefix = `${side === 'rclone copy' ? 'rc' : 'tm'}-${i}`
        const before = side === 'tidemark replicate' && i === 0 ? await lagTo(primary, b, prefix) : undefined
        const m = await sides[side](prefix)
        if (before) lag = { before, after: await lagTo(primary, b, prefix) }
        if (side === 'tidemark replicate') copied.push((JSON.parse(m.stdout) as { targets: { result: { bytesCopied: number } }[] }).targets[0]!.result.bytesCopied)
        const dest = sinkOn(b, prefix)
        const got = await listing(dest)
        await dest.close()
        const diff = [...source].filter(([k, s]) => got.get(k) !== s).map(([k]) => k)
        if (got.size !== source.size || diff.length > 0) throw new Error(`${side} run ${i + 1}: the copy differs from the source: ${got.size} keys vs ${source.size}; e.g. ${diff.slice(0, 3).join(", ")}; got ${[...got.keys()].slice(0, 3).join(", ")}`)
        await deletePrefix(b, prefix)
        runs[side].push(m)
        console.log(`round ${i + 1}: ${side} ${(m.wallMs / 1000).toFixed(2)} s, RSS ${m.rssMiB.toFixed(0)} MiB, s3rver CPU ${(m.s3rverCpuMs / 1000).toFixed(1)} s`)
      }
    }
    await primary.close()
    const section = await report(runs, data, lag!, copied)
    console.log(section)
    if (!args['no-record']) await appendFile(new URL('./RESULTS.md', import.meta.url), section)
  } finally {
    for (const s of servers) await s.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

await (args['put-ab'] ? putAb() : main())
