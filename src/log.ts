/**
 * Logging: pino JSON lines on stderr (stdout belongs to command output), one child
 * logger per job. Two layers keep secrets out: `redact` masks fields named like
 * credentials at the depths objects are usually logged at, and every finished line
 * goes through `maskLogLine`, which masks such fields at any depth and passwords
 * embedded in URLs or `password=…` strings wherever they appear (messages, errors).
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino'
import { SECRET_MASK, maskCredentials } from './config/mask.ts'

/** The logger type used everywhere (a pino logger). */
export type Logger = PinoLogger

const SECRET_KEYS = [
  'password',
  'passphrase',
  'secret',
  'secretAccessKey',
  'accessKeyId',
  'sessionToken',
  'token',
  'readToken',
  'adminToken',
  'apiKey',
  'authorization',
  'cookie',
]

/** Concrete redact paths: each secret key at depth 0 to 3 (pino's `*` matches one level). */
export const REDACT_PATHS: readonly string[] = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`])

// Deeper than REDACT_PATHS reaches: a string field with a secret name, in the finished JSON line.
const SECRET_FIELD = new RegExp(`"(${SECRET_KEYS.join('|')})":"(?:[^"\\\\]|\\\\.)*"`, 'g')

/** Masks secret-named string fields at any depth and credentials inside any string of a JSON log line. */
export function maskLogLine(line: string): string {
  return maskCredentials(line.replace(SECRET_FIELD, `"$1":"${SECRET_MASK}"`))
}

/** Options of createLogger. */
export interface CreateLoggerOptions {
  /** pino level name: fatal, error, warn, info, debug, trace, silent. */
  level: string
  /** Where lines go; default: stderr, written synchronously so nothing is lost on exit. */
  destination?: DestinationStream
}

/** A root logger with redaction; cheap, create one per process. */
export function createLogger(opts: CreateLoggerOptions): Logger {
  const destination = opts.destination ?? pino.destination({ dest: 2, sync: true })
  return pino(
    {
      level: opts.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...REDACT_PATHS], censor: SECRET_MASK },
      hooks: { streamWrite: maskLogLine },
    },
    destination,
  )
}

/** A job's logger: every line carries its job id, store and (once known) backup id. */
export function jobLogger(parent: Logger, job: { jobId: string; store: string; backupId?: string }): Logger {
  return parent.child(job.backupId === undefined ? { jobId: job.jobId, store: job.store } : { ...job })
}
