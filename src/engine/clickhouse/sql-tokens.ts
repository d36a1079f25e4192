/**
 * A small tokenizer for ClickHouse DDL, enough to find table references in a
 * view's query and the arguments of an engine. Quoted identifiers, strings and
 * comments are recognised so that a name inside a string is never taken for a
 * table.
 */

/** A token: `ident` (bare or quoted, unquoted value), `string` (unescaped value), `punct` (one char), `other` (numbers, operators). */
export interface Token {
  kind: 'ident' | 'string' | 'punct' | 'other'
  value: string
  /** True for a bare identifier (may be a keyword). */
  bare: boolean
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', b: '\b', f: '\f', '\\': '\\', "'": "'", '"': '"', '`': '`' }

function readQuoted(src: string, start: number, quote: string): [string, number] {
  let out = ''
  let i = start + 1
  while (i < src.length) {
    const c = src[i] as string
    if (c === '\\' && i + 1 < src.length) {
      const n = src[i + 1] as string
      out += ESCAPES[n] ?? n
      i += 2
    } else if (c === quote && src[i + 1] === quote) {
      out += quote
      i += 2
    } else if (c === quote) {
      return [out, i + 1]
    } else {
      out += c
      i++
    }
  }
  return [out, i]
}

function skipComment(src: string, i: number): number {
  if (src.startsWith('--', i)) {
    const end = src.indexOf('\n', i)
    return end < 0 ? src.length : end + 1
  }
  if (src.startsWith('/*', i)) {
    const end = src.indexOf('*/', i + 2)
    return end < 0 ? src.length : end + 2
  }
  return i
}

/** Splits SQL text into tokens, dropping whitespace and comments. */
export function tokenize(src: string): Token[] {
  const out: Token[] = []
  let i = 0
  while (i < src.length) {
    const c = src[i] as string
    const afterComment = skipComment(src, i)
    if (afterComment !== i) {
      i = afterComment
    } else if (/\s/.test(c)) {
      i++
    } else if (c === '`' || c === '"') {
      const [value, next] = readQuoted(src, i, c)
      out.push({ kind: 'ident', value, bare: false })
      i = next
    } else if (c === "'") {
      const [value, next] = readQuoted(src, i, c)
      out.push({ kind: 'string', value, bare: false })
      i = next
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(src.slice(i, i + 512)) as RegExpExecArray
      out.push({ kind: 'ident', value: m[0], bare: true })
      i += m[0].length
    } else if ('(),.;[]{}'.includes(c)) {
      out.push({ kind: 'punct', value: c, bare: false })
      i++
    } else {
      const m = /^[^\sA-Za-z_`"'(),.;[\]{}]+/.exec(src.slice(i, i + 512)) as RegExpExecArray
      out.push({ kind: 'other', value: m[0], bare: false })
      i += m[0].length
    }
  }
  return out
}

/** True when `tok` is the bare keyword `word` (case-insensitive). */
export function isKeyword(tok: Token | undefined, word: string): boolean {
  return tok !== undefined && tok.kind === 'ident' && tok.bare && tok.value.toUpperCase() === word
}

/** Reads `name` or `db.name` at `i`; returns the parts and the index after them, or undefined. */
export function readQualifiedName(tokens: Token[], i: number): { db?: string; name: string; next: number } | undefined {
  const first = tokens[i]
  if (first?.kind !== 'ident') return undefined
  const dot = tokens[i + 1]
  const second = tokens[i + 2]
  if (dot?.kind === 'punct' && dot.value === '.' && second?.kind === 'ident') return { db: first.value, name: second.value, next: i + 3 }
  return { name: first.value, next: i + 1 }
}
