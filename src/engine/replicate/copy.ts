/**
 * Copying one object between repositories: streamed (source get piped into target
 * put, so memory stays flat whatever the size), counted and hashed on the way, and
 * refused before it is committed when size or sha256 differ from what the manifest
 * records. A refused or failed put leaves no object (the Sink contract), and the key
 * is deleted at the target anyway in case a store committed it regardless.
 */
import { createHash, type Hash } from 'node:crypto'
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import { TidemarkError, isTidemarkError } from '../../errors.ts'
import { DirectBody, hasReadInto, type DirectSource } from '../../net/direct.ts'
import { retryCall, type RetryOptions } from '../../sinks/retry.ts'
import { SinkError, type Sink } from '../../sinks/sink.ts'
import type { ServerCopier } from './same-store.ts'

/** What must arrive: the stored size and, when known, the sha256 of the stored bytes. */
export interface Expect {
  key: string
  size: number
  sha256?: string | undefined
}

/** Counts and hashes the bytes that arrive, and names what differs from `want`. */
class Tally {
  readonly want: Expect
  readonly hash: Hash = createHash('sha256')
  bytes = 0

  constructor(want: Expect) {
    this.want = want
  }

  /** Counts and hashes one read; the error when the object grew past its size. */
  add(bytes: Uint8Array): TidemarkError | undefined {
    this.bytes += bytes.length
    if (this.bytes > this.want.size) return mismatch(this.want, `more than ${this.want.size} bytes`)
    this.hash.update(bytes)
    return undefined
  }

  /** At the end: the error when size or sha256 differ. */
  end(): TidemarkError | undefined {
    if (this.bytes !== this.want.size) return mismatch(this.want, `${this.bytes} bytes instead of ${this.want.size}`)
    const sha = this.hash.digest('hex')
    if (this.want.sha256 !== undefined && sha !== this.want.sha256.toLowerCase()) return mismatch(this.want, `sha256 ${sha} instead of ${this.want.sha256}`)
    return undefined
  }
}

/** Counts and hashes bytes; fails the stream (so the put is not committed) on any mismatch with `want`. */
class Check extends Transform {
  readonly tally: Tally

  constructor(want: Expect) {
    super()
    this.tally = new Tally(want)
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const err = this.tally.add(chunk)
    cb(err, err ? undefined : chunk)
  }

  override _flush(cb: TransformCallback): void {
    cb(this.tally.end())
  }
}

/**
 * The same checks for a source read direct (src/net/direct.ts): each read is counted and
 * hashed in the buffer it landed in, and the end of the source is where size and sha256
 * are compared, before the put that reads this body sends its last bytes.
 */
class DirectCheck extends DirectBody {
  readonly tally: Tally
  readonly src: Readable & DirectSource

  constructor(src: Readable & DirectSource, want: Expect) {
    super()
    this.src = src
    this.tally = new Tally(want)
  }

  protected async pull(buffer: Uint8Array, offset: number, length: number): Promise<number> {
    const n = await this.src.readInto(buffer, offset, length)
    const err = n === 0 ? this.tally.end() : this.tally.add(buffer.subarray(offset, offset + n))
    if (err) throw err
    return n
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    // Releases the source's connection (and its concurrency slot) whether read to its end or not.
    this.src.destroy()
    cb(err)
  }
}

function mismatch(want: Expect, what: string): TidemarkError {
  return new TidemarkError('TM_ERR_INTEGRITY', `object ${want.key}: the primary delivered ${what}; the primary's copy is damaged (run \`tidemark verify --read\` on it) or was altered in transit`, {
    details: { key: want.key },
  })
}

/** Retry only what another attempt can fix: not integrity failures, not permanent sink errors. */
function permanent(target: Sink): (err: unknown) => boolean {
  return (err) => isTidemarkError(err, 'TM_ERR_INTEGRITY') || (err instanceof SinkError ? err.kind !== 'transient' : target.isPermanent(err))
}

async function deleteQuietly(sink: Sink, key: string): Promise<void> {
  await sink.delete([key]).catch(() => undefined)
}

/** Waits (ms) before each new look for a refused object at the target. */
const RECHECKS_MS = [50, 100, 200]

/**
 * Removes `key` at the target after a refused or failed put. A store may still commit a put
 * the client gave up on once the bytes its length announced had arrived, moments after the
 * client's delete (s3rver did: test/replicate/copy.test.ts once found a refused object at
 * the target in a fresh-clone CI run): the key is looked for again a few times and deleted
 * again where it reappeared.
 */
async function removeRefused(sink: Sink, key: string): Promise<void> {
  await deleteQuietly(sink, key)
  for (const ms of RECHECKS_MS) {
    await delay(ms)
    if (await sink.head(key).then(() => true, () => false)) await deleteQuietly(sink, key)
  }
}

/**
 * Streams `want.key` from `from` to `to`, checked on arrival; retries transient
 * failures from scratch (the source is read again). Resolves with the bytes stored.
 * TM_ERR_INTEGRITY (naming the key) when the bytes differ from `want`.
 */
export async function copyStreamed(from: Sink, to: Sink, want: Expect, opts: { signal?: AbortSignal | undefined; retry?: Partial<RetryOptions> | undefined } = {}): Promise<number> {
  const attempt = async (): Promise<number> => {
    const src = await from.get(want.key, { signal: opts.signal })
    const body: Readable = hasReadInto(src) ? new DirectCheck(src, want) : pipeline(src, new Check(want), () => undefined)
    const put = await to.put(want.key, body, { contentLength: want.size, sha256: want.sha256, signal: opts.signal })
    return put.size
  }
  try {
    return await retryCall(attempt, permanent(to), opts.retry ?? {}, { op: 'put', key: want.key, signal: opts.signal })
  } catch (err) {
    await removeRefused(to, want.key)
    throw err
  }
}

/** Copies with the store's own copy, then checks the size by HEAD (sha256 would need a full read). */
export async function copyServerSide(copier: ServerCopier, to: Sink, want: Expect, opts: { signal?: AbortSignal | undefined } = {}): Promise<number> {
  await copier.copy(want.key, opts)
  const got = await to.head(want.key, opts)
  if (got.size !== want.size) {
    await deleteQuietly(to, want.key)
    throw new TidemarkError('TM_ERR_INTEGRITY', `object ${want.key}: the server-side copy has ${got.size} bytes instead of ${want.size}`, { details: { key: want.key } })
  }
  return got.size
}
