/** A real `bin/tidemark daemon` for end-to-end tests, and a client for its API. */
import { captureOutput, spawnServer, stopProcess, waitFor } from '../harness/proc.ts'
import type { Teardown } from '../harness/postgres.ts'
import { BIN, cleanEnv } from '../cli/run.ts'

export interface ApiAnswer {
  status: number
  body: Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * Starts the daemon on `cfg` (its API on 127.0.0.1:`port`, admin token `token`), stopped in
 * teardown; resolves once it says it is up. The daemon runs without NODE_OPTIONS: tap's
 * process tracking would otherwise follow into its children (restore_command among them).
 */
export async function startDaemon(t: Teardown, o: { cfg: string; cwd: string; port: number; token: string }): Promise<{ output: () => string; api: (path: string, body?: unknown) => Promise<ApiAnswer> }> {
  const daemon = spawnServer('env', ['-u', 'NODE_OPTIONS', BIN, 'daemon', '--config', o.cfg], { cwd: o.cwd, env: cleanEnv() })
  t.teardown(() => stopProcess(daemon, 15_000))
  const output = captureOutput(daemon, 256 * 1024)
  await waitFor('the daemon to be up', async () => output().includes('tidemark daemon up'), 60_000)
  const auth = { authorization: `Bearer ${o.token}` }
  const api = async (path: string, body?: unknown): Promise<ApiAnswer> => {
    const res = await fetch(`http://127.0.0.1:${o.port}${path}`, body === undefined ? { headers: auth } : { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: res.status, body: (await res.json()) as ApiAnswer['body'] }
  }
  return { output, api }
}
