/**
 * Checks and normalisations of individual configuration strings: URLs, paths,
 * cron expressions. Each check returns what is wrong (without the value: the caller
 * adds it unless it is secret) or undefined.
 */
import { isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import cron from 'node-cron'
import type { SchemaContext } from './kit.ts'

const SCHEME = /^[a-z][a-z0-9+.-]*:/i

function parseUrl(v: string): URL | undefined {
  try {
    return new URL(v)
  } catch {
    return undefined
  }
}

/** An http(s) URL (ClickHouse, S3 endpoints). */
export function checkHttpUrl(v: string): string | undefined {
  const u = parseUrl(v)
  return u && (u.protocol === 'http:' || u.protocol === 'https:') && u.host !== '' ? undefined : 'expected an http:// or https:// URL'
}

/** A repository location: file:// or s3:// URL, or a path (made absolute, relative to the working directory). */
export function checkRepoUrl(v: string): string | undefined {
  if (v === '') return 'expected a repository URL (file:///path or s3://bucket/prefix) or a directory path'
  if (!SCHEME.test(v)) return undefined
  const scheme = v.slice(0, v.indexOf(':') + 1).toLowerCase()
  return scheme === 'file:' || scheme === 's3:' ? undefined : `unsupported scheme ${scheme}; expected file:///path or s3://bucket/prefix`
}

/** Turns a bare path into a file URL; URLs are kept as they are. */
export function toRepoUrl(v: string, ctx: Pick<SchemaContext, 'cwd'>): string {
  return SCHEME.test(v) ? v : pathToFileURL(resolve(ctx.cwd, v)).href
}

/** A local path, made absolute. */
export function toAbsolutePath(v: string, ctx: SchemaContext): string {
  return isAbsolute(v) ? v : resolve(ctx.cwd, v)
}

/** Non-empty string. */
export function checkNonEmpty(v: string): string | undefined {
  return v.trim() === '' ? 'expected a non-empty string' : undefined
}

/**
 * A PostgreSQL URL. Also accepts the LangSmith chart's scheme-less form
 * `user:password@host:port/db?…` (its POSTGRES_DATABASE_URI), whose password is
 * not URL-encoded.
 */
export function checkPostgresUrl(v: string): string | undefined {
  const u = parseUrl(toPostgresUrl(v))
  if (!u || (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') || u.hostname === '') {
    return 'expected a PostgreSQL URL: postgresql://user:password@host:port/database (or user:password@host:port/database)'
  }
  return undefined
}

/** Normalises to a `postgresql://` URL, encoding characters of a raw userinfo that would break parsing. */
export function toPostgresUrl(v: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) return v
  const at = v.lastIndexOf('@')
  if (at < 0) return `postgresql://${v}`
  const userinfo = v.slice(0, at)
  const colon = userinfo.indexOf(':')
  const user = colon < 0 ? userinfo : userinfo.slice(0, colon)
  const pass = colon < 0 ? undefined : userinfo.slice(colon + 1)
  const enc = pass === undefined ? encodeUserinfo(user) : `${encodeUserinfo(user)}:${encodeUserinfo(pass)}`
  return `postgresql://${enc}@${v.slice(at + 1)}`
}

// Keeps existing %XX escapes (an already encoded password stays as it is).
function encodeUserinfo(s: string): string {
  return s.replace(/%[0-9a-f]{2}|[^A-Za-z0-9\-._~!$&'()*+,;=]/gi, (m) => (m.length === 3 ? m : encodeURIComponent(m)))
}

/** A replication slot name as PostgreSQL accepts it. */
export function checkSlotName(v: string): string | undefined {
  return /^[a-z0-9_]{1,63}$/.test(v) ? undefined : 'expected a replication slot name (lower-case letters, digits and _, at most 63)'
}

/** A cron expression (5 or 6 fields, or a macro like @daily) or "off". */
export function checkCron(v: string): string | undefined {
  if (v === 'off') return undefined
  const fields = v.trim().split(/\s+/)
  const base = 'expected a cron expression of 5 or 6 fields (e.g. "*/15 * * * *") or "off"'
  if (!v.trim().startsWith('@') && fields.length !== 5 && fields.length !== 6) return `${base}; found ${fields.length} fields`
  const result = cron.validateDetailed(v)
  if (result.valid) return undefined
  const first = result.errors[0]
  return first ? `${base}; ${first.message}` : base
}

/** "off" disables a schedule. */
export function cronOrOff(v: string): string | undefined {
  return v === 'off' ? undefined : v.trim()
}
