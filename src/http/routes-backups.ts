/** Backups: list, one, start one. */
import type { DaemonFacade } from '../engine/daemon/facade.ts'
import { checkRange, parseTime } from '../engine/daemon/times.ts'
import type { SourceName } from '../engine/repository/index.ts'
import type { RouteDef } from './openapi.ts'
import * as S from './schemas.ts'

/** GET /v1/backups, GET /v1/backups/:id, POST /v1/backups. */
export function backupRoutes(f: DaemonFacade): RouteDef[] {
  return [
    {
      method: 'GET', url: '/v1/backups', access: 'read', summary: 'committed backups, oldest first (filter by source and end time)',
      schema: { querystring: S.backupsQuery },
      responses: { 200: { description: 'backups', schema: { type: 'object', properties: { backups: { type: 'array', items: S.backup } } } } },
      handler: async (req) => {
        const q = req.query as { source?: SourceName; from?: string; to?: string }
        const from = q.from === undefined ? undefined : parseTime(q.from, 'from')
        const to = q.to === undefined ? undefined : parseTime(q.to, 'to')
        checkRange(from, to)
        return { backups: await f.listBackups({ source: q.source, from, to }) }
      },
    },
    {
      method: 'GET', url: '/v1/backups/:id', access: 'read', summary: 'one backup and its manifest (without the object list)',
      schema: { params: S.idParams },
      responses: { 200: { description: 'the backup', schema: { type: 'object', properties: { backup: S.backup } } } },
      handler: async (req) => ({ backup: await f.getBackup((req.params as { id: string }).id) }),
    },
    {
      method: 'POST', url: '/v1/backups', access: 'admin', summary: 'start a backup of one store now',
      schema: { body: S.backupRequest },
      responses: { 202: { description: 'the job started', schema: S.jobBody } },
      handler: async (req, reply) => {
        const b = req.body as { source: SourceName; full?: boolean }
        return reply.status(202).send({ job: f.startBackup(b.source, b.full ?? false) })
      },
    },
  ]
}
