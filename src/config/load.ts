/**
 * Loading the configuration: the YAML file (optional), environment overrides on
 * top, one validation against the schema, then a deep freeze. Every error names the
 * key path, where the value came from (file and line, or environment variable) and
 * what is expected; secret values are never shown.
 */
import { readFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import { TidemarkError } from '../errors.ts'
import { applyEnv, envBindings } from './env.ts'
import type { PathSegment, SchemaContext } from './kit.ts'
import { CONFIG_SCHEMA, type Config } from './schema.ts'
import { validate, type Problem } from './validate.ts'
import { parseYamlConfig, type ParsedFile } from './yaml-source.ts'

type Env = Readonly<Record<string, string | undefined>>

const BINDINGS = envBindings(CONFIG_SCHEMA)

/** `secondaries[0].url` */
export function formatPath(path: readonly PathSegment[]): string {
  return path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc === '' ? seg : `${acc}.${seg}`), '')
}

/**
 * Builds the configuration from the file's text (undefined: no file) and the
 * environment. Pure (reads no file): `fileName` is only used in errors.
 * Throws TidemarkError TM_ERR_CONFIG_PARSE / TM_ERR_CONFIG_INVALID.
 */
export function configFromSources(fileText: string | undefined, fileName: string | undefined, env: Env, cwd: string, cpus = availableParallelism()): Config {
  const where = `file ${fileName ?? '(unnamed)'}`
  const file = fileText === undefined ? undefined : parseYamlConfig(fileText, where)
  const raw = structuredClone(file?.data ?? {})
  const origins = applyEnv(raw, env, BINDINGS)
  const ctx: SchemaContext = { cwd, cpus }
  const { value, problems } = validate(CONFIG_SCHEMA, raw, ctx)
  if (problems.length > 0) throw invalid(problems, (p) => sourceOf(p, origins, file, where))
  return deepFreeze(value)
}

function sourceOf(path: readonly PathSegment[], origins: Map<string, string>, file: ParsedFile | undefined, where: string): string {
  for (let n = path.length; n > 0; n--) {
    const name = origins.get(path.slice(0, n).join('.'))
    if (name !== undefined) return `environment variable ${name}`
  }
  // A problem about a whole section (e.g. two conflicting keys): name every source below it.
  const prefix = `${path.join('.')}.`
  const below = [...origins].filter(([key]) => key.startsWith(prefix)).map(([, name]) => name)
  const line = file?.lineOf(path)
  const parts = [line === undefined ? undefined : `${where} line ${line}`, below.length === 0 ? undefined : `environment ${below.length === 1 ? 'variable' : 'variables'} ${below.join(', ')}`]
  return parts.filter((p) => p !== undefined).join(', ') || 'defaults'
}

function invalid(problems: readonly Problem[], source: (p: readonly PathSegment[]) => string): TidemarkError {
  const lines = problems.map((p) => `${formatPath(p.path) || '(top level)'} (${source(p.path)}): ${p.message}`)
  const message = lines.length === 1 ? `invalid configuration: ${lines[0]}` : `invalid configuration, ${lines.length} problems: ${lines.join('; ')}`
  return new TidemarkError('TM_ERR_CONFIG_INVALID', message, { details: { problems: lines } })
}

/** Recursively freezes a plain data tree; returns it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

/** Where loadConfig looks. */
export interface LoadConfigOptions {
  /** `--config`; falls back to TIDEMARK_CONFIG; neither means defaults + environment. */
  argvConfigPath?: string | undefined
  env: Env
  cwd: string
}

/** Reads the file (if any), applies the environment and validates. Throws TM_ERR_CONFIG_*. */
export async function loadConfig(opts: LoadConfigOptions): Promise<Config> {
  const given = opts.argvConfigPath ?? (opts.env.TIDEMARK_CONFIG || undefined)
  if (given === undefined) return configFromSources(undefined, undefined, opts.env, opts.cwd)
  const file = resolve(opts.cwd, given)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`
    const from = opts.argvConfigPath !== undefined ? '--config' : 'TIDEMARK_CONFIG'
    throw new TidemarkError('TM_ERR_CONFIG_PARSE', `configuration file ${file} (from ${from}) ${why}`, { cause: err })
  }
  return configFromSources(text, file, opts.env, opts.cwd)
}
