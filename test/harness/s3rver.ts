/**
 * A real S3-compatible server for tests: s3rver in a child process on 127.0.0.1, its
 * data in a temp dir, one bucket created. Several can run at once (two regions).
 * See s3rver-child.ts for the s3rver defects the child works around.
 */
import type { ChildProcess } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { captureOutput, removeTempDir, spawnServer, stopProcess, tempDir, waitFor } from './proc.ts'

const CHILD = fileURLToPath(new URL('./s3rver-child.ts', import.meta.url))

export interface S3rverInstance {
  endpoint: string
  port: number
  bucket: string
  accessKeyId: 'S3RVER'
  secretAccessKey: 'S3RVER'
  /** s3rver's data directory. */
  dir: string
  /** The child process (kill it to simulate an outage). */
  child: ChildProcess
  /** Multipart uploads begun and neither completed nor aborted, read from s3rver's data dir (s3rver has no ListMultipartUploads). */
  pendingUploads(): Promise<number>
  /** Stops the server and removes its data dir (unless the caller supplied it). Idempotent. */
  stop(): Promise<void>
}

export interface S3rverOptions {
  bucket?: string
  /** Default 0: the kernel picks a free port. Give the old port (and dir) to restart a killed server. */
  port?: number
  /** Reuse a data dir (kept on stop). */
  dir?: string
}

/** Reads the child's `{"port":N}` line, or fails with its output if it exits first. */
function readyPort(child: ChildProcess, output: () => string): Promise<number> {
  return new Promise((resolve, reject) => {
    let buf = ''
    const onData = (b: Buffer) => {
      buf += b.toString()
      const line = buf.split('\n').find((l) => l.startsWith('{'))
      if (line) {
        child.stdout?.off('data', onData)
        resolve((JSON.parse(line) as { port: number }).port)
      }
    }
    child.stdout?.on('data', onData)
    child.once('exit', (code, sig) => reject(new Error(`s3rver exited (${code ?? sig}) before listening:\n${output()}`)))
    setTimeout(() => reject(new Error(`s3rver did not start within 20 s:\n${output()}`)), 20_000).unref()
  })
}

/** Starts s3rver with one bucket; registers stop in `t.teardown` when a test is given. */
export async function startS3rver(t?: { teardown(fn: () => unknown): void }, opts: S3rverOptions = {}): Promise<S3rverInstance> {
  const bucket = opts.bucket ?? 'tidemark-test'
  const dir = opts.dir ?? (await tempDir('tidemark-s3rver-'))
  const child = spawnServer(process.execPath, ['--openssl-legacy-provider', CHILD, dir, String(opts.port ?? 0), bucket])
  const output = captureOutput(child)
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    await stopProcess(child, 2_000)
    if (!opts.dir) await removeTempDir(dir)
  }
  t?.teardown(stop)
  try {
    const port = await readyPort(child, output)
    const endpoint = `http://127.0.0.1:${port}`
    await waitFor('s3rver to answer', async () => (await fetch(`${endpoint}/`)).ok, 10_000, 50)
    const pendingUploads = async () => (await readdir(join(dir, bucket, '._S3rver_uploads')).catch(() => [])).length
    return { endpoint, port, bucket, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', dir, child, pendingUploads, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
