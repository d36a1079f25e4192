/**
 * Restore hooks: a command (argv, run without a shell) and/or a webhook, given the
 * restore plan. A command gets the plan as JSON on stdin and in TIDEMARK_RESTORE_PLAN;
 * a webhook gets it as a JSON POST. A non-zero exit, a non-2xx answer, a timeout or a
 * failure to run fails the hook with TM_ERR_HOOK_FAILED (for the pre-restore hook:
 * before anything is touched).
 */
import { spawn } from 'node:child_process'
import { TidemarkError } from '../../errors.ts'

/** One hook: neither set means no hook. */
export interface Hook {
  command?: readonly string[]
  webhook?: string
}

export interface HookRun {
  phase: 'pre-restore' | 'post-restore'
  payload: unknown
  timeoutMs: number
  signal: AbortSignal
}

/** Whether the hook does anything. */
export const hasHook = (h: Hook | undefined): h is Hook => !!h && ((h.command?.length ?? 0) > 0 || h.webhook !== undefined)

// tidemark's own secrets stay out of a hook's environment; what the hook itself needs (KUBECONFIG, AWS_*) passes.
const WITHHELD = /^(TIDEMARK_PASSPHRASE|TIDEMARK_REPOSITORY_ENCRYPTION_PASSPHRASE|TIDEMARK_REPOSITORY_S3_(SECRET_ACCESS_KEY|SESSION_TOKEN)|TIDEMARK_API_(READ|ADMIN)_TOKEN|(TIDEMARK_)?CLICKHOUSE_PASSWORD|TIDEMARK_CLICKHOUSE_URL|POSTGRES_DATABASE_URI|TIDEMARK_POSTGRES_(REPLICATION_)?URL)$/

/** The environment a hook command gets: ours without tidemark's secrets (pure). */
export function hookEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !WITHHELD.test(k)))
}

const tail = (s: string) => s.trim().split('\n').slice(-5).join(' | ').slice(-500)

/** Runs the command with the payload on stdin; resolves with its output's tail. */
function runCommand(argv: readonly string[], r: HookRun): Promise<{ exit: number; output: string }> {
  const json = JSON.stringify(r.payload)
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...hookEnv(process.env), TIDEMARK_RESTORE_PLAN: json, TIDEMARK_HOOK_PHASE: r.phase },
      signal: AbortSignal.any([r.signal, AbortSignal.timeout(r.timeoutMs)]),
    })
    let out = ''
    const keep = (b: Buffer) => (out = (out + b.toString()).slice(-4096))
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    child.stdin.on('error', () => {}) // a hook that ignores its stdin may close it early
    child.stdin.end(json)
    child.once('error', (err) => reject(fail(r.phase, `command ${argv[0]} could not run or was stopped: ${err.message}`)))
    child.once('close', (code, sig) => resolve({ exit: code ?? (sig ? 128 : 1), output: tail(out) }))
  })
}

function fail(phase: string, why: string): TidemarkError {
  return new TidemarkError('TM_ERR_HOOK_FAILED', `the ${phase} hook failed: ${why}`, { details: { phase } })
}

/** POSTs the payload; resolves with the status. */
async function callWebhook(url: string, r: HookRun): Promise<number> {
  try {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r.payload), signal: AbortSignal.any([r.signal, AbortSignal.timeout(r.timeoutMs)]) })
    await res.body?.cancel()
    return res.status
  } catch (err) {
    throw fail(r.phase, `webhook ${new URL(url).origin} did not answer: ${(err as Error).message}`)
  }
}

/** Runs the hook's command, then its webhook; resolves with what each did, rejects with TM_ERR_HOOK_FAILED. */
export async function runHook(h: Hook, r: HookRun): Promise<Record<string, unknown>> {
  const done: Record<string, unknown> = {}
  if (h.command && h.command.length > 0) {
    const { exit, output } = await runCommand(h.command, r)
    if (exit !== 0) throw fail(r.phase, `command ${h.command[0]} exited ${exit}${output ? `: ${output}` : ''}`)
    done.command = { argv0: h.command[0], exit, output }
  }
  if (h.webhook !== undefined) {
    const status = await callWebhook(h.webhook, r)
    if (status < 200 || status > 299) throw fail(r.phase, `webhook ${new URL(h.webhook).origin} answered ${status}`)
    done.webhook = { status }
  }
  return done
}
