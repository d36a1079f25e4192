/**
 * Bearer-token auth. Each route declares its access: `open` (health probes),
 * `metrics` (open unless api.metricsAuth), `read` (GETs: read or admin token) or
 * `admin` (everything else: admin token only). Tokens are compared in constant
 * time: both sides are hashed to the same length first, then timingSafeEqual.
 * With no token configured at all the API is open; the daemon only allows that on a
 * loopback address (apiExposure).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import { TidemarkError } from '../errors.ts'

export type Access = 'open' | 'metrics' | 'read' | 'admin'

export interface AuthConfig {
  readToken?: string
  adminToken?: string
  metricsAuth: boolean
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest()

/** Constant-time equality of two secrets (their lengths do not leak either). */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected))
}

/** The bearer token of an Authorization header, if well-formed. */
export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')
  return m?.[1]
}

/** Decides a request (pure): undefined to let it through, else the error to answer with. */
export function authorize(access: Access, header: string | undefined, c: AuthConfig): TidemarkError | undefined {
  if (access === 'open' || (access === 'metrics' && !c.metricsAuth)) return undefined
  if (c.readToken === undefined && c.adminToken === undefined) return undefined
  const token = bearer(header)
  if (token === undefined) return new TidemarkError('TM_ERR_AUTH_REQUIRED', 'this route needs a bearer token: Authorization: Bearer <token> (the read token for GETs, the admin token for everything)')
  const isAdmin = c.adminToken !== undefined && sameSecret(token, c.adminToken)
  const isReader = c.readToken !== undefined && sameSecret(token, c.readToken)
  if (!isAdmin && !isReader) return new TidemarkError('TM_ERR_AUTH_REQUIRED', 'the bearer token is not valid')
  if (access === 'admin' && !isAdmin) return new TidemarkError('TM_ERR_AUTH_FORBIDDEN', 'the read token may not change anything: this route needs the admin token')
  return undefined
}

/** Whether `host` only listens on the loopback interface. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '')
  if (h === 'localhost') return true
  if (isIP(h) === 4) return h.startsWith('127.')
  if (isIP(h) === 6) return h === '::1'
  return false
}

/** TM_ERR_CONFIG_INVALID when the API would listen beyond loopback with no token: anyone reaching the port could restore over the stores. */
export function checkExposure(host: string, c: AuthConfig): void {
  if (isLoopback(host) || c.readToken !== undefined || c.adminToken !== undefined) return
  throw new TidemarkError(
    'TM_ERR_CONFIG_INVALID',
    `api.host is ${host}, which is reachable from other machines, and no API token is configured: set api.adminToken (TIDEMARK_API_ADMIN_TOKEN) and api.readToken (TIDEMARK_API_READ_TOKEN), or listen on 127.0.0.1 (TIDEMARK_API_HOST)`,
  )
}
