/**
 * (c) as the daemon runs it: the scheduler takes incremental backups in a running
 * process, so it pays no process start-up, module loading or worker start per backup.
 * A real `bin/tidemark daemon` on the benchmark's source server; full and incremental
 * backups started with POST /v1/backups; each timed by the job's own start and end.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { freePort, waitFor } from '../test/harness/proc.ts'
import { startDaemon } from '../test/daemon/process.ts'
import { insertRuns, type Bench } from './clickhouse-data.ts'

const TOKEN = 'bench-admin-token-5c2a'

export interface DaemonTimes {
  /** Job durations in ms. */
  full: number[]
  incr: number[]
  /** Of each incremental: partitions exported, of them as deltas. */
  exported: string[]
}

/** `runs` full backups, then `runs` incrementals each after adding `rows` rows to day `day`; `clickhouse` adds to the daemon's clickhouse settings (method, dataPath). */
export async function daemonRounds(b: Bench, runs: number, day: number, rows: number, clickhouse: Record<string, unknown> = {}): Promise<DaemonTimes> {
  const stops: (() => unknown)[] = []
  try {
    const port = await freePort()
    const cfg = join(b.dir, 'daemon.yaml')
    await writeFile(cfg, stringify({
      repository: { url: join(b.dir, 'daemon-repo') },
      clickhouse: { url: b.source.url, user: b.source.user, password: b.source.password, ...clickhouse },
      schedules: { clickhouse: { incremental: 'off', full: 'off' }, prune: 'off' },
      api: { host: '127.0.0.1', port, adminToken: TOKEN },
      log: { level: 'info' },
    }))
    const { api } = await startDaemon({ teardown: (fn) => void stops.push(fn) }, { cfg, cwd: b.dir, port, token: TOKEN })
    type Job = { state: string; startedAt?: string; endedAt?: string; error?: unknown; result?: { details?: { stats?: { partitionsExported: number; partitionsAppended?: number } } } }
    const backup = async (full: boolean): Promise<Job> => {
      const started = await api('/v1/backups', { source: 'clickhouse', full })
      if (started.status !== 202) throw new Error(`POST /v1/backups: ${started.status} ${JSON.stringify(started.body)}`)
      const id = started.body.job.id as string
      const job = await waitFor(`job ${id}`, async () => {
        const j = (await api(`/v1/jobs/${id}`)).body.job as Job
        return ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : undefined
      }, 300_000, 20)
      if (job.state !== 'succeeded') throw new Error(`backup job ${id} ${job.state}: ${JSON.stringify(job.error)}`)
      return job
    }
    const ms = (j: Job) => Date.parse(j.endedAt as string) - Date.parse(j.startedAt as string)
    const out: DaemonTimes = { full: [], incr: [], exported: [] }
    for (let i = 0; i < runs; i++) out.full.push(ms(await backup(true)))
    for (let i = 0; i < runs; i++) {
      await b.source.query(insertRuns(day, rows, 20_000_000 + i * rows))
      const j = await backup(false)
      out.incr.push(ms(j))
      out.exported.push(`${j.result?.details?.stats?.partitionsExported ?? '?'}/${j.result?.details?.stats?.partitionsAppended ?? '?'}`)
      console.log(`round ${i + 1} (c, daemon): incremental job ${(ms(j) / 1000).toFixed(2)} s`)
    }
    return out
  } finally {
    for (const stop of stops.reverse()) await stop()
  }
}
