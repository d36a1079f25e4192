/**
 * A small schema kit for the configuration: typed builders whose result type is
 * inferred, so the schema and the Config type cannot drift apart. Validation lives
 * in validate.ts; this file only describes shapes.
 */

/** What defaults and transforms may depend on (never the clock: config is time-free). */
export interface SchemaContext {
  readonly cwd: string
  readonly cpus: number
}

/** The node kinds the validator knows. */
export type Kind = 'string' | 'int' | 'bool' | 'list' | 'object'

/** A default: a value, or computed from the context and the raw sibling values. */
export type DefaultFn = (ctx: SchemaContext, siblings: Readonly<Record<string, unknown>>) => unknown

/** One node of the schema. `T` is the type of the validated value (phantom). */
export interface Spec<T> {
  readonly kind: Kind
  /** Absent (or YAML null) is allowed and yields undefined unless a default applies. */
  readonly optional: boolean
  /** Never shown in errors, masked by redactConfig. */
  readonly secret: boolean
  /** Human description used in errors: "an integer from 1 to 65535". */
  readonly expected: string
  readonly default?: DefaultFn
  readonly oneOf?: readonly string[]
  readonly min?: number
  readonly max?: number
  readonly item?: Spec<unknown>
  readonly fields?: Readonly<Record<string, Spec<unknown>>>
  /** String check: returns what is wrong, or undefined. */
  readonly check?: (value: string, ctx: SchemaContext) => string | undefined
  /** String normalisation after a successful check. */
  readonly transform?: (value: string, ctx: SchemaContext) => unknown
  /** Cross-field check on a validated object or list: returns problems relative to it. */
  readonly refine?: (value: never) => RelativeProblem[]
  readonly __type?: T
}

/** A mapping key or a list index. */
export type PathSegment = string | number

/** A problem found below some node, with the path relative to that node. */
export interface RelativeProblem {
  readonly path: readonly PathSegment[]
  readonly message: string
}

/** The validated value type of a schema node. */
export type Infer<S> = S extends Spec<infer T> ? T : never

type Simplify<T> = { [K in keyof T]: T[K] } & {}
type OptionalKeys<F> = { [K in keyof F]: undefined extends Infer<F[K]> ? K : never }[keyof F]
type RequiredKeys<F> = Exclude<keyof F, OptionalKeys<F>>
/** The object type of a mapping's fields: optional nodes become optional keys. */
export type InferFields<F> = Simplify<
  { readonly [K in RequiredKeys<F>]: Infer<F[K]> } & { readonly [K in OptionalKeys<F>]?: Exclude<Infer<F[K]>, undefined> }
>

function constant(value: unknown): DefaultFn {
  return () => value
}

function toDefault(d: unknown): DefaultFn | undefined {
  if (d === undefined) return undefined
  return typeof d === 'function' ? (d as DefaultFn) : constant(d)
}

interface StrOpts<T> {
  default?: string | DefaultFn
  secret?: boolean
  expected?: string
  check?: (value: string, ctx: SchemaContext) => string | undefined
  transform?: (value: string, ctx: SchemaContext) => T
}

/** A string; `transform` may normalise it (paths to absolute, URLs to canonical form). */
export function str(o?: Omit<StrOpts<string>, 'transform'>): Spec<string>
export function str<T>(o: StrOpts<T> & { transform: (value: string, ctx: SchemaContext) => T }): Spec<T>
export function str<T>(o: StrOpts<T> = {}): Spec<T> {
  return {
    kind: 'string',
    optional: false,
    secret: o.secret ?? false,
    expected: o.expected ?? 'a string',
    default: toDefault(o.default),
    check: o.check,
    transform: o.transform,
  }
}

/** One of a fixed set of strings. */
export function oneOf<const V extends string>(values: readonly V[], dflt?: V): Spec<V> {
  return {
    kind: 'string',
    optional: false,
    secret: false,
    expected: `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`,
    default: toDefault(dflt),
    oneOf: values,
  }
}

/** An integer in [min, max]. */
export function int(o: { min: number; max?: number; default?: number | DefaultFn }): Spec<number> {
  const max = o.max ?? Number.MAX_SAFE_INTEGER
  const expected = o.max === undefined ? `an integer of at least ${o.min}` : `an integer from ${o.min} to ${max}`
  return { kind: 'int', optional: false, secret: false, expected, default: toDefault(o.default), min: o.min, max }
}

/** A boolean (from the environment: true/false, 1/0, yes/no, on/off). */
export function bool(dflt?: boolean | DefaultFn): Spec<boolean> {
  return { kind: 'bool', optional: false, secret: false, expected: 'true or false', default: toDefault(dflt) }
}

/** A list; absent means empty unless wrapped in opt(). */
export function list<T>(item: Spec<T>, o: { refine?: (value: readonly T[]) => RelativeProblem[] } = {}): Spec<readonly T[]> {
  return { kind: 'list', optional: false, secret: false, expected: `a list of ${item.expected}`, item, refine: o.refine }
}

/** A mapping with exactly these keys (unknown keys are errors); absent means all defaults unless wrapped in opt(). */
export function obj<F extends Record<string, Spec<unknown>>>(
  fields: F,
  o: { refine?: (value: InferFields<F>) => RelativeProblem[] } = {},
): Spec<InferFields<F>> {
  return { kind: 'object', optional: false, secret: false, expected: 'a mapping', fields, refine: o.refine }
}

/** Makes a node optional: absent yields undefined (or its default, when it has one). */
export function opt<T>(spec: Spec<T>): Spec<T | undefined> {
  return { ...spec, optional: true }
}

/** Marks a string as a secret. */
export function secret(o: Omit<StrOpts<string>, 'secret'> = {}): Spec<string | undefined> {
  return opt(str({ ...o, secret: true }))
}
