/**
 * Reading the YAML configuration file: the data, plus a way to find the line a key
 * path was written on, so every error can point at it. Parse errors name the line
 * and never quote the file's text (it may hold secrets).
 */
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Node as YamlNode } from 'yaml'
import { TidemarkError } from '../errors.ts'
import type { PathSegment } from './kit.ts'
import { isPlainObject } from './validate.ts'

/** A parsed configuration file. */
export interface ParsedFile {
  readonly data: Record<string, unknown>
  /** The 1-based line of the deepest key of `path` present in the file; undefined when not even the first is. */
  lineOf(path: readonly PathSegment[]): number | undefined
}

/** Parses YAML text; throws TM_ERR_CONFIG_PARSE naming the line on malformed input. */
export function parseYamlConfig(text: string, where: string): ParsedFile {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true })
  const first = doc.errors[0]
  if (first) {
    const line = lines.linePos(first.pos[0]).line
    throw new TidemarkError('TM_ERR_CONFIG_PARSE', `${where} line ${line}: malformed YAML: ${first.message}`, {
      details: { line, yamlError: first.code },
    })
  }
  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    throw new TidemarkError('TM_ERR_CONFIG_PARSE', `${where}: malformed YAML: ${(err as Error).message}`, { cause: err })
  }
  if (data === null || data === undefined) data = {}
  if (!isPlainObject(data)) {
    throw new TidemarkError('TM_ERR_CONFIG_INVALID', `${where} line 1: expected a mapping of sections (repository, clickhouse, postgres, …) at the top level`)
  }
  return {
    data,
    lineOf: (path) => {
      const offset = offsetOf(doc.contents, path)
      return offset === undefined ? undefined : lines.linePos(offset).line
    },
  }
}

function offsetOf(root: unknown, path: readonly PathSegment[]): number | undefined {
  let node = root
  let offset: number | undefined
  for (const seg of path) {
    const next = child(node, seg)
    if (!next) break
    offset = next.at ?? offset
    node = next.node
  }
  return offset
}

function child(node: unknown, seg: PathSegment): { node: unknown; at: number | undefined } | undefined {
  if (isMap(node)) {
    const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg))
    return pair ? { node: pair.value, at: rangeStart(pair.key) } : undefined
  }
  if (isSeq(node) && typeof seg === 'number') {
    const item = node.items[seg]
    return item === undefined ? undefined : { node: item, at: rangeStart(item) }
  }
  return undefined
}

function rangeStart(node: unknown): number | undefined {
  return (node as YamlNode | null)?.range?.[0]
}
