/**
 * Running a restore plan, in the order of the recovery runbook: pre-restore hook,
 * PostgreSQL, ClickHouse, post-restore hook, smoke checks. Each step is timed; the
 * report's total is the measured RTO. The first failing step stops the run; its
 * error carries the report so far (details.report). The targets are checked before
 * the pre-restore hook runs, so a refused restore changes nothing anywhere.
 */
import { TidemarkError, asTidemarkError } from '../../errors.ts'
import type { Plan } from '../planner.ts'
import type { Clock } from '../clock.ts'
import type { ClickHouseSource, PostgresSource, RestoreTargets, RunOptions } from './facade.ts'
import { hasHook, runHook, type Hook } from './hooks.ts'

/** What the executor works with. */
export interface RestoreDeps {
  clickhouse?: ClickHouseSource
  postgres?: PostgresSource
  preRestore?: Hook
  postRestore?: Hook
  hookTimeoutMs: number
  /** How long the PostgreSQL smoke check waits for the restored server. */
  smokeTimeoutMs: number
  clock: Clock
}

export interface StepReport {
  step: 'pre-restore hook' | 'postgres' | 'clickhouse' | 'post-restore hook' | 'smoke checks'
  ok: boolean
  startedAt: string
  durationMs: number
  details?: Record<string, unknown>
  error?: { code: string; message: string }
}

/** The outcome: every step with its duration, and the total (the measured RTO). */
export interface RestoreReport {
  plan: Plan
  steps: StepReport[]
  totalMs: number
  ok: boolean
}

/** Checks that every planned store has a target and that each target is empty; reads only. */
export async function checkTargets(plan: Plan, targets: RestoreTargets, deps: Pick<RestoreDeps, 'clickhouse' | 'postgres'>, signal?: AbortSignal): Promise<void> {
  if (plan.postgres) {
    if (!deps.postgres) throw new TidemarkError('TM_ERR_STORE_NOT_CONFIGURED', 'PostgreSQL is not configured in this daemon')
    if (!targets.postgres) throw new TidemarkError('TM_ERR_USAGE', 'the plan restores PostgreSQL: give targets.postgres (dataDir, and url to smoke-check the started server)')
    await deps.postgres.checkTarget(targets.postgres)
  }
  if (plan.clickhouse) {
    if (!deps.clickhouse) throw new TidemarkError('TM_ERR_STORE_NOT_CONFIGURED', 'ClickHouse is not configured in this daemon')
    if (!targets.clickhouse) throw new TidemarkError('TM_ERR_USAGE', 'the plan restores ClickHouse: give targets.clickhouse.url')
    await deps.clickhouse.checkTarget(plan.clickhouse.backupId, targets.clickhouse, signal)
  }
}

type StepFn = () => Promise<Record<string, unknown> | undefined>

/** Runs the plan; resolves with the report, or rejects with the failing step's error (details.report holds the steps so far). */
export async function executeRestore(plan: Plan, targets: RestoreTargets, deps: RestoreDeps, run: RunOptions): Promise<RestoreReport> {
  const t0 = deps.clock.now().getTime()
  const report: RestoreReport = { plan, steps: [], totalMs: 0, ok: false }
  const step = async (name: StepReport['step'], fn: StepFn) => {
    run.signal.throwIfAborted()
    const start = deps.clock.now()
    run.log.info({ step: name }, `restore step ${name}`)
    try {
      const details = await fn()
      report.steps.push({ step: name, ok: true, startedAt: start.toISOString(), durationMs: deps.clock.now().getTime() - start.getTime(), ...(details ? { details } : {}) })
    } catch (err) {
      const e = asTidemarkError(err)
      report.steps.push({ step: name, ok: false, startedAt: start.toISOString(), durationMs: deps.clock.now().getTime() - start.getTime(), error: { code: e.code, message: e.message } })
      report.totalMs = deps.clock.now().getTime() - t0
      throw new TidemarkError(e.code, `restore failed at step "${name}": ${e.message}`, { cause: err, details: { ...e.details, report } })
    }
  }
  const hook = (phase: 'pre-restore' | 'post-restore', h: Hook) => () => runHook(h, { phase, payload: { phase, plan, targets: publicTargets(targets) }, timeoutMs: deps.hookTimeoutMs, signal: run.signal })

  await checkTargets(plan, targets, deps, run.signal)
  if (hasHook(deps.preRestore)) await step('pre-restore hook', hook('pre-restore', deps.preRestore))
  const smoke: Record<string, unknown> = {}
  if (plan.postgres && deps.postgres && targets.postgres) {
    const pg = deps.postgres
    const target = targets.postgres
    await step('postgres', async () => (await pg.restore({ ...run, at: new Date(plan.postgres!.target), target })).details)
  }
  if (plan.clickhouse && deps.clickhouse && targets.clickhouse) {
    const ch = deps.clickhouse
    const url = targets.clickhouse.url
    await step('clickhouse', async () => {
      const r = await ch.restore({ ...run, backupId: plan.clickhouse!.backupId, targetUrl: url, targetDataPath: targets.clickhouse!.dataPath })
      smoke.clickhouse = r
      return r.details
    })
  }
  if (hasHook(deps.postRestore)) await step('post-restore hook', hook('post-restore', deps.postRestore))
  await step('smoke checks', () => smokeChecks(plan, targets, deps, run, smoke.clickhouse as { ok: boolean; details: Record<string, unknown> } | undefined))
  report.ok = true
  report.totalMs = deps.clock.now().getTime() - t0
  return report
}

/** Row counts against the manifests (from the ClickHouse restore's own check); PostgreSQL accepting connections out of recovery when a URL is given. */
async function smokeChecks(plan: Plan, targets: RestoreTargets, deps: RestoreDeps, run: RunOptions, ch: { ok: boolean; details: Record<string, unknown> } | undefined): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {}
  if (ch) {
    if (!ch.ok) throw new TidemarkError('TM_ERR_SMOKE_CHECK_FAILED', `ClickHouse row counts do not match the manifest for: ${(ch.details.mismatched as string[] | undefined)?.join(', ') ?? 'some tables'}`)
    out.clickhouse = { rowCountsMatch: true, tables: (ch.details.tables as unknown[] | undefined)?.length ?? 0 }
  }
  if (plan.postgres && deps.postgres && targets.postgres?.url !== undefined) out.postgres = await deps.postgres.smoke(targets.postgres.url, deps.smokeTimeoutMs, run.signal)
  else if (plan.postgres) out.postgres = { skipped: 'no targets.postgres.url: start PostgreSQL on the data directory (e.g. in the post-restore hook) and give its URL to check it' }
  return out
}

/** Targets as hooks and reports may show them: no passwords. */
export function publicTargets(t: RestoreTargets): RestoreTargets {
  const strip = (u: string) => u.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')
  return {
    ...(t.postgres ? { postgres: { ...t.postgres, ...(t.postgres.url ? { url: strip(t.postgres.url) } : {}) } } : {}),
    ...(t.clickhouse ? { clickhouse: { url: strip(t.clickhouse.url) } } : {}),
  }
}
