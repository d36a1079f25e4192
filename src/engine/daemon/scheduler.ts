/**
 * The schedules: which cron expression starts which job (pure: scheduleEntries), and
 * node-cron tasks that fire them. A firing only asks the job registry to start the
 * job; when the store's previous job still runs, the registry records a skipped run
 * (counted in /metrics) instead of queueing one. So a task's body never blocks, and
 * node-cron's own overlap handling never comes into play.
 */
import cron, { type ScheduledTask } from 'node-cron'
import type { SchedulesConfig } from '../../config.ts'

/** One schedule: a name (for logs and tests), its cron expression, what it starts. */
export interface ScheduleEntry {
  name: string
  cron: string
  fire: () => void
}

/** What the schedules can start; an absent action means its store or feature is not configured. */
export interface ScheduleActions {
  clickhouseIncremental?: () => void
  clickhouseFull?: () => void
  postgresBase?: () => void
  prune?: () => void
  replicate?: () => void
}

/** The entries for the configured schedules and the available actions (pure). A schedule set to off, or without an action, is left out. */
export function scheduleEntries(s: SchedulesConfig, a: ScheduleActions): ScheduleEntry[] {
  const pairs: [string, string | undefined, (() => void) | undefined][] = [
    ['clickhouse-incremental', s.clickhouse.incremental, a.clickhouseIncremental],
    ['clickhouse-full', s.clickhouse.full, a.clickhouseFull],
    ['postgres-base', s.postgres.base, a.postgresBase],
    ['prune', s.prune, a.prune],
    ['replicate', s.replicate, a.replicate],
  ]
  return pairs.filter((p): p is [string, string, () => void] => p[1] !== undefined && p[2] !== undefined).map(([name, expr, fire]) => ({ name, cron: expr, fire }))
}

/** node-cron tasks for the entries; created stopped. */
export class Scheduler {
  readonly #tasks = new Map<string, ScheduledTask>()

  constructor(entries: readonly ScheduleEntry[], opts: { timezone?: string } = {}) {
    for (const e of entries) {
      const task = cron.createTask(e.cron, () => e.fire(), { name: e.name, timezone: opts.timezone ?? 'Etc/UTC' })
      this.#tasks.set(e.name, task)
    }
  }

  /** The schedule names. */
  get names(): string[] {
    return [...this.#tasks.keys()]
  }

  /** Starts every task. */
  async start(): Promise<void> {
    for (const t of this.#tasks.values()) await t.start()
  }

  /** Stops every task (running jobs are not touched). Idempotent. */
  async stop(): Promise<void> {
    for (const t of this.#tasks.values()) await t.destroy()
    this.#tasks.clear()
  }

  /** Fires a schedule now, as its cron time would (tests, and `POST /v1/backups` does not use this). */
  async fire(name: string): Promise<void> {
    const t = this.#tasks.get(name)
    if (!t) throw new Error(`no schedule ${name}`)
    await t.execute()
  }

  /** When each schedule fires next. */
  nextRuns(): Record<string, string | null> {
    return Object.fromEntries([...this.#tasks].map(([n, t]) => [n, t.getNextRun()?.toISOString() ?? null]))
  }
}
