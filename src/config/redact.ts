/**
 * A printable copy of the configuration: secret settings replaced by `***` and
 * credentials embedded in URLs masked, so the configuration can be logged or shown
 * by the API without leaking anything.
 */
import type { Spec } from './kit.ts'
import { SECRET_MASK, maskCredentials } from './mask.ts'
import { CONFIG_SCHEMA, type Config } from './schema.ts'

/** The configuration with every secret replaced by `***` (same shape; not frozen). */
export function redactConfig(config: Config): Config {
  return redact(CONFIG_SCHEMA, config) as Config
}

function redact(spec: Spec<unknown>, value: unknown): unknown {
  if (value === undefined || value === null) return value
  if (spec.secret) return SECRET_MASK
  if (typeof value === 'string') return maskCredentials(value)
  if (spec.kind === 'list' && Array.isArray(value)) return value.map((v) => redact(spec.item as Spec<unknown>, v))
  if (spec.kind === 'object' && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = redact(spec.fields?.[k] ?? spec, v)
    return out
  }
  return value
}
