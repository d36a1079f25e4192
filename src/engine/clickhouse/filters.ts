/**
 * Include/exclude patterns for databases and tables. A pattern without a dot
 * names databases (`langsmith*`); a pattern with a dot names tables
 * (`default.runs`, `*.tmp_*`), split at the first dot. `*` matches any run of
 * characters, `?` one character; matching is exact otherwise (case-sensitive,
 * as ClickHouse names are).
 */

/** Databases never backed up: the server's own. */
export const SYSTEM_DATABASES: ReadonlySet<string> = new Set(['system', 'INFORMATION_SCHEMA', 'information_schema'])

/** Patterns from configuration; empty `include` means everything. */
export interface NameFilter {
  include: readonly string[]
  exclude: readonly string[]
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')
  return new RegExp(`^${body}$`, 's')
}

interface Pattern {
  db: RegExp
  table: RegExp | undefined
}

function compile(pattern: string): Pattern {
  const dot = pattern.indexOf('.')
  return dot < 0 ? { db: globToRegExp(pattern), table: undefined } : { db: globToRegExp(pattern.slice(0, dot)), table: globToRegExp(pattern.slice(dot + 1)) }
}

/** A compiled filter: `database(name)` says whether a database is kept at all, `table(db, name)` whether a table is. */
export interface CompiledFilter {
  database(name: string): boolean
  table(database: string, name: string): boolean
}

/** Compiles patterns once; system databases are always excluded. */
export function compileFilter(filter: NameFilter): CompiledFilter {
  const include = filter.include.map(compile)
  const exclude = filter.exclude.map(compile)
  const dbExcluded = (db: string) => SYSTEM_DATABASES.has(db) || exclude.some((p) => !p.table && p.db.test(db))
  return {
    // A database is kept when a pattern could select it; it is recreated even if it ends up with no tables.
    database: (db) => !dbExcluded(db) && (include.length === 0 || include.some((p) => p.db.test(db))),
    table: (db, name) =>
      !dbExcluded(db) &&
      (include.length === 0 || include.some((p) => p.db.test(db) && (!p.table || p.table.test(name)))) &&
      !exclude.some((p) => p.table && p.db.test(db) && p.table.test(name)),
  }
}
