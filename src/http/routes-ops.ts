/** Operational routes: health, readiness, metrics, repository summary. */
import type { DaemonFacade } from '../engine/daemon/facade.ts'
import type { RouteDef } from './openapi.ts'

/** /healthz, /readyz, /metrics, /v1/repository. */
export function opsRoutes(f: DaemonFacade): RouteDef[] {
  return [
    {
      method: 'GET', url: '/healthz', access: 'open', summary: 'the process is up',
      responses: { 200: { description: 'up', schema: { type: 'object', properties: { status: { type: 'string' }, version: { type: 'string' } } } } },
      handler: async () => ({ status: 'ok', version: f.version }),
    },
    {
      method: 'GET', url: '/readyz', access: 'open', summary: 'the repository and every configured store are reachable, and the WAL archive runs',
      responses: {
        200: { description: 'ready', schema: { type: 'object', properties: { ready: { type: 'boolean' }, checks: { type: 'object' } } } },
        503: { description: 'not ready: checks says which dependency and why' },
      },
      handler: async (_req, reply) => {
        const checks = await f.readiness()
        const ok = Object.values(checks).every((c) => c.ok)
        return reply.status(ok ? 200 : 503).send({ ready: ok, checks })
      },
    },
    {
      method: 'GET', url: '/metrics', access: 'metrics', summary: 'Prometheus text exposition',
      responses: { 200: { description: 'metrics', contentType: 'text/plain; version=0.0.4', schema: { type: 'string' } } },
      handler: async (_req, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(await f.metrics()),
    },
    {
      method: 'GET', url: '/v1/repository', access: 'read', summary: 'repository summary (id, format, encryption, backups per source)',
      responses: { 200: { description: 'summary', schema: { type: 'object' } } },
      handler: async () => f.repositoryInfo(),
    },
  ]
}
