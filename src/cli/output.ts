/**
 * What the CLI prints. Results: one JSON document on stdout with --json, text
 * otherwise. Errors: on stderr, `TM_ERR_… message` plus indented details (or one
 * JSON document `{"error":{code,message,details}}` with --json), never a stack trace
 * unless TIDEMARK_DEBUG=1. Everything printed is passed through maskCredentials.
 */
import type { Writable } from 'node:stream'
import { maskCredentials } from '../config.ts'
import type { TidemarkError } from '../errors.ts'

/** Writes one line (or block), adding the final newline when missing. */
export function writeText(out: Writable, text: string): void {
  out.write(text.endsWith('\n') || text === '' ? text : `${text}\n`)
}

/** Prints a command's result: `data` as JSON with --json, else `text`. */
export function printResult(out: Writable, result: { data: unknown; text: string }, json: boolean): void {
  writeText(out, json ? JSON.stringify(result.data, null, 2) : result.text)
}

/** Prints an error on `err` (stderr) as text or, with --json, as one JSON document. */
export function printError(out: Writable, e: TidemarkError, json: boolean, debug: boolean): void {
  if (json) {
    writeText(out, maskCredentials(JSON.stringify({ error: e.toJSON() })))
  } else {
    const details = Object.entries(e.details ?? {})
      .filter(([, v]) => !saidIn(e.message, v))
      .map(([k, v]) => `  ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    writeText(out, maskCredentials([`${e.code} ${e.message}`, ...details].join('\n')))
  }
  if (debug) writeText(out, maskCredentials(stackOf(e)))
}

/** True when the message already says everything `v` would (no point printing it twice). */
function saidIn(message: string, v: unknown): boolean {
  if (typeof v === 'string') return message.includes(v)
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string' && message.includes(x))
}

function stackOf(e: unknown): string {
  const parts: string[] = []
  let cur: unknown = e
  for (let depth = 0; cur !== undefined && depth < 5; depth++) {
    parts.push(depth === 0 ? String((cur as Error).stack ?? cur) : `caused by: ${String((cur as Error).stack ?? cur)}`)
    cur = (cur as Error).cause
  }
  return parts.join('\n')
}
