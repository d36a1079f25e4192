/**
 * Generates ClickHouse-like benchmark data: LangSmith `runs` rows as ClickHouse Native blocks
 * (columnar: UUIDs, DateTime64 timestamps, small ints, JSON payload strings). Text comes from a
 * fixed pool of sentences drawn with a skewed (Zipf-like) distribution, system prompts repeat
 * from a few templates and LLM outputs appear twice per row (as LangChain stores them), so the
 * data compresses about as well as real trace data. Deterministic for a given seed.
 *
 * CLI: node bench/gen-clickhouse-like.ts <out-file> [MiB] [seed]
 */
import { closeSync, openSync, writeSync } from 'node:fs'

const ROWS_PER_BLOCK = 4096

/** splitmix32-style PRNG: fast and deterministic, not for secrets. */
export function prng(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x9e3779b9) >>> 0
    let z = state
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296
  }
}

interface Vocab {
  rand: () => number
  sentences: string[]
  prompts: string[]
}

function makeVocab(seed: number): Vocab {
  const rand = prng(seed)
  const syllables = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'vi', 'so', 'de', 'an', 'qu', 'ex', 'or', 'il', 'pe', 'ster', 'tion', 'ing', 'al', 'com']
  const words = Array.from({ length: 6000 }, () => {
    const n = 1 + Math.floor(rand() * 3)
    return Array.from({ length: n }, () => syllables[Math.floor(rand() * syllables.length)]).join('')
  })
  const word = () => words[Math.floor(words.length * rand() ** 2.5)]!
  const sentence = () => Array.from({ length: 6 + Math.floor(rand() * 18) }, word).join(' ') + '.'
  const sentences = Array.from({ length: 60_000 }, sentence)
  const prompts = Array.from({ length: 24 }, () => Array.from({ length: 10 + Math.floor(rand() * 30) }, sentence).join(' '))
  return { rand, sentences, prompts }
}

function text(v: Vocab, count: number): string {
  let out = ''
  for (let i = 0; i < count; i++) out += (i ? ' ' : '') + v.sentences[Math.floor(v.sentences.length * v.rand() ** 1.05)]
  return out
}

function uuid(rand: () => number, into: Buffer, at: number): void {
  for (let i = 0; i < 16; i += 4) into.writeUInt32LE(Math.floor(rand() * 4294967296), at + i)
}

function uuidText(bytes: Buffer): string {
  const h = bytes.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

function varint(n: number): Buffer {
  const out: number[] = []
  do {
    out.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0))
    n = Math.floor(n / 128)
  } while (n > 0)
  return Buffer.from(out)
}

function nativeString(s: string | Buffer): Buffer[] {
  const b = typeof s === 'string' ? Buffer.from(s) : s
  return [varint(b.length), b]
}

const RUN_TYPES = ['llm', 'chain', 'tool', 'retriever', 'prompt', 'parser'] as const
const NAMES = { llm: ['ChatOpenAI', 'ChatAnthropic'], chain: ['RunnableSequence', 'AgentExecutor', 'LangGraph'], tool: ['search', 'calculator', 'sql_db_query'], retriever: ['VectorStoreRetriever'], prompt: ['ChatPromptTemplate'], parser: ['StrOutputParser'] }
const MODELS = ['gpt-4o-mini', 'gpt-4o', 'claude-3-5-sonnet-20241022']

interface Row {
  runType: (typeof RUN_TYPES)[number]
  name: string
  inputs: string
  outputs: string
  extra: string
  error: string
  tokens: [number, number]
}

function row(v: Vocab, trace: string): Row {
  const r = v.rand
  const runType = RUN_TYPES[Math.floor(RUN_TYPES.length * r() ** 1.5)]!
  const names = NAMES[runType]
  const name = names[Math.floor(r() * names.length)]!
  const model = MODELS[Math.floor(r() * MODELS.length)]!
  const question = text(v, 1 + Math.floor(r() * 4))
  const answer = text(v, 2 + Math.floor(r() * 12))
  const tokens: [number, number] = [Math.floor(r() * 4000), Math.floor(r() * 800)]
  const inputs =
    runType === 'llm'
      ? JSON.stringify({ messages: [{ role: 'system', content: v.prompts[Math.floor(v.prompts.length * r() ** 2)] }, { role: 'user', content: question }], model, temperature: 0.7 })
      : JSON.stringify({ input: question, chat_history: [], config: { tags: ['prod'], run_name: name } })
  const outputs =
    runType === 'llm'
      ? JSON.stringify({ generations: [{ text: answer, type: 'ChatGeneration', message: { type: 'ai', content: answer } }], llm_output: { token_usage: { prompt_tokens: tokens[0], completion_tokens: tokens[1] }, model_name: model } })
      : runType === 'retriever'
        ? JSON.stringify({ documents: Array.from({ length: 4 }, () => ({ page_content: text(v, 3), metadata: { source: `s3://kb/${Math.floor(r() * 1e9).toString(36)}.pdf`, score: r(), chunk: Math.floor(r() * 500) } })) })
        : JSON.stringify({ output: answer, latency_ms: r() * 3000, request_id: Math.floor(r() * 2 ** 52).toString(16) })
  const extra = JSON.stringify({
    metadata: { ls_provider: model.startsWith('claude') ? 'anthropic' : 'openai', ls_model_name: model, thread_id: trace, revision_id: 'v1.4.2-7-gdeadbee' },
    runtime: { sdk: 'langsmith-py', sdk_version: '0.1.147', library: 'langchain-core', platform: 'Linux-5.15.0-1064-aws-x86_64-with-glibc2.36', python_version: '3.11.9' },
  })
  const error = r() < 0.03 ? `Traceback (most recent call last):\n  File "agent.py", line 88, in invoke\n    raise ToolException(${JSON.stringify(text(v, 1))})\nToolException` : ''
  return { runType, name, inputs, outputs, extra, error, tokens }
}

/** One Native block of `n` runs: each column is a header (name, type) followed by its values. */
function block(v: Vocab, n: number, firstRow: number): Buffer {
  const ids = Buffer.alloc(16 * n), traces = Buffer.alloc(16 * n), tenants = Buffer.alloc(16 * n), sessions = Buffer.alloc(16 * n)
  const starts = Buffer.alloc(8 * n), ends = Buffer.alloc(8 * n), prompt = Buffer.alloc(4 * n), completion = Buffer.alloc(4 * n)
  const strings: Record<'name' | 'run_type' | 'status' | 'inputs' | 'outputs' | 'extra' | 'error', Buffer[]> = { name: [], run_type: [], status: [], inputs: [], outputs: [], extra: [], error: [] }
  const tenant = Buffer.alloc(16)
  let trace = Buffer.alloc(16)
  for (let i = 0; i < n; i++) {
    if (i % 8 === 0) uuid(v.rand, (trace = Buffer.alloc(16)), 0) // runs of one trace sit together
    if (i % 1024 === 0) uuid(v.rand, tenant, 0)
    uuid(v.rand, ids, 16 * i)
    trace.copy(traces, 16 * i)
    tenant.copy(tenants, 16 * i)
    tenant.copy(sessions, 16 * i)
    const start = 1_764_000_000_000_000 + (firstRow + i) * 1500 + Math.floor(v.rand() * 1000)
    starts.writeBigInt64LE(BigInt(start), 8 * i)
    ends.writeBigInt64LE(BigInt(start + Math.floor(v.rand() * 5_000_000)), 8 * i)
    const r = row(v, uuidText(trace))
    prompt.writeUInt32LE(r.tokens[0], 4 * i)
    completion.writeUInt32LE(r.tokens[1], 4 * i)
    for (const [k, s] of [['name', r.name], ['run_type', r.runType], ['status', r.error ? 'error' : 'success'], ['inputs', r.inputs], ['outputs', r.outputs], ['extra', r.extra], ['error', r.error]] as const) strings[k].push(...nativeString(s))
  }
  const columns: [string, string, Buffer[]][] = [
    ['id', 'UUID', [ids]], ['trace_id', 'UUID', [traces]], ['tenant_id', 'UUID', [tenants]], ['session_id', 'UUID', [sessions]],
    ['start_time', "DateTime64(6, 'UTC')", [starts]], ['end_time', "DateTime64(6, 'UTC')", [ends]],
    ['name', 'String', strings.name], ['run_type', 'String', strings.run_type], ['status', 'String', strings.status],
    ['inputs', 'String', strings.inputs], ['outputs', 'String', strings.outputs], ['extra', 'String', strings.extra], ['error', 'String', strings.error],
    ['prompt_tokens', 'UInt32', [prompt]], ['completion_tokens', 'UInt32', [completion]],
  ]
  const parts: Buffer[] = [varint(columns.length), varint(n)]
  for (const [name, type, data] of columns) parts.push(...nativeString(name), ...nativeString(type), ...data)
  return Buffer.concat(parts)
}

/** Writes at least `bytes` bytes of Native blocks to `path`; returns the exact size written. */
export function generateClickhouseLike(path: string, bytes: number, seed = 42): number {
  const vocab = makeVocab(seed)
  const fd = openSync(path, 'w')
  let written = 0
  try {
    for (let rows = 0; written < bytes; rows += ROWS_PER_BLOCK) written += writeSync(fd, block(vocab, ROWS_PER_BLOCK, rows))
  } finally {
    closeSync(fd)
  }
  return written
}

if (import.meta.main) {
  const [out, mib = '1024', seed = '42'] = process.argv.slice(2)
  if (!out) throw new Error('usage: gen-clickhouse-like.ts <out-file> [MiB] [seed]')
  const size = generateClickhouseLike(out, Number(mib) * 1024 * 1024, Number(seed))
  console.log(`${out}: ${size} bytes`)
}
