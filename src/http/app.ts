/**
 * The HTTP API, built without listening (tests use inject(); the daemon calls
 * listen()). It talks to the engine only through the `DaemonFacade` it is given.
 * Every error body is `{error:{code,message}}` with a TM_ERR_ code; every route has a
 * JSON schema, and /openapi.json is generated from the same definitions.
 */
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { DaemonFacade } from '../engine/daemon/facade.ts'
import { TidemarkError, asTidemarkError } from '../errors.ts'
import { authorize, type Access, type AuthConfig } from './auth.ts'
import { openApiDocument, type RouteDef } from './openapi.ts'
import { backupRoutes } from './routes-backups.ts'
import { jobRoutes } from './routes-jobs.ts'
import { opsRoutes } from './routes-ops.ts'
import { restoreRoutes } from './routes-restores.ts'

export interface BuildOptions {
  engine: DaemonFacade
  auth: AuthConfig
  logger?: Logger | false
  bodyLimitBytes?: number
}

const send = (code: TidemarkError['code'] | string, message: string, details?: Record<string, unknown>) => ({ error: details ? { code, message, details } : { code, message } })

/** Maps anything thrown in a route to a status and a TM_ERR_ body. */
function errorHandler(err: FastifyError | TidemarkError, reply: { status(n: number): { send(b: unknown): unknown } }): unknown {
  if (err instanceof TidemarkError) return reply.status(err.status).send({ error: err.toJSON() })
  if (err.validation) return reply.status(400).send(send('TM_ERR_USAGE', `invalid request: ${err.message}`))
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || err.statusCode === 413) return reply.status(413).send(send('TM_ERR_BODY_TOO_LARGE', 'request body too large (api.bodyLimitBytes)'))
  if (err.statusCode && err.statusCode < 500) return reply.status(err.statusCode).send(send('TM_ERR_USAGE', err.message))
  const te = asTidemarkError(err)
  return reply.status(te.status >= 400 ? te.status : 500).send(send(te.code, te.message))
}

/** Builds the fastify app with its routes, auth and error handling; does not listen. */
export function build(opts: BuildOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: (opts.logger || undefined) as FastifyBaseLogger | undefined,
    bodyLimit: opts.bodyLimitBytes ?? 1024 * 1024,
    // Unknown fields are refused, never dropped; querystrings are coerced (booleans, numbers) before validation.
    ajv: { customOptions: { removeAdditional: false, allErrors: false, coerceTypes: 'array' } },
  })
  app.setErrorHandler((err: FastifyError | TidemarkError, _req, reply) => errorHandler(err, reply))
  app.setNotFoundHandler((req, reply) => reply.status(404).send(send('TM_ERR_ROUTE_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}; see /openapi.json`)))

  // Auth before the body is read: an unauthenticated request never costs a parse.
  app.addHook('onRequest', async (req) => {
    // Every route declares its access; an unknown route needs a valid token before it is told so.
    const access = (req.routeOptions.config as { access?: Access } | undefined)?.access ?? 'read'
    const denied = authorize(access, req.headers.authorization, opts.auth)
    if (denied) throw denied
  })

  const routes: RouteDef[] = [...opsRoutes(opts.engine), ...backupRoutes(opts.engine), ...restoreRoutes(opts.engine), ...jobRoutes(opts.engine)]
  const doc = openApiDocument(routes, opts.engine.version)
  for (const r of routes) app.route({ method: r.method, url: r.url, schema: r.schema ?? {}, config: { access: r.access }, handler: r.handler })
  app.get('/openapi.json', { config: { access: 'open' } }, async () => doc)
  return app
}
