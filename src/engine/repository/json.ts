import type { Sink } from '../../sinks/sink.ts'
import { TidemarkError } from '../../errors.ts'

/** Reads and parses a small JSON object; a parse failure is TM_ERR_REPO_CORRUPT naming the key. */
export async function readJson<T>(sink: Sink, key: string): Promise<T> {
  const body = await sink.get(key)
  const chunks: Buffer[] = []
  for await (const c of body) chunks.push(c as Buffer)
  const text = Buffer.concat(chunks).toString('utf8')
  try {
    return JSON.parse(text) as T
  } catch (err) {
    throw new TidemarkError('TM_ERR_REPO_CORRUPT', `object ${key} is not valid JSON: ${(err as Error).message}`, { cause: err })
  }
}
