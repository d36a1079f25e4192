/**
 * SQL text for ClickHouse: quoted identifiers and literals, and client-side
 * substitution of `{name:Type}` parameters. Substitution happens here rather
 * than on the server because servers before 19.x reject `param_*` settings.
 */
import { TidemarkError } from '../../errors.ts'

/** A value a query parameter may take. */
export type ParamValue = string | number | bigint | boolean | readonly ParamValue[]

/** Named query parameters for `{name:Type}` placeholders. */
export type QueryParams = Record<string, ParamValue>

/** A backquoted identifier; safe for any name, including dots, quotes and non-ASCII. */
export function quoteIdent(name: string): string {
  return '`' + name.replace(/\\/g, '\\\\').replace(/`/g, '\\`') + '`'
}

/** `db`.`table`, each part quoted. */
export function qualified(database: string, table: string): string {
  return `${quoteIdent(database)}.${quoteIdent(table)}`
}

/** A single-quoted string literal; backslash and quote escaped, control bytes kept verbatim. */
export function quoteString(value: string): string {
  return "'" + value.replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'"
}

/** A SQL literal for a parameter value; rejects non-finite numbers, which have no exact literal. */
export function literal(value: ParamValue): string {
  if (typeof value === 'string') return quoteString(value)
  if (typeof value === 'boolean') return value ? '1' : '0'
  if (typeof value === 'bigint') return value.toString()
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TidemarkError('TM_ERR_INTERNAL', `query parameter is not a finite number: ${value}`)
    return String(value)
  }
  return '[' + value.map(literal).join(', ') + ']'
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*):[^{}]+\}/g

/** Replaces every `{name:Type}` with the literal of `params[name]`; a missing parameter is a programming error. */
export function bindParams(sql: string, params: QueryParams | undefined): string {
  if (!params) return sql
  return sql.replace(PLACEHOLDER, (_m, name: string) => {
    if (!Object.hasOwn(params, name)) throw new TidemarkError('TM_ERR_INTERNAL', `query parameter {${name}} has no value`)
    return literal(params[name] as ParamValue)
  })
}
