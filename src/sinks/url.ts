/**
 * Repository URLs: `file:///abs/path` or a bare absolute path (the fs sink), and
 * `s3://bucket/prefix` (the s3 sink, with connection settings from configuration).
 */
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { TidemarkError } from '../errors.ts'
import { createFsSink } from './fs.ts'
import { withRetry, type RetryOptions } from './retry.ts'
import { createS3Sink } from './s3-lazy.ts'
import type { S3Settings } from './s3-options.ts'
import type { Sink } from './sink.ts'

export type RepoLocation = { kind: 'fs'; path: string } | { kind: 's3'; bucket: string; prefix: string }

const FORMS = 'accepted forms: file:///absolute/path, /absolute/path, s3://bucket/prefix'
const BUCKET_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$/
const PREFIX_SEGMENT_RE = /^[\x21-\x7e]+$/

/** The URL as it may appear in a message: user info replaced. */
function shown(url: string): string {
  return url.replace(/^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^/@]*@/, '$1***@')
}

function bad(url: string, why: string): TidemarkError {
  return new TidemarkError('TM_ERR_REPO_URL', `repository URL ${JSON.stringify(shown(url))}: ${why}; ${FORMS}`)
}

function parseFile(url: string): RepoLocation {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw bad(url, 'not a valid file URL')
  }
  if (u.host !== '' && u.host !== 'localhost') throw bad(url, `file URLs must name a local path (host ${JSON.stringify(u.host)} given)`)
  if (u.search || u.hash) throw bad(url, 'file URLs take no query or fragment')
  return { kind: 'fs', path: fileURLToPath(u) }
}

function parseS3(url: string): RepoLocation {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/i.exec(url)
  const bucket = m?.[1] ?? ''
  if (!BUCKET_RE.test(bucket)) throw bad(url, `invalid bucket name ${JSON.stringify(bucket)}`)
  const prefix = (m?.[2] ?? '').replace(/^\/+|\/+$/g, '')
  if (prefix !== '' && prefix.split('/').some((s) => !PREFIX_SEGMENT_RE.test(s) || s === '.' || s === '..')) {
    throw bad(url, 'the prefix must be printable ASCII without spaces, empty, "." or ".." segments')
  }
  return { kind: 's3', bucket, prefix }
}

/** Parses a repository URL; throws TM_ERR_REPO_URL naming the problem and the accepted forms. */
export function parseRepoUrl(url: string): RepoLocation {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase()
  if (scheme === undefined) {
    if (url.startsWith('/')) return { kind: 'fs', path: resolve(url) }
    throw bad(url, url === '' ? 'empty' : 'a bare path must be absolute')
  }
  if (scheme === 'file') return parseFile(url)
  if (scheme === 's3') return parseS3(url)
  throw bad(url, `unsupported scheme "${scheme}:"`)
}

/** Settings for `openSink`: S3 connection settings (ignored for file URLs) and retry options (`false`: no retry wrapper). */
export interface OpenSinkSettings extends S3Settings {
  retry?: Partial<RetryOptions> | false
}

/** Builds the sink for `url`, wrapped in `withRetry` (defaults: DEFAULT_RETRY). Makes no request. */
export function openSink(url: string, settings: OpenSinkSettings = {}): Sink {
  const { retry, ...s3 } = settings
  const loc = parseRepoUrl(url)
  const sink = loc.kind === 'fs' ? createFsSink(loc.path) : createS3Sink({ ...s3, bucket: loc.bucket, prefix: loc.prefix || undefined })
  return retry === false ? sink : withRetry(sink, retry)
}
