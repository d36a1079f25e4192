/**
 * A LangSmith-like ClickHouse dataset, generated on the server (INSERT …
 * SELECT from numbers(), so gigabytes take seconds, not a client upload):
 *
 *   ls.runs       MergeTree, one partition per day: UUIDs, times, token
 *                 counts and JSON-ish payloads (inputs, outputs, extra) built
 *                 from a fixed vocabulary drawn with a skewed distribution and
 *                 a few repeated system prompts, so it compresses about as
 *                 well as real trace data;
 *   ls.feedback   ReplacingMergeTree, monthly partitions;
 *   ls.runs_stats materialized view (AggregatingMergeTree inner table) over
 *                 runs, created first so the inserts feed it.
 *
 * Works on ClickHouse 18.16 (no repeat(), no DateTime64, no
 * randomPrintableASCII). Deterministic except for the UUIDs.
 */
import type { ClickHouseServer } from '../test/harness/clickhouse.ts'
import { prng } from './gen-clickhouse-like.ts'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { measure, shellQuote, type Measured } from './timed.ts'

const VOCABULARY = 3000

function words(): string[] {
  const rand = prng(42)
  const syllables = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'vi', 'so', 'de', 'an', 'qu', 'ex', 'or', 'il', 'pe', 'ster', 'tion', 'ing', 'al', 'com']
  return Array.from({ length: VOCABULARY }, () => Array.from({ length: 1 + Math.floor(rand() * 3) }, () => syllables[Math.floor(rand() * syllables.length)]).join(''))
}

const sqlArray = (items: string[]) => `[${items.map((w) => `'${w}'`).join(', ')}]`

/** `n` words (n from the expression `count`), drawn with a skew towards the first words; `salt` decorrelates columns. */
const text = (count: string, salt: number) =>
  `arrayStringConcat(arrayMap(i -> words[1 + toUInt32(pow(intHash64(number * 1031 + i * 7 + ${salt}) / 18446744073709551616., 2.6) * ${VOCABULARY - 1})], range(toUInt32(${count}))), ' ')`

/** DDL of the dataset (run in order). */
export const SCHEMA: readonly string[] = [
  'CREATE DATABASE IF NOT EXISTS ls',
  `CREATE TABLE ls.runs (
    id UUID, trace_id UUID, tenant_id String, session_id String, name String, run_type String,
    start_time DateTime, end_time DateTime, status String, inputs String, outputs String, extra String,
    error Nullable(String), tags Array(String), prompt_tokens UInt32, completion_tokens UInt32, total_tokens UInt32
  ) ENGINE = MergeTree PARTITION BY toDate(start_time) ORDER BY (tenant_id, session_id, start_time, id)`,
  `CREATE TABLE ls.feedback (
    id UUID, run_id UUID, key String, score Float64, comment String, created_at DateTime, modified_at DateTime
  ) ENGINE = ReplacingMergeTree(modified_at) PARTITION BY toYYYYMM(created_at) ORDER BY (run_id, key, id)`,
  `CREATE MATERIALIZED VIEW ls.runs_stats ENGINE = AggregatingMergeTree PARTITION BY d ORDER BY (d, tenant_id, session_id)
    AS SELECT toDate(start_time) AS d, tenant_id, session_id, countState() AS n, sumState(total_tokens) AS tokens FROM ls.runs GROUP BY d, tenant_id, session_id`,
]

/** Inserts `rows` runs into day `day` (0 = 2024-01-01), `offset` keeping numbers distinct between calls. */
export function insertRuns(day: number, rows: number, offset: number): string {
  const w = words()
  const rand = prng(7)
  const prompts = Array.from({ length: 8 }, () => Array.from({ length: 120 + Math.floor(rand() * 200) }, () => w[Math.floor(rand() ** 2 * w.length)]).join(' '))
  return `INSERT INTO ls.runs
WITH ${sqlArray(w)} AS words, ${sqlArray(prompts)} AS prompts
SELECT
  generateUUIDv4(), generateUUIDv4(),
  concat('tenant-', toString(intHash32(number) % 5)), concat('session-', toString(intHash32(number + 1) % 400)),
  ['ChatOpenAI', 'RunnableSequence', 'AgentExecutor', 'search', 'VectorStoreRetriever', 'StrOutputParser'][1 + number % 6],
  ['llm', 'chain', 'chain', 'tool', 'retriever', 'parser'][1 + number % 6],
  toDateTime('2024-01-01 00:00:00') + ${day} * 86400 + intHash32(number) % 86400 AS st, st + intHash32(number + 2) % 30 AS et,
  if(number % 50 = 0, 'error', 'success'),
  concat('{"messages":[{"role":"system","content":"', prompts[1 + intHash32(number + 3) % 8], '"},{"role":"user","content":"', ${text('10 + intHash32(number + 4) % 60', 1)}, '"}]}'),
  concat('{"generations":[{"text":"', ${text('20 + intHash32(number + 5) % 120', 2)}, '","generation_info":{"finish_reason":"stop"}}],"llm_output":{"token_usage":{"prompt_tokens":', toString(intHash32(number) % 4000), '}}}'),
  concat('{"metadata":{"ls_provider":"openai","ls_model_name":"', ['gpt-4o-mini', 'gpt-4o', 'claude-3-5-sonnet'][1 + number % 3], '","revision_id":"', hex(intHash64(number % 97)), '"},"runtime":{"sdk_version":"0.1.', toString(number % 40), '"}}'),
  if(number % 50 = 0, concat('Traceback: ', ${text('8', 3)}), NULL),
  arrayMap(i -> words[1 + (intHash32(number + i) % 50)], range(number % 4)),
  intHash32(number) % 4000, intHash32(number + 6) % 800, intHash32(number) % 4000 + intHash32(number + 6) % 800
FROM (SELECT number + ${offset} AS number FROM system.numbers LIMIT ${rows})`
}

/** Inserts `rows` feedback rows spread over `days` days. */
export function insertFeedback(rows: number, days: number): string {
  const w = words()
  return `INSERT INTO ls.feedback
WITH ${sqlArray(w.slice(0, 500))} AS words
SELECT generateUUIDv4(), generateUUIDv4(), ['correctness', 'helpfulness', 'user_score'][1 + number % 3], (intHash32(number) % 1000) / 1000,
  ${text('intHash32(number + 9) % 20', 4)},
  toDateTime('2024-01-01 00:00:00') + (intHash32(number) % ${days}) * 86400 + number % 86400 AS c, c + number % 600
FROM numbers(${rows})`
}

/** Creates the schema and loads `days` daily partitions of `perDay` runs (two inserts a day: several parts per partition, as in production) plus feedback. */
export async function loadDataset(query: (sql: string) => Promise<unknown>, days: number, perDay: number): Promise<void> {
  for (const sql of SCHEMA) await query(sql)
  for (let d = 0; d < days; d++) {
    await query(insertRuns(d, perDay / 2, d * perDay))
    await query(insertRuns(d, perDay / 2, d * perDay + perDay / 2))
  }
  await query(insertFeedback(perDay * 2, days))
}

/** What both ClickHouse benchmarks run against. */
export interface Bench {
  dir: string
  source: ClickHouseServer
  target: ClickHouseServer
  env: NodeJS.ProcessEnv
  /** Storage tables of database ls (names, unquoted). */
  tables: string[]
  /** Pids of both servers, whose CPU is counted with every measurement. */
  servers: number[]
}

/** A `curl` command line that sends `query` to a server in the URL (a GET: add a body, even `--data-binary ''`, for a statement that writes); credentials in a header. */
export function curl(ch: ClickHouseServer, query: string): string {
  const auth = Buffer.from(`${ch.user}:${ch.password}`).toString('base64')
  return `curl -sS --fail -H ${shellQuote(`Authorization: Basic ${auth}`)} ${shellQuote(`${ch.url}/?query=${encodeURIComponent(query)}`)}`
}

/** The tidemark CLI these benchmarks measure. */
export const BIN = new URL('../bin/tidemark', import.meta.url).pathname

/** `tidemark <argv> --repo <repo> --json`, timed, with the servers' CPU. */
export function tm(b: Bench, repo: string, argv: string[], env: NodeJS.ProcessEnv = b.env): Promise<Measured> {
  return measure([BIN, ...argv, '--repo', repo, '--json'], env, b.dir, b.servers)
}

/** A new empty repository `name` under the bench directory; its file URL. */
export async function freshRepo(b: Bench, name: string): Promise<string> {
  await rm(join(b.dir, name), { recursive: true, force: true })
  const url = pathToFileURL(join(b.dir, name)).href
  await tm(b, url, ['repo', 'init'])
  return url
}
