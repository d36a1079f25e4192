/**
 * Runs a short-lived PostgreSQL client tool to completion and collects its output.
 * Long-running tools (pg_basebackup, pg_receivewal) are spawned by their own modules.
 */
import { spawn } from 'node:child_process'
import { TidemarkError } from '../../errors.ts'

/** How a finished tool run ended. Output is bounded by `maxOutput` (the tail is kept). */
export interface ToolRun {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Options of a tool run; `timeoutMs` kills the tool (SIGKILL) when it runs longer. */
export interface RunOptions {
  env?: Record<string, string>
  stdin?: string
  timeoutMs?: number
  signal?: AbortSignal
  maxOutput?: number
}

/** The error for a tool that cannot be started (missing, not executable). */
export function toolMissing(path: string, cause: unknown): TidemarkError {
  return new TidemarkError(
    'TM_ERR_POSTGRES_TOOL_MISSING',
    `cannot run ${path}: ${(cause as Error).message}. Install the PostgreSQL client tools of the server's major version, or set postgres.binDir to their directory`,
    { cause, details: { tool: path } },
  )
}

/** Runs `path args…`; resolves with how it ended (non-zero exits resolve too), rejects only if it cannot start. */
export function runTool(path: string, args: string[], opts: RunOptions = {}): Promise<ToolRun> {
  const max = opts.maxOutput ?? 1 << 20
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, {
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: opts.signal,
      timeout: opts.timeoutMs,
      killSignal: 'SIGKILL',
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => {
      stdout = (stdout + b.toString()).slice(-max)
    })
    child.stderr.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-max)
    })
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'EACCES') reject(toolMissing(path, err))
      else if (err.name === 'AbortError') reject(new TidemarkError('TM_ERR_ABORTED', `${path} was aborted`, { cause: err }))
      // Other errors (a kill failing) are followed by 'close', which settles the promise.
    })
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
    // A tool that exits before reading stdin makes the write fail with EPIPE: harmless.
    child.stdin.on('error', () => {})
    child.stdin.end(opts.stdin ?? '')
  })
}
