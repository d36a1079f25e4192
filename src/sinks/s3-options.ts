/**
 * The S3 sink's options, their checks and how the sink names itself: everything about an
 * S3 sink that does not need the AWS SDK (see s3-lazy.ts).
 */
import { TidemarkError } from '../errors.ts'

const MiB = 1024 * 1024
/** S3's smallest allowed part (all parts but the last). */
export const MIN_PART_SIZE = 5 * MiB
export const DEFAULT_PART_SIZE = 8 * MiB
export const DEFAULT_QUEUE_SIZE = 4

/** Static credentials; without them the SDK's default provider chain is used (env, profile, web identity, instance role). */
export interface S3Credentials {
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
}

/** Connection settings for an S3-compatible store (everything but bucket and prefix). */
export interface S3Settings {
  /** For S3-compatible stores, e.g. `http://minio:9000`; AWS when absent. */
  endpoint?: string
  /** Default `us-east-1`; requests are redirected to the bucket's region when it differs. */
  region?: string
  forcePathStyle?: boolean
  credentials?: S3Credentials
  /** Server-side encryption on put and copy; `none` (the default) sends no header. */
  sse?: 'AES256' | 'aws:kms' | 'none'
  /** KMS key for `sse: 'aws:kms'`; the bucket's default key when absent. */
  kmsKeyId?: string
  /** Multipart part size in bytes: default 8 MiB, at least 5 MiB. */
  partSize?: number
  /** Parts uploaded concurrently per put: default 4. */
  queueSize?: number
  /** TCP connect timeout: default 10 s. */
  connectTimeoutMs?: number
  /** A request whose socket is idle this long fails (transient): default 120 s. */
  idleTimeoutMs?: number
}

export interface S3SinkOptions extends S3Settings {
  bucket: string
  /** Key prefix inside the bucket, without leading or trailing `/`; empty for the bucket root. */
  prefix?: string
}

function invalid(message: string): TidemarkError {
  return new TidemarkError('TM_ERR_CONFIG_INVALID', message)
}

/** Throws TM_ERR_CONFIG_INVALID for options no S3 sink can work with. */
export function validateS3Options(o: S3SinkOptions): void {
  if (!o.bucket) throw invalid('s3 sink: bucket is required')
  if (o.prefix && (o.prefix.startsWith('/') || o.prefix.endsWith('/'))) throw invalid(`s3 sink: prefix ${JSON.stringify(o.prefix)} must not start or end with "/"`)
  if (o.partSize !== undefined && (!Number.isSafeInteger(o.partSize) || o.partSize < MIN_PART_SIZE)) throw invalid(`s3.partSize must be an integer of at least ${MIN_PART_SIZE} bytes (5 MiB), got ${o.partSize}`)
  if (o.queueSize !== undefined && (!Number.isSafeInteger(o.queueSize) || o.queueSize < 1)) throw invalid(`s3.queueSize must be a positive integer, got ${o.queueSize}`)
  if (o.kmsKeyId !== undefined && o.sse !== 'aws:kms') throw invalid('s3.kmsKeyId is only valid with s3.sse = aws:kms')
}

/** The endpoint as it may be shown: user info stripped. */
export function endpointLabel(o: S3SinkOptions): string {
  if (!o.endpoint) return `AWS S3 ${o.region ?? 'us-east-1'}`
  try {
    const u = new URL(o.endpoint)
    u.username = ''
    u.password = ''
    return u.origin + (u.pathname === '/' ? '' : u.pathname)
  } catch {
    return '(invalid endpoint URL)'
  }
}

/** `s3://bucket/prefix at <endpoint>`: the sink's description. */
export function s3Description(o: S3SinkOptions): string {
  return `s3://${o.bucket}/${o.prefix ?? ''} at ${endpointLabel(o)}`
}
