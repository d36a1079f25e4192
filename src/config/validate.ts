/**
 * Checks a raw value (merged file + environment) against a schema: types checked,
 * unknown keys rejected, defaults filled in. Collects every problem instead of
 * stopping at the first, so an operator fixes a file in one go. Values of secret
 * nodes never appear in a problem.
 */
import type { PathSegment, RelativeProblem, SchemaContext, Spec } from './kit.ts'
import { maskCredentials } from './mask.ts'

/** A problem at an absolute key path. */
export interface Problem {
  readonly path: readonly PathSegment[]
  readonly message: string
}

/** Validates `raw` against `spec`; the value is meaningful only when `problems` is empty. */
export function validate<T>(spec: Spec<T>, raw: unknown, ctx: SchemaContext): { value: T; problems: Problem[] } {
  const problems: Problem[] = []
  const value = check(spec, raw, [], ctx, problems, {}) as T
  return { value, problems }
}

function check(spec: Spec<unknown>, raw: unknown, path: PathSegment[], ctx: SchemaContext, out: Problem[], siblings: Record<string, unknown>): unknown {
  let value = raw
  if (value === undefined || value === null) {
    value = spec.default?.(ctx, siblings)
    if (value === undefined) {
      if (spec.optional) return undefined
      if (spec.kind === 'object') value = {}
      else if (spec.kind === 'list') value = []
      else {
        out.push({ path, message: `missing; expected ${spec.expected}` })
        return undefined
      }
    }
  }
  switch (spec.kind) {
    case 'string':
      return checkString(spec, value, path, ctx, out)
    case 'int':
      if (typeof value === 'number' && Number.isInteger(value) && value >= (spec.min ?? -Infinity) && value <= (spec.max ?? Infinity)) return value
      return fail(spec, value, path, out)
    case 'bool':
      return typeof value === 'boolean' ? value : fail(spec, value, path, out)
    case 'list':
      return checkList(spec, value, path, ctx, out)
    case 'object':
      return checkObject(spec, value, path, ctx, out)
  }
}

function fail(spec: Spec<unknown>, value: unknown, path: PathSegment[], out: Problem[]): undefined {
  out.push({ path, message: `expected ${spec.expected}, got ${describe(value, spec.secret)}` })
  return undefined
}

function checkString(spec: Spec<unknown>, value: unknown, path: PathSegment[], ctx: SchemaContext, out: Problem[]): unknown {
  if (typeof value !== 'string') return fail(spec, value, path, out)
  if (spec.oneOf && !spec.oneOf.includes(value)) return fail(spec, value, path, out)
  const wrong = spec.check?.(value, ctx)
  if (wrong !== undefined) {
    const shown = spec.secret ? '' : `, got ${describe(value, false)}`
    out.push({ path, message: `${wrong}${shown}` })
    return undefined
  }
  return spec.transform ? spec.transform(value, ctx) : value
}

function checkList(spec: Spec<unknown>, value: unknown, path: PathSegment[], ctx: SchemaContext, out: Problem[]): unknown {
  if (!Array.isArray(value)) return fail(spec, value, path, out)
  const item = spec.item as Spec<unknown>
  const before = out.length
  const result = value.map((v, i) => check(item, v, [...path, i], ctx, out, {}))
  if (out.length === before) addRelative(spec, result, path, out)
  return result
}

function checkObject(spec: Spec<unknown>, value: unknown, path: PathSegment[], ctx: SchemaContext, out: Problem[]): unknown {
  if (!isPlainObject(value)) return fail(spec, value, path, out)
  const fields = spec.fields ?? {}
  const known = Object.keys(fields)
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(fields, key)) out.push({ path: [...path, key], message: unknownKeyMessage(key, known) })
  }
  const before = out.length
  const result: Record<string, unknown> = {}
  for (const key of known) {
    const v = check(fields[key] as Spec<unknown>, value[key], [...path, key], ctx, out, value)
    if (v !== undefined) result[key] = v
  }
  if (out.length === before) addRelative(spec, result, path, out)
  return result
}

function addRelative(spec: Spec<unknown>, value: unknown, path: PathSegment[], out: Problem[]): void {
  const refine = spec.refine as ((v: unknown) => RelativeProblem[]) | undefined
  for (const p of refine?.(value) ?? []) out.push({ path: [...path, ...p.path], message: p.message })
}

/** True for `{…}` mappings (not arrays, Buffers, dates). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

function unknownKeyMessage(key: string, known: readonly string[]): string {
  const near = known.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2)
  const hint = near === undefined ? '' : `; did you mean "${near}"?`
  return `unknown key; expected one of ${known.join(', ')}${hint}`
}

/** A short, secret-free description of a value for an error message. */
export function describe(v: unknown, isSecret: boolean): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'a list'
  if (isPlainObject(v)) return 'a mapping'
  if (isSecret) return `a ${typeof v} (value not shown: secret)`
  if (typeof v === 'string') {
    const s = maskCredentials(v)
    return `"${s.length > 80 ? `${s.slice(0, 77)}...` : s}"`
  }
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`
  return `a ${typeof v === 'object' ? 'binary or tagged value' : typeof v}`
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost)
    }
    prev = cur
  }
  return prev[b.length] as number
}
