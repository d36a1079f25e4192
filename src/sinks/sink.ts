import type { Readable } from 'node:stream'
import { TidemarkError, type ErrorCode } from '../errors.ts'

/**
 * The Sink contract. A Sink is a flat key→bytes store (an S3 bucket prefix, a local
 * directory). Everything tidemark stores goes through this interface; retrying,
 * concurrency limits and fault injection are wrappers implementing it too.
 *
 * - Keys are `/`-separated relative paths of printable ASCII without `..` segments,
 *   leading `/` or empty segments. Adapters reject other keys with a permanent error.
 * - `put` is atomic: a reader sees either no object or the whole object, never a
 *   prefix of it. A `put` over an existing key replaces it atomically. A failed or
 *   aborted `put` leaves no object and no orphaned upload state behind.
 * - `get` of a missing key and `head` of a missing key reject with an error for which
 *   `isNotFound` is true. `get` with a range returns bytes `start..end` inclusive
 *   (`end` defaults to the last byte).
 * - `list` returns keys under a prefix in lexicographic order, one page at a time;
 *   following `next` until it is undefined yields every key exactly once.
 * - `delete` is idempotent: deleting a missing key succeeds.
 * - `copy` copies within the same store (server-side where the store can).
 * - Errors: `isNotFound(err)` is true only for a missing object; `isPermanent(err)`
 *   is true for errors a retry cannot fix (not found, bad credentials, missing bucket,
 *   invalid key, aborted). Everything else (network, 5xx, throttling) is transient and
 *   may be retried; every method is safe to retry.
 */
export interface Sink {
  /** A description for logs and errors: never contains credentials. */
  readonly description: string
  put(key: string, body: Readable | Buffer, opts?: PutOptions): Promise<PutResult>
  get(key: string, opts?: GetOptions): Promise<Readable>
  head(key: string, opts?: OpOptions): Promise<ObjectInfo>
  list(prefix: string, opts?: ListOptions): Promise<ListPage>
  delete(keys: readonly string[], opts?: OpOptions): Promise<void>
  copy(from: string, to: string, opts?: OpOptions): Promise<void>
  isNotFound(err: unknown): boolean
  isPermanent(err: unknown): boolean
  /** Releases sockets, file handles. Idempotent. */
  close(): Promise<void>
}

export interface OpOptions {
  signal?: AbortSignal
}
export interface PutOptions extends OpOptions {
  /** Known length, if any; the body may be a stream of unknown length. */
  contentLength?: number
  /**
   * Hex sha256 of the exact bytes of the body, when the caller already knows it (a
   * copy of an object whose manifest records it). A hint: an adapter may ignore it, or
   * use it to spare hashing the body again and to have the store verify the bytes
   * (the s3 sink sends it as the SigV4 payload hash). A body that does not match it
   * may be refused with a permanent error; then nothing is stored.
   */
  sha256?: string
}
export interface PutResult {
  size: number
}
export interface GetOptions extends OpOptions {
  /** Inclusive byte range. */
  range?: { start: number; end?: number }
}
export interface ObjectInfo {
  key: string
  size: number
  lastModified: Date
}
export interface ListOptions extends OpOptions {
  /** Opaque token from the previous page. */
  cursor?: string
  pageSize?: number
}
export interface ListPage {
  items: ObjectInfo[]
  /** Present when more keys follow. */
  next?: string
}

export type SinkErrorKind = 'not_found' | 'permanent' | 'transient'

/** The error every adapter throws, so wrappers can classify without knowing the adapter. */
export class SinkError extends TidemarkError {
  readonly kind: SinkErrorKind
  readonly key: string | undefined

  constructor(kind: SinkErrorKind, code: ErrorCode, message: string, opts: { key?: string; cause?: unknown } = {}) {
    super(code, message, { cause: opts.cause, details: opts.key === undefined ? undefined : { key: opts.key } })
    this.name = 'SinkError'
    this.kind = kind
    this.key = opts.key
  }
}

export function isNotFoundError(err: unknown): boolean {
  return err instanceof SinkError && err.kind === 'not_found'
}

export function isPermanentError(err: unknown): boolean {
  if (err instanceof SinkError) return err.kind !== 'transient'
  return err instanceof Error && err.name === 'AbortError'
}

/** Every key under `prefix`, following pages until the end. */
export async function* listAll(sink: Sink, prefix: string, opts: OpOptions = {}): AsyncGenerator<ObjectInfo> {
  let cursor: string | undefined
  do {
    const page = await sink.list(prefix, { ...opts, cursor })
    yield* page.items
    cursor = page.next
  } while (cursor !== undefined)
}

// A segment is printable ASCII except `/` (0x2f), so leading, trailing and doubled `/` are rejected.
const KEY_RE = /^[\x21-\x2e\x30-\x7e]+(\/[\x21-\x2e\x30-\x7e]+)*$/

/** Throws a permanent SinkError unless `key` satisfies the key rules of the contract. */
export function checkKey(key: string): void {
  if (!KEY_RE.test(key) || key.split('/').some((s) => s === '.' || s === '..')) {
    throw new SinkError('permanent', 'TM_ERR_SINK_IO', `invalid object key ${JSON.stringify(key)}`, { key })
  }
}
