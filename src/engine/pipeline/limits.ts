import { TidemarkError } from '../../errors.ts'

/** Default chunk size: big enough for zstd to find redundancy, small enough to keep memory flat. */
export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
/** zstd level 3 is zstd's own default: the best speed/ratio trade-off for trace data. */
export const DEFAULT_LEVEL = 3
/** Smallest chunk size accepted: below it per-chunk overhead dominates. */
export const MIN_CHUNK_SIZE = 1024
/** Also the most raw bytes one stored chunk may expand to: it caps what a corrupt header can make us allocate. */
export const MAX_CHUNK_SIZE = 64 * 1024 * 1024
/** Largest stored form of one chunk: zstd's worst-case expansion of MAX_CHUNK_SIZE plus record overhead, rounded up. */
export const MAX_STORED_CHUNK = MAX_CHUNK_SIZE + MAX_CHUNK_SIZE / 128 + 4096
/** AES-256 key length. */
export const KEY_BYTES = 32
const MAX_OBJECT_ID_BYTES = 1024

function usage(message: string): TidemarkError {
  return new TidemarkError('TM_ERR_USAGE', `pipeline option ${message}`)
}

/** Throws TM_ERR_USAGE unless `value` is an integer in [min, max]; returns it. */
export function intOption(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw usage(`${name} must be an integer from ${min} to ${max}, got ${value}`)
  return value
}

/**
 * Default bound on chunks in flight: one per thread being worked on, plus one finished and
 * waiting for its turn and one queued, so no thread idles between tasks. More only costs memory
 * (each is a chunk-sized buffer).
 */
export function defaultMaxInFlight(threads: number): number {
  return threads + 2
}

/**
 * Checks the encryption options: with a key, a 32-byte key and a non-empty object id are required
 * (the id is bound into every chunk so chunks cannot be moved between objects). Returns private copies.
 */
export function sealOptions(key: Uint8Array | undefined, objectId: string | undefined): { key: Uint8Array; objectId: string } | undefined {
  if (key === undefined) return undefined
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) throw usage(`key must be ${KEY_BYTES} bytes`)
  if (typeof objectId !== 'string' || objectId.length === 0 || Buffer.byteLength(objectId) > MAX_OBJECT_ID_BYTES) {
    throw usage(`objectId must be a non-empty string of at most ${MAX_OBJECT_ID_BYTES} bytes when a key is given`)
  }
  // A private copy that owns its memory: a Buffer from Node's pool would drag the whole pool slab into every task message.
  return { key: Uint8Array.from(key), objectId }
}
