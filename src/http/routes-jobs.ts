/** Jobs: list, one, cancel. */
import type { DaemonFacade } from '../engine/daemon/facade.ts'
import type { JobKind, JobState } from '../engine/daemon/jobs.ts'
import type { RouteDef } from './openapi.ts'
import * as S from './schemas.ts'

/** GET /v1/jobs, GET /v1/jobs/:id, POST /v1/jobs/:id/cancel. */
export function jobRoutes(f: DaemonFacade): RouteDef[] {
  return [
    {
      method: 'GET', url: '/v1/jobs', access: 'read', summary: 'running and recent jobs, newest first',
      schema: { querystring: S.jobsQuery },
      responses: { 200: { description: 'jobs', schema: { type: 'object', properties: { jobs: { type: 'array', items: S.job } } } } },
      handler: async (req) => ({ jobs: f.listJobs(req.query as { kind?: JobKind; state?: JobState }) }),
    },
    {
      method: 'GET', url: '/v1/jobs/:id', access: 'read', summary: 'one job: state, progress, result or error',
      schema: { params: S.idParams },
      responses: { 200: { description: 'the job', schema: S.jobBody } },
      handler: async (req) => ({ job: f.getJob((req.params as { id: string }).id) }),
    },
    {
      method: 'POST', url: '/v1/jobs/:id/cancel', access: 'admin', summary: 'ask a running job to stop (a backup stopped commits nothing)',
      schema: { params: S.idParams },
      responses: { 202: { description: 'cancellation requested; the job ends as cancelled', schema: S.jobBody } },
      handler: async (req, reply) => reply.status(202).send({ job: f.cancelJob((req.params as { id: string }).id) }),
    },
  ]
}
