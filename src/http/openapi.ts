/**
 * Route definitions and the OpenAPI 3 document generated from them: the same
 * schemas that fastify validates requests with are the ones published, so the
 * document cannot drift from the behaviour.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Access } from './auth.ts'
import { errorBody } from './schemas.ts'

type Schema = Record<string, unknown>

/** One route: what fastify registers and what the document shows. */
export interface RouteDef {
  method: 'GET' | 'POST'
  url: string
  access: Access
  summary: string
  schema?: { querystring?: Schema; params?: Schema; body?: Schema }
  /** Success responses: status → description and body schema (errors are added for every route). */
  responses: Record<number, { description: string; schema?: Schema; contentType?: string }>
  handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>
}

const ERRORS: Record<number, string> = {
  400: 'bad request: malformed JSON, unknown field, bad time (the message names the accepted format)',
  401: 'missing or wrong bearer token',
  403: 'the read token on a write route',
  404: 'unknown id',
  409: 'conflict: a job of the same store runs, or the restore target is not empty',
  413: 'request body over api.bodyLimitBytes',
}

function parameters(r: RouteDef): Schema[] {
  const out: Schema[] = []
  for (const [where, s] of [['path', r.schema?.params], ['query', r.schema?.querystring]] as const) {
    const props = (s?.properties ?? {}) as Record<string, Schema>
    const required = new Set((s?.required ?? []) as string[])
    for (const [name, schema] of Object.entries(props)) out.push({ name, in: where, required: where === 'path' || required.has(name), schema })
  }
  return out
}

function operation(r: RouteDef): Schema {
  const responses: Record<string, Schema> = {}
  for (const [code, x] of Object.entries(r.responses)) responses[code] = { description: x.description, ...(x.schema ? { content: { [x.contentType ?? 'application/json']: { schema: x.schema } } } : {}) }
  const errors = r.access === 'open' ? [400] : r.method === 'GET' ? [400, 401, 404] : [400, 401, 403, 404, 409, 413]
  for (const code of errors) responses[String(code)] ??= { description: ERRORS[code], content: { 'application/json': { schema: errorBody } } }
  return {
    summary: r.summary,
    ...(r.access === 'open' || r.access === 'metrics' ? { security: r.access === 'open' ? [] : [{}, { bearer: [] }] } : {}),
    parameters: parameters(r),
    ...(r.schema?.body ? { requestBody: { required: true, content: { 'application/json': { schema: r.schema.body } } } } : {}),
    responses,
  }
}

/** The OpenAPI 3.0 document for `routes`. */
export function openApiDocument(routes: readonly RouteDef[], version: string): Schema {
  const paths: Record<string, Record<string, Schema>> = {}
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z_]+)/g, '{$1}')
    paths[path] = { ...paths[path], [r.method.toLowerCase()]: operation(r) }
  }
  return {
    openapi: '3.0.3',
    info: { title: 'tidemark', version, description: 'Backups, restore points and time-aligned restores of ClickHouse and PostgreSQL. Every error body is {error:{code,message}} with a TM_ERR_ code.' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'the read token (GET routes) or the admin token (every route)' } } },
    security: [{ bearer: [] }],
    paths,
  }
}
