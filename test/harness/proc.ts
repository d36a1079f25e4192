/**
 * Process bookkeeping for the test harness: every server a test starts is registered
 * here and killed when the test's teardown runs, when the test process exits, or when
 * it is interrupted (SIGINT/SIGTERM/SIGHUP), so nothing outlives a failed test.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const live = new Set<ChildProcess>()
const tempDirs = new Set<string>()
let hooked = false

function killAllSync(): void {
  for (const child of live) {
    if (child.pid !== undefined && child.exitCode === null) {
      try {
        // Negative pid: the whole process group (servers may fork helpers).
        process.kill(-child.pid, 'SIGKILL')
      } catch {
        try { child.kill('SIGKILL') } catch { /* already gone */ }
      }
    }
  }
  live.clear()
}

function hookExit(): void {
  if (hooked) return
  hooked = true
  process.on('exit', killAllSync)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      killAllSync()
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1))
    })
  }
}

/** Spawns a long-running server in its own process group and registers it for cleanup. */
export function spawnServer(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  hookExit()
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...opts })
  live.add(child)
  child.once('exit', () => live.delete(child))
  return child
}

/** Sends SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const signal = (sig: NodeJS.Signals) => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, sig)
    } catch {
      /* already gone */
    }
  }
  signal('SIGTERM')
  const timer = setTimeout(() => signal('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
  live.delete(child)
}

/** A free TCP port on 127.0.0.1 (asks the kernel, then releases it). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

/** A fresh temporary directory, removed by `removeTempDirs` / at teardown. */
export async function tempDir(prefix = 'tidemark-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  tempDirs.add(dir)
  return dir
}

export async function removeTempDir(dir: string): Promise<void> {
  tempDirs.delete(dir)
  await rm(dir, { recursive: true, force: true })
}

/** Thrown by a waitFor check when waiting longer cannot help (the process exited). */
export class GiveUp extends Error {}

/** Polls `check` until it resolves truthy or `timeoutMs` passes; a GiveUp from `check` ends the wait at once. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v) return v
    } catch (err) {
      if (err instanceof GiveUp) throw new Error(`gave up waiting for ${what}: ${err.message}`, { cause: err })
      last = err
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    }
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Collects a child's output (bounded) so a failed start can say why. */
export function captureOutput(child: ChildProcess, limit = 64 * 1024): () => string {
  let out = ''
  const add = (b: Buffer) => {
    out += b.toString()
    if (out.length > limit) out = out.slice(-limit)
  }
  child.stdout?.on('data', add)
  child.stderr?.on('data', add)
  return () => out
}
