/**
 * A strict parser of the Prometheus text format (0.0.4) for tests: every line is a
 * HELP, a TYPE or a sample; every sample belongs to a family whose TYPE came first;
 * names, labels and values follow the grammar; no series appears twice.
 */
export interface PromSample {
  name: string
  labels: Record<string, string>
  value: number
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"'
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(${LABEL}(?:,${LABEL})*)?\\})? (\\S+)$`)
const VALUE = /^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|NaN|[+-]Inf)$/

/** Parses the exposition; throws naming the first bad line. */
export function parseProm(text: string): PromSample[] {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline')
  const types = new Map<string, string>()
  const helps = new Set<string>()
  const seen = new Set<string>()
  const out: PromSample[] = []
  text.slice(0, -1).split('\n').forEach((line, i) => {
    const bad = (why: string) => new Error(`line ${i + 1} ${JSON.stringify(line)}: ${why}`)
    let m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line)
    if (m) {
      if (helps.has(m[1]!)) throw bad('second HELP')
      helps.add(m[1]!)
      return
    }
    m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line)
    if (m) {
      if (types.has(m[1]!)) throw bad('second TYPE')
      types.set(m[1]!, m[2]!)
      return
    }
    m = SAMPLE.exec(line)
    if (!m) throw bad('not a HELP, TYPE or sample line')
    const [, name, labelText, value] = m
    if (!types.has(name!)) throw bad('sample before its TYPE')
    if (!VALUE.test(value!)) throw bad('bad value')
    if (seen.has(`${name}{${labelText ?? ''}}`)) throw bad('duplicate series')
    seen.add(`${name}{${labelText ?? ''}}`)
    const labels: Record<string, string> = {}
    for (const lm of (labelText ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]!] = lm[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1')
    out.push({ name: name!, labels, value: value === 'NaN' ? NaN : value === '+Inf' ? Infinity : value === '-Inf' ? -Infinity : Number(value) })
  })
  return out
}
