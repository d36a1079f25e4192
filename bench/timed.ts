/**
 * Timing for the ClickHouse benchmarks: a command under `/usr/bin/time -v` (wall, CPU and
 * peak RSS of the process and the children it waited for) together with the CPU the
 * servers spent meanwhile, read from /proc; and the small helpers the reports use.
 */
import { spawn } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'

export const TIME = '/usr/bin/time'

/** One timed process. */
export interface Measured {
  wallMs: number
  cpuMs: number
  serverCpuMs: number
  rssMiB: number
  stdout: string
}

/** Pids of the clickhouse-servers whose config files are in `dirs`. */
export async function serverPids(dirs: string[]): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
    if (dirs.some((d) => cmdline.includes(join(d, 'config.xml')))) pids.push(Number(entry))
  }
  return pids
}

/** CPU milliseconds `pids` have used so far (clock ticks of 10 ms). */
async function cpuOf(pids: readonly number[]): Promise<number> {
  let ticks = 0
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0)
  }
  return ticks * 10
}

/** Runs `argv` under `/usr/bin/time -v`, counting the CPU of `servers` meanwhile; stdout is kept (small), stderr inherited. */
export async function measure(argv: string[], env: NodeJS.ProcessEnv, scratch: string, servers: readonly number[]): Promise<Measured> {
  const timeFile = join(scratch, 'time.txt')
  const serverStart = await cpuOf(servers)
  const start = performance.now()
  const proc = spawn(TIME, ['-v', '-o', timeFile, ...argv], { stdio: ['ignore', 'pipe', 'inherit'], env })
  let stdout = ''
  proc.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
  const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve))
  const wallMs = performance.now() - start
  const serverCpuMs = (await cpuOf(servers)) - serverStart
  if (code !== 0) throw new Error(`${argv.join(' ')} exited with ${code}: ${stdout.slice(0, 2000)}`)
  const report = await readFile(timeFile, 'utf8')
  const field = (name: string) => Number(new RegExp(`${name}: ([\\d.]+)`).exec(report)?.[1])
  return { wallMs, serverCpuMs, cpuMs: (field('User time \\(seconds\\)') + field('System time \\(seconds\\)')) * 1000, rssMiB: field('Maximum resident set size \\(kbytes\\)') / 1024, stdout }
}

export const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
export const secs = (ms: number) => (ms / 1000).toFixed(2)
