/** Restore points and restores. */
import type { DaemonFacade, RestoreRequest, RestoreTargets } from '../engine/daemon/facade.ts'
import { checkRange, parseTime, parseTimeOrLatest } from '../engine/daemon/times.ts'
import type { SourceName } from '../engine/repository/index.ts'
import type { RouteDef } from './openapi.ts'
import * as S from './schemas.ts'

interface RestoreBody {
  at: string
  sources?: SourceName[]
  targets?: RestoreTargets
  dryRun?: boolean
  callbackUrl?: string
}

/** The body as the facade takes it (`at` parsed; sources default to every configured store). */
export function restoreRequestOf(b: RestoreBody, configured: readonly SourceName[]): RestoreRequest {
  return { at: parseTimeOrLatest(b.at, 'at'), sources: b.sources ?? [...configured], targets: b.targets ?? {}, ...(b.callbackUrl ? { callbackUrl: b.callbackUrl } : {}) }
}

/** GET /v1/restore-points, POST /v1/restores. */
export function restoreRoutes(f: DaemonFacade): RouteDef[] {
  return [
    {
      method: 'GET', url: '/v1/restore-points', access: 'read', summary: 'recovery windows per store and the points all selected stores can be restored to together',
      schema: { querystring: S.restorePointsQuery },
      responses: { 200: { description: 'windows and aligned points', schema: { type: 'object' } } },
      handler: async (req) => {
        const q = req.query as { from?: string; to?: string; sources?: string }
        const from = q.from === undefined ? undefined : parseTime(q.from, 'from')
        const to = q.to === undefined ? undefined : parseTime(q.to, 'to')
        checkRange(from, to)
        const sources = q.sources === undefined ? undefined : ([...new Set(q.sources.split(','))] as SourceName[])
        return f.restorePoints({ sources, from, to })
      },
    },
    {
      method: 'POST', url: '/v1/restores', access: 'admin', summary: 'restore the selected stores to one point in time (dryRun: only the plan)',
      schema: { body: S.restoreRequest },
      responses: {
        200: { description: 'dry run: the plan', schema: { type: 'object', properties: { plan: S.plan } } },
        202: { description: 'the restore job started', schema: S.jobBody },
      },
      handler: async (req, reply) => {
        const b = req.body as RestoreBody
        const r = restoreRequestOf(b, f.sources)
        if (b.dryRun) return reply.status(200).send({ plan: await f.planRestore(r) })
        return reply.status(202).send({ job: await f.startRestore(r) })
      },
    },
  ]
}
