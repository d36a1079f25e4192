import { TidemarkError } from '../../errors.ts'

/** What the manifest says about a stored object; every field given is checked. */
export interface Expected {
  sha256?: string
  storedBytes?: number
  rawBytes?: number
  chunks?: number
}

/** What was read: the same fields as Expected, measured. */
export interface Actual {
  sha256: string
  storedBytes: number
  chunks: number
}

/** The first mismatch between the stored stream as read and what was expected, as TM_ERR_INTEGRITY; undefined if none. */
export function storedMismatch(expected: Expected, actual: Actual): TidemarkError | undefined {
  const checks: [string, string | number | undefined, string | number][] = [
    ['stored size (bytes)', expected.storedBytes, actual.storedBytes],
    ['chunk count', expected.chunks, actual.chunks],
    ['sha256', expected.sha256?.toLowerCase(), actual.sha256],
  ]
  for (const [what, want, got] of checks) {
    if (want !== undefined && want !== got) {
      return new TidemarkError('TM_ERR_INTEGRITY', `stored object ${what} mismatch: expected ${want}, read ${got}; the object was altered or truncated in storage`, {
        details: { what, expected: want, actual: got },
      })
    }
  }
  return undefined
}

/** TM_ERR_INTEGRITY when the decoded size differs from the expected raw size; undefined otherwise. */
export function rawMismatch(expected: Expected, rawBytes: number): TidemarkError | undefined {
  if (expected.rawBytes === undefined || expected.rawBytes === rawBytes) return undefined
  return new TidemarkError('TM_ERR_INTEGRITY', `decoded size mismatch: expected ${expected.rawBytes} bytes, decoded ${rawBytes}`, {
    details: { what: 'raw size (bytes)', expected: expected.rawBytes, actual: rawBytes },
  })
}
