/**
 * Instants with microsecond precision, as PostgreSQL keeps commit timestamps: a
 * bigint of microseconds since the Unix epoch (UTC). Recovery windows and targets are
 * computed in these, because recovery_target_time is compared with commit times to
 * the microsecond. Pure.
 */
import { TidemarkError } from '../../errors.ts'
import type { RecoveryTarget } from './recovery.ts'

/** Microseconds since 1970-01-01T00:00:00Z. */
export type Micros = bigint

const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})$/

function usage(msg: string): TidemarkError {
  return new TidemarkError('TM_ERR_USAGE', msg)
}

/** The instant of a Date (millisecond precision). */
export function microsOf(d: Date): Micros {
  return BigInt(d.getTime()) * 1000n
}

/** `2026-11-28T09:40:00.123456Z`: always UTC, always six fractional digits. */
export function formatMicros(us: Micros): string {
  const ms = us / 1000n - (us % 1000n < 0n ? 1n : 0n)
  const sub = ((us % 1000n) + 1000n) % 1000n
  const iso = new Date(Number(ms)).toISOString() // …SS.mmmZ
  return `${iso.slice(0, 23)}${String(sub).padStart(3, '0')}Z`
}

/**
 * Parses an ISO 8601 instant that states its offset: `2026-11-28T09:40:00Z`,
 * `2026-11-28 10:40:00.5+01:00`; up to six fractional digits. Anything else (no
 * offset, impossible dates, other layouts) throws TM_ERR_USAGE: a restore target is
 * never guessed.
 */
export function parseInstant(text: string): Micros {
  const m = ISO_RE.exec(text.trim())
  const what = `"${text}" is not a time with an offset; write it as ISO 8601, e.g. 2026-11-28T09:40:00Z or 2026-11-28T10:40:00.250+01:00`
  if (!m) throw usage(what)
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  const wall = Date.UTC(y, mo - 1, d, h, mi, s)
  const back = new Date(wall)
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) throw usage(`${what} (no such date or time)`)
  const zone = m[8] as string
  let offsetMin = 0
  if (zone !== 'Z') {
    const oh = Number(zone.slice(1, 3))
    const om = Number(zone.slice(4, 6))
    if (oh > 23 || om > 59) throw usage(`${what} (bad offset ${zone})`)
    offsetMin = (oh * 60 + om) * (zone[0] === '-' ? -1 : 1)
  }
  const frac = BigInt((m[7] ?? '').padEnd(6, '0'))
  return BigInt(wall - offsetMin * 60_000) * 1000n + frac
}

/** `latest`, or an instant (see parseInstant). */
export function parseTarget(text: string): 'latest' | Micros {
  return text.trim() === 'latest' ? 'latest' : parseInstant(text)
}

/** The recovery target for an instant (recovery.ts keeps milliseconds in a Date and the rest apart). */
export function recoveryTargetOf(us: Micros): Exclude<RecoveryTarget, 'latest'> {
  const ms = us / 1000n
  return { time: new Date(Number(ms)), microsecond: Number(us - ms * 1000n) }
}
