/**
 * Environment overrides. Every setting outside lists has a canonical variable named
 * after its key path (`pipeline.chunkSizeMiB` → `TIDEMARK_PIPELINE_CHUNK_SIZE_MIB`),
 * so the daemon can run from the environment alone; some settings also accept
 * well-known aliases (the LangSmith chart's `CLICKHOUSE_*` / `POSTGRES_DATABASE_URI`,
 * `AWS_*`). The canonical name wins over aliases, aliases in the order listed.
 * Empty variables count as unset. `secondaries` is one variable holding YAML/JSON.
 */
import { parse } from 'yaml'
import { TidemarkError } from '../errors.ts'
import type { Spec } from './kit.ts'
import { isPlainObject } from './validate.ts'

/** A key path and the variables that may set it, in priority order. */
export interface EnvBinding {
  readonly path: readonly string[]
  readonly names: readonly string[]
  readonly spec: Spec<unknown>
}

const ALIASES: Readonly<Record<string, readonly string[]>> = {
  'repository.url': ['TIDEMARK_REPOSITORY'],
  'repository.s3.endpoint': ['TIDEMARK_S3_ENDPOINT'],
  'repository.s3.region': ['TIDEMARK_S3_REGION', 'AWS_REGION', 'AWS_DEFAULT_REGION'],
  'repository.s3.forcePathStyle': ['TIDEMARK_S3_FORCE_PATH_STYLE'],
  'repository.s3.accessKeyId': ['AWS_ACCESS_KEY_ID'],
  'repository.s3.secretAccessKey': ['AWS_SECRET_ACCESS_KEY'],
  'repository.s3.sessionToken': ['AWS_SESSION_TOKEN'],
  'repository.s3.sse': ['TIDEMARK_S3_SSE'],
  'repository.s3.kmsKeyId': ['TIDEMARK_S3_KMS_KEY_ID'],
  'repository.s3.partSizeMiB': ['TIDEMARK_S3_PART_SIZE_MIB'],
  'repository.s3.queueSize': ['TIDEMARK_S3_QUEUE_SIZE'],
  'repository.encryption.passphrase': ['TIDEMARK_PASSPHRASE'],
  'repository.encryption.keyFile': ['TIDEMARK_KEY_FILE'],
  'clickhouse.host': ['CLICKHOUSE_HOST'],
  'clickhouse.port': ['CLICKHOUSE_PORT'],
  'clickhouse.user': ['CLICKHOUSE_USER'],
  'clickhouse.password': ['CLICKHOUSE_PASSWORD'],
  'clickhouse.database': ['CLICKHOUSE_DB'],
  'clickhouse.tls': ['CLICKHOUSE_TLS'],
  'postgres.url': ['POSTGRES_DATABASE_URI'],
}

/** `chunkSizeMiB` → `CHUNK_SIZE_MIB`. */
function snake(key: string): string {
  return key.replace(/MiB/g, 'Mib').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()
}

/** Every environment binding of a schema (canonical name first, then aliases). */
export function envBindings(root: Spec<unknown>, prefix: readonly string[] = []): EnvBinding[] {
  const out: EnvBinding[] = []
  for (const [key, spec] of Object.entries(root.fields ?? {})) {
    const path = [...prefix, key]
    if (spec.kind === 'object') {
      out.push(...envBindings(spec, path))
      continue
    }
    const canonical = `TIDEMARK_${path.map(snake).join('_')}`
    out.push({ path, names: [canonical, ...(ALIASES[path.join('.')] ?? [])], spec })
  }
  return out
}

/** Sets every bound variable present in `env` into `raw` (mutated); returns which variable set which key path. */
export function applyEnv(raw: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>, bindings: readonly EnvBinding[]): Map<string, string> {
  const origins = new Map<string, string>()
  for (const b of bindings) {
    const name = b.names.find((n) => env[n] !== undefined && env[n] !== '')
    if (name === undefined) continue
    if (setIn(raw, b.path, coerce(b.spec, env[name] as string, name))) origins.set(b.path.join('.'), name)
  }
  return origins
}

function coerce(spec: Spec<unknown>, text: string, name: string): unknown {
  switch (spec.kind) {
    case 'int':
      return /^\s*[+-]?\d+\s*$/.test(text) ? Number(text) : text
    case 'bool': {
      const v = text.trim().toLowerCase()
      if (['true', '1', 'yes', 'on'].includes(v)) return true
      if (['false', '0', 'no', 'off'].includes(v)) return false
      return text
    }
    case 'list':
      if (spec.item?.kind === 'string') return text.split(',').map((s) => s.trim()).filter((s) => s !== '')
      return parseYamlValue(text, name)
    case 'object':
      return parseYamlValue(text, name)
    default:
      return text
  }
}

function parseYamlValue(text: string, name: string): unknown {
  try {
    return parse(text, { prettyErrors: false })
  } catch (err) {
    // The yaml library's messages do not quote the input, which may hold credentials.
    throw new TidemarkError('TM_ERR_CONFIG_PARSE', `environment variable ${name}: malformed YAML/JSON: ${(err as Error).message.split('\n')[0]}`)
  }
}

/** Sets `value` at `path`, creating mappings; refuses to replace a non-mapping (the validator reports it). */
function setIn(raw: Record<string, unknown>, path: readonly string[], value: unknown): boolean {
  let node = raw
  for (const key of path.slice(0, -1)) {
    const next = node[key]
    if (next === undefined || next === null) node[key] = {}
    else if (!isPlainObject(next)) return false
    node = node[key] as Record<string, unknown>
  }
  node[path[path.length - 1] as string] = value
  return true
}
