/**
 * Times as the API and the CLI accept them: ISO 8601 with an explicit offset (`Z` or
 * `±hh:mm`), or `latest` where allowed. A time without an offset is refused, never
 * guessed: a restore target read in the wrong zone is hours off.
 */
import { TidemarkError } from '../../errors.ts'
import { parseInstant } from '../postgres/instant.ts'

/** The accepted format, for error messages and the API schema. */
export const TIME_FORMAT = 'ISO 8601 with an offset, e.g. 2026-11-28T09:40:00Z or 2026-11-28T10:40:00+01:00'

/** Parses `text` as a time with an offset; TM_ERR_USAGE naming `field` and the accepted format otherwise. */
export function parseTime(text: string, field: string): Date {
  try {
    return new Date(Number(parseInstant(text) / 1000n))
  } catch {
    throw new TidemarkError('TM_ERR_USAGE', `${field}: "${text}" is not a time; expected ${TIME_FORMAT}`, { details: { field, accepted: TIME_FORMAT } })
  }
}

/** `latest` or a time (see parseTime). */
export function parseTimeOrLatest(text: string, field: string): 'latest' | Date {
  return text.trim() === 'latest' ? 'latest' : parseTime(text, field)
}

/** TM_ERR_USAGE when both are given and `to` is before `from`. */
export function checkRange(from: Date | undefined, to: Date | undefined): void {
  if (from && to && to.getTime() < from.getTime()) {
    throw new TidemarkError('TM_ERR_USAGE', `to (${to.toISOString()}) is before from (${from.toISOString()})`, { details: { from: from.toISOString(), to: to.toISOString() } })
  }
}
