/**
 * Server-side copies: when the primary and a secondary are prefixes of the same S3
 * bucket at the same endpoint, an object is copied by the store itself (CopyObject)
 * instead of flowing through tidemark. Sink.copy works inside one sink's prefix, so
 * the copier uses a sink on the bucket root and addresses both prefixes from there.
 */
import { parseRepoUrl } from '../../sinks/url.ts'
import { createS3Sink } from '../../sinks/s3-lazy.ts'
import type { S3Settings } from '../../sinks/s3-options.ts'
import { withRetry, type RetryOptions } from '../../sinks/retry.ts'

/** Copies an object from the primary to the same key in the target, inside their common store. */
export interface ServerCopier {
  readonly description: string
  copy(key: string, opts?: { signal?: AbortSignal | undefined }): Promise<void>
  /** Idempotent. */
  close(): Promise<void>
}

/** A repository's URL and the S3 settings it is reached with. */
export interface StoreLocation {
  url: string
  settings: S3Settings
}

/** The endpoint as compared: origin and path of a custom endpoint, else AWS in its region. */
function endpointId(s: S3Settings): string {
  if (s.endpoint === undefined) return `aws:${s.region ?? 'us-east-1'}`
  try {
    const u = new URL(s.endpoint)
    return `${u.protocol}//${u.host.toLowerCase()}${u.pathname.replace(/\/+$/, '')}`
  } catch {
    return s.endpoint
  }
}

const under = (prefix: string, key: string) => (prefix === '' ? key : `${prefix}/${key}`)

/**
 * A server-side copier when both locations are in the same bucket at the same
 * endpoint (and are not the same prefix); undefined otherwise. The target's
 * credentials are used: they must be allowed to read the primary's prefix.
 */
export function sameStoreCopier(primary: StoreLocation, target: StoreLocation, retry?: Partial<RetryOptions>): ServerCopier | undefined {
  const p = parseRepoUrl(primary.url)
  const t = parseRepoUrl(target.url)
  if (p.kind !== 's3' || t.kind !== 's3') return undefined
  if (p.bucket !== t.bucket || endpointId(primary.settings) !== endpointId(target.settings) || p.prefix === t.prefix) return undefined
  const root = withRetry(createS3Sink({ ...target.settings, bucket: t.bucket }), retry)
  return {
    description: `server-side copy in s3://${t.bucket} at ${endpointId(target.settings)}`,
    copy: (key, opts) => root.copy(under(p.prefix, key), under(t.prefix, key), { signal: opts?.signal }),
    close: () => root.close(),
  }
}
