/**
 * Rewrites saved DDL so objects land in renamed databases (`--rename-db
 * old=new`). Servers store DDL with every table reference qualified
 * (`CREATE TABLE db.t`, `TO db.t`, `FROM db.t`), so renaming means replacing
 * the database part of qualified names, plus the database arguments that are
 * not written as qualified names: Distributed(cluster, db, t), Buffer(db, t,
 * …), Merge(db, regexp) and a dictionary's `SOURCE(CLICKHOUSE(… DB 'db' …))`.
 *
 * Known limit: an alias or a Nested column named exactly like a renamed
 * database and used as `name.x` in a view's query is renamed too.
 */
import { quoteIdent, quoteString } from './names.ts'

interface Tok {
  kind: 'ident' | 'string' | 'punct' | 'other'
  value: string
  start: number
  end: number
}

function quotedEnd(src: string, start: number): number {
  const quote = src[start]
  let i = start + 1
  while (i < src.length) {
    if (src[i] === '\\') i += 2
    else if (src[i] === quote && src[i + 1] === quote) i += 2
    else if (src[i] === quote) return i + 1
    else i++
  }
  return i
}

function unquote(text: string): string {
  return text.slice(1, -1).replace(/\\(.)/gs, '$1').replace(/''/g, "'").replace(/``/g, '`').replace(/""/g, '"')
}

/** Tokens with their positions (comments and whitespace skipped). */
function scan(src: string): Tok[] {
  const out: Tok[] = []
  let i = 0
  while (i < src.length) {
    const c = src[i] as string
    if (src.startsWith('--', i)) i = src.includes('\n', i) ? src.indexOf('\n', i) + 1 : src.length
    else if (src.startsWith('/*', i)) i = src.includes('*/', i + 2) ? src.indexOf('*/', i + 2) + 2 : src.length
    else if (/\s/.test(c)) i++
    else if (c === '`' || c === '"' || c === "'") {
      const end = quotedEnd(src, i)
      out.push({ kind: c === "'" ? 'string' : 'ident', value: unquote(src.slice(i, end)), start: i, end })
      i = end
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(src.slice(i, i + 512)) as RegExpExecArray
      out.push({ kind: 'ident', value: m[0], start: i, end: i + m[0].length })
      i += m[0].length
    } else {
      // Numbers such as 1.5 end up as other/punct/other, which is fine: only identifiers are replaced.
      out.push({ kind: '(),.;[]{}'.includes(c) ? 'punct' : 'other', value: c, start: i, end: i + 1 })
      i++
    }
  }
  return out
}

const isPunct = (t: Tok | undefined, v: string) => t?.kind === 'punct' && t.value === v
const isWord = (t: Tok | undefined, w: string) => t?.kind === 'ident' && t.value.toUpperCase() === w && /^[A-Za-z_]/.test(t.value)

/** Where each engine keeps its database argument (0-based). */
const ENGINE_DB_ARG: Record<string, number> = { Distributed: 1, Buffer: 0, Merge: 0 }

/** Index of the token that is argument `n` of the call whose `(` is at `open`, when that argument is a single token. */
function singleArg(toks: Tok[], open: number, n: number): number | undefined {
  let depth = 0
  let arg = 0
  let first: number | undefined
  let count = 0
  for (let i = open + 1; i < toks.length; i++) {
    const t = toks[i] as Tok
    if (depth === 0 && (isPunct(t, ',') || isPunct(t, ')'))) {
      if (arg === n) return count === 1 ? first : undefined
      if (isPunct(t, ')')) return undefined
      arg++
      continue
    }
    if (isPunct(t, '(')) depth++
    if (isPunct(t, ')')) depth--
    if (arg === n) {
      first ??= i
      count++
    }
  }
  return undefined
}

/** Token indexes holding a database name that must follow a rename. */
function databaseTokens(toks: Tok[]): number[] {
  const out: number[] = []
  toks.forEach((t, i) => {
    if (t.kind === 'ident' && isPunct(toks[i + 1], '.') && toks[i + 2]?.kind === 'ident' && !isPunct(toks[i - 1], '.')) out.push(i)
    if (isWord(t, 'ENGINE') && toks[i + 1]?.value === '=') {
      const name = toks[i + 2]
      const argIndex = name ? ENGINE_DB_ARG[name.value] : undefined
      if (argIndex !== undefined && isPunct(toks[i + 3], '(')) {
        const at = singleArg(toks, i + 3, argIndex)
        if (at !== undefined) out.push(at)
      }
    }
    // A dictionary's source: SOURCE(CLICKHOUSE(… DB 'name' …)).
    if (isWord(t, 'DB') && toks[i + 1]?.kind === 'string') out.push(i + 1)
  })
  return out
}

/** `ddl` with every database reference renamed by `renames` (old → new); unchanged when nothing matches. */
export function renameDatabases(ddl: string, renames: ReadonlyMap<string, string>): string {
  if (renames.size === 0) return ddl
  const toks = scan(ddl)
  const edits = databaseTokens(toks)
    .map((i) => toks[i] as Tok)
    .filter((t) => renames.has(t.value))
    .sort((a, b) => b.start - a.start)
  let out = ddl
  for (const t of edits) {
    const name = renames.get(t.value) as string
    out = out.slice(0, t.start) + (t.kind === 'string' ? quoteString(name) : quoteIdent(name)) + out.slice(t.end)
  }
  return out
}

/** `CREATE DATABASE <name> …` with the name replaced by `name` (database DDL names the database unqualified). */
export function renameDatabaseDdl(ddl: string, name: string): string {
  const toks = scan(ddl)
  let i = 0
  while (i < toks.length && !isWord(toks[i], 'DATABASE')) i++
  i++
  if (isWord(toks[i], 'IF') && isWord(toks[i + 1], 'NOT') && isWord(toks[i + 2], 'EXISTS')) i += 3
  const t = toks[i]
  if (!t || t.kind !== 'ident') return `CREATE DATABASE ${quoteIdent(name)}`
  return ddl.slice(0, t.start) + quoteIdent(name) + ddl.slice(t.end)
}
