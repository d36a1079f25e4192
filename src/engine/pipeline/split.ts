import { TidemarkError } from '../../errors.ts'

/** One stored chunk cut out of the stored stream, in a Buffer that owns its ArrayBuffer. */
export interface StoredUnit {
  bytes: Buffer
  /** Sealed records say whether they are the last chunk; bare zstd frames cannot. */
  final: boolean | undefined
}

/** Cuts a stored byte stream into per-chunk units; `next` returns undefined until a whole unit is buffered. */
export interface Splitter {
  push(piece: Buffer): void
  next(): StoredUnit | undefined
  /** Throws TM_ERR_INTEGRITY if the stream ended inside a unit or (sealed) without the final chunk. */
  finish(): void
  /** Units cut so far. */
  readonly count: number
}

/** The error for stored bytes that do not have the stored format's shape. */
export function corrupt(message: string, details?: Record<string, unknown>): TidemarkError {
  return new TidemarkError('TM_ERR_INTEGRITY', `stored object is corrupt or truncated: ${message}`, { details })
}
