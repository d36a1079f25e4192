/**
 * Connection URLs for the PostgreSQL client tools. The password never goes on a
 * command line (where `ps` shows it to every local user): it is moved into the
 * child's PGPASSWORD environment variable instead.
 */

/** The logger shape the PostgreSQL source needs; a pino logger satisfies it. */
export interface PgLogger {
  debug(obj: object, msg: string): void
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

/** A logger that drops everything, for callers that pass none. */
export const silentLogger: PgLogger = { debug() {}, info() {}, warn() {}, error() {} }

/** What to hand a client tool: a connection string without the password, and the environment to add. */
export interface ToolConnection {
  connString: string
  env: Record<string, string>
}

const URL_SCHEME = /^postgres(ql)?:\/\//

/**
 * Splits a `postgresql://user:password@host:port/db?params` URL into a password-free
 * connection string and a PGPASSWORD environment entry. `extraParams` are added to the
 * query (for example `replication=true`). A key=value connection string passes through.
 */
export function toolConnection(url: string, extraParams: Record<string, string> = {}): ToolConnection {
  const env: Record<string, string> = {
    // Messages from the client library in English, so errors can be classified.
    LC_ALL: 'C',
    PGAPPNAME: 'tidemark',
    PGCONNECT_TIMEOUT: process.env.PGCONNECT_TIMEOUT ?? '10',
  }
  if (!URL_SCHEME.test(url)) {
    const extra = Object.entries(extraParams).map(([k, v]) => ` ${k}=${v}`).join('')
    return { connString: url + extra, env }
  }
  const u = new URL(url)
  if (u.password !== '') env.PGPASSWORD = decodeURIComponent(u.password)
  u.password = ''
  for (const [k, v] of Object.entries(extraParams)) u.searchParams.set(k, v)
  return { connString: u.toString(), env }
}

/** The URL with its password replaced by `***`, for logs and error messages. */
export function redactUrl(url: string): string {
  if (!URL_SCHEME.test(url)) return url.replace(/password\s*=\s*\S+/gi, 'password=***')
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return '(unparsable connection URL)'
  }
}
