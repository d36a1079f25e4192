/**
 * Dependencies read from DDL text, for what the system tables do not say: a
 * view's sources, a materialized view's TO table, the destination of a
 * Distributed or Buffer table, a dictionary's ClickHouse source. Unqualified
 * names resolve to the object's own database, as the server does when it
 * loads the object's metadata.
 */
import { tableKey } from './catalog.ts'
import { isKeyword, readQualifiedName, tokenize, type Token } from './sql-tokens.ts'

function depthAt(tokens: Token[]): number[] {
  const depth: number[] = []
  let d = 0
  for (const t of tokens) {
    if (t.kind === 'punct' && t.value === ')') d--
    depth.push(d)
    if (t.kind === 'punct' && t.value === '(') d++
  }
  return depth
}

/** Index of the `AS` that starts the view's query (first top-level AS followed by SELECT/WITH/'('), or -1. */
function queryStart(tokens: Token[], depth: number[]): number {
  for (let i = 0; i < tokens.length - 1; i++) {
    if (depth[i] !== 0 || !isKeyword(tokens[i], 'AS')) continue
    const n = tokens[i + 1]
    if (isKeyword(n, 'SELECT') || isKeyword(n, 'WITH') || (n?.kind === 'punct' && n.value === '(')) return i + 1
  }
  return -1
}

/** Tables a view or materialized view reads: every `FROM x`, `JOIN x` and `IN x` that is not a table function or subquery. */
export function viewSources(ddl: string, ownDatabase: string): string[] {
  const tokens = tokenize(ddl)
  const start = queryStart(tokens, depthAt(tokens))
  if (start < 0) return []
  const found = new Set<string>()
  for (let i = start; i < tokens.length - 1; i++) {
    if (!(isKeyword(tokens[i], 'FROM') || isKeyword(tokens[i], 'JOIN') || isKeyword(tokens[i], 'IN'))) continue
    const ref = readQualifiedName(tokens, i + 1)
    if (!ref) continue
    const after = tokens[ref.next]
    if (after?.kind === 'punct' && after.value === '(') continue // table function: numbers(10), remote(…)
    found.add(tableKey(ref.db ?? ownDatabase, ref.name))
  }
  return [...found]
}

/** The `TO db.t` of a materialized view, if it has one. */
export function materializedViewTarget(ddl: string, ownDatabase: string): string | undefined {
  const tokens = tokenize(ddl)
  const depth = depthAt(tokens)
  for (let i = 0; i < tokens.length - 1; i++) {
    const t = tokens[i]
    if (depth[i] !== 0) continue
    // The target comes before the column list, the engine and the query.
    if ((t?.kind === 'punct' && t.value === '(') || isKeyword(t, 'ENGINE') || isKeyword(t, 'AS')) return undefined
    if (isKeyword(t, 'TO')) {
      const ref = readQualifiedName(tokens, i + 1)
      if (ref && tokens[ref.next]?.kind !== 'string') return tableKey(ref.db ?? ownDatabase, ref.name)
    }
  }
  return undefined
}

/** Top-level arguments of the outermost call in `engineFull` (for example `Distributed(c, db, t, rand())`): a lone name or string as its value, anything longer as compact text. */
export function engineArgs(engineFull: string): string[] {
  const open = engineFull.indexOf('(')
  if (open < 0) return []
  const args: Token[][] = [[]]
  let depth = 0
  for (const tok of tokenize(engineFull.slice(open + 1))) {
    const punct = tok.kind === 'punct' ? tok.value : ''
    if (punct === ')' && depth === 0) break
    if (punct === ',' && depth === 0) {
      args.push([])
      continue
    }
    if (punct === '(') depth++
    if (punct === ')') depth--
    args[args.length - 1]?.push(tok)
  }
  if (args.length === 1 && args[0]?.length === 0) return []
  return args.map((toks) => (toks.length === 1 ? (toks[0] as Token).value : toks.map((t) => t.value).join('')))
}

/** Destination table of a Distributed (`cluster, db, table`) or Buffer (`db, table, …`) engine. */
export function engineDestination(engine: string, engineFull: string, ownDatabase: string): string | undefined {
  const args = engineArgs(engineFull)
  const pick = engine === 'Distributed' ? [args[1], args[2]] : engine === 'Buffer' ? [args[0], args[1]] : []
  const [db, table] = pick
  if (!db || !table) return undefined
  return tableKey(/^currentDatabase\(\)$/i.test(db) || db === '' ? ownDatabase : db, table)
}

/** The ClickHouse table a DDL dictionary reads (`SOURCE(CLICKHOUSE(… DB 'd' TABLE 't'))`), if any. */
export function dictionarySource(ddl: string, ownDatabase: string): string | undefined {
  const tokens = tokenize(ddl)
  let db: string | undefined
  let table: string | undefined
  for (let i = 0; i < tokens.length - 1; i++) {
    const value = tokens[i + 1]
    if (value?.kind !== 'string' && value?.kind !== 'ident') continue
    if (isKeyword(tokens[i], 'DB')) db = value.value
    if (isKeyword(tokens[i], 'TABLE') && i > 0 && !isKeyword(tokens[i - 1], 'CREATE')) table = value.value
  }
  return table ? tableKey(db || ownDatabase, table) : undefined
}
