/**
 * The HTTP API, built without listening (tests use inject(); the daemon calls
 * listen()). It talks to the engine only through the `Engine` facade it is given.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyError } from 'fastify'
import type { Logger } from 'pino'
import { TidemarkError, asTidemarkError } from '../errors.ts'

/** What the API needs from the engine; the daemon provides it, tests may provide a real one over a temp repository. */
export interface Engine {
  /** Repository summary (id, format, encryption, manifests per source). */
  repositoryInfo(): Promise<Record<string, unknown>>
  /** Readiness of each dependency: name → ok or the reason it is not. */
  readiness(): Promise<Record<string, { ok: boolean; error?: string }>>
}

export interface BuildOptions {
  engine: Engine
  logger?: Logger | false
  bodyLimitBytes?: number
  version: string
}

/** Builds the fastify app with its routes and error handling; does not listen. */
export function build(opts: BuildOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: (opts.logger || undefined) as FastifyBaseLogger | undefined,
    bodyLimit: opts.bodyLimitBytes ?? 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false, allErrors: false } },
  })

  app.setErrorHandler((err: FastifyError | TidemarkError, _req, reply) => {
    if (err instanceof TidemarkError) return reply.status(err.status).send({ error: err.toJSON() })
    if (err.validation) return reply.status(400).send({ error: { code: 'TM_ERR_USAGE', message: err.message } })
    if (err.statusCode === 413) return reply.status(413).send({ error: { code: 'TM_ERR_USAGE', message: 'request body too large' } })
    if (err.statusCode && err.statusCode < 500) return reply.status(err.statusCode).send({ error: { code: 'TM_ERR_USAGE', message: err.message } })
    const te = asTidemarkError(err)
    return reply.status(500).send({ error: { code: te.code, message: te.message } })
  })
  app.setNotFoundHandler((req, reply) => reply.status(404).send({ error: { code: 'TM_ERR_USAGE', message: `no route ${req.method} ${req.url}` } }))

  app.get('/healthz', async () => ({ status: 'ok', version: opts.version }))
  app.get('/readyz', async (_req, reply) => {
    const checks = await opts.engine.readiness()
    const ok = Object.values(checks).every((c) => c.ok)
    return reply.status(ok ? 200 : 503).send({ ready: ok, checks })
  })
  app.get('/v1/repository', async () => opts.engine.repositoryInfo())
  return app
}
