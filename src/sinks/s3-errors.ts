/**
 * Classification of AWS SDK errors for the s3 sink. The SDK throws service errors
 * (name = S3 error code, `$metadata.httpStatusCode`) and raw Node network errors
 * (`code` = ECONNREFUSED, …); both become SinkErrors with a message that says what to do.
 */
import type { ErrorCode } from '../errors.ts'
import { isAbortError } from './common.ts'
import { SinkError, type SinkErrorKind } from './sink.ts'

/** Where an error happened, for the message. Never holds credentials. */
export interface S3ErrorContext {
  what: string
  key?: string
  bucket: string
  /** The endpoint as shown to operators (no user info). */
  endpoint: string
}

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound'])
const AUTH = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'AllAccessDisabled',
  'AccountProblem',
  'CredentialsProviderError',
])
const NETWORK = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'EPIPE', 'ECONNABORTED'])
/** 4xx answers that a later attempt can still succeed at. */
const TRANSIENT_4XX = new Set(['RequestTimeout', 'SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequestsException', 'OperationAborted', 'IncompleteBody', 'BadDigest', 'NoSuchUpload'])

interface Parsed {
  name: string
  status: number | undefined
  code: string | undefined
  message: string
}

function parse(err: unknown): Parsed {
  const e = err as { name?: unknown; code?: unknown; message?: unknown; $metadata?: { httpStatusCode?: unknown }; Code?: unknown }
  const name = typeof e?.name === 'string' ? e.name : typeof e?.Code === 'string' ? e.Code : 'Error'
  const status = typeof e?.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined
  const code = typeof e?.code === 'string' ? e.code : undefined
  const message = typeof e?.message === 'string' && e.message !== '' ? e.message : name
  return { name, status, code, message }
}

function make(kind: SinkErrorKind, code: ErrorCode, message: string, ctx: S3ErrorContext, cause: unknown): SinkError {
  return new SinkError(kind, code, message, { key: ctx.key, cause })
}

/** Maps anything the SDK (or lib-storage) threw to a SinkError; SinkErrors pass through. */
export function mapS3Error(err: unknown, ctx: S3ErrorContext): SinkError {
  if (err instanceof SinkError) return err
  const p = parse(err)
  const at = ctx.what
  if (isAbortError(err)) return make('permanent', 'TM_ERR_ABORTED', `${ctx.what}: aborted`, ctx, err)
  if (p.name === 'NoSuchBucket') {
    return make('permanent', 'TM_ERR_SINK_NO_BUCKET', `${at}: bucket ${ctx.bucket} does not exist at ${ctx.endpoint}; create it or fix the repository URL`, ctx, err)
  }
  if (NOT_FOUND.has(p.name) || (p.status === 404 && p.name !== 'NoSuchUpload')) {
    return make('not_found', 'TM_ERR_SINK_NOT_FOUND', `${ctx.what}: no such object`, ctx, err)
  }
  if (AUTH.has(p.name) || p.status === 403 || p.status === 401) {
    return make('permanent', 'TM_ERR_SINK_AUTH', `${at}: access denied (${p.name}: ${p.message}); check the S3 credentials (access key id, secret key, session token) and the bucket policy`, ctx, err)
  }
  if ((p.code !== undefined && NETWORK.has(p.code)) || p.name === 'TimeoutError') {
    return make('transient', 'TM_ERR_SINK_UNREACHABLE', `${at}: cannot reach the S3 endpoint ${ctx.endpoint} (${p.code ?? p.name}: ${p.message})`, ctx, err)
  }
  if (p.name === 'InvalidRange' || p.status === 416) {
    return make('permanent', 'TM_ERR_SINK_IO', `${ctx.what}: the requested range is not satisfiable`, ctx, err)
  }
  if (p.status !== undefined && p.status >= 400 && p.status < 500 && p.status !== 408 && p.status !== 429 && !TRANSIENT_4XX.has(p.name)) {
    return make('permanent', 'TM_ERR_SINK_IO', `${at}: ${p.name}: ${p.message}`, ctx, err)
  }
  // 5xx, throttling, timeouts, and errors without an HTTP answer: may pass.
  return make('transient', 'TM_ERR_SINK_IO', `${at}: ${p.name}${p.status ? ` (HTTP ${p.status})` : ''}: ${p.message}`, ctx, err)
}

/** Maps one entry of DeleteObjects' per-key Errors (which carry an S3 code but no status). */
export function mapDeleteError(e: { Key?: string; Code?: string; Message?: string }, ctx: S3ErrorContext): SinkError {
  const code = e.Code ?? 'InternalError'
  const status = AUTH.has(code) ? 403 : code === 'InternalError' || TRANSIENT_4XX.has(code) ? 503 : 400
  const synthetic = Object.assign(new Error(e.Message ?? code), { name: code, $metadata: { httpStatusCode: status } })
  return mapS3Error(synthetic, { ...ctx, key: e.Key, what: `${ctx.what}: ${e.Key}` })
}
