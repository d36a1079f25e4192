import type { Readable } from 'node:stream'
import { TidemarkError, asTidemarkError } from '../../errors.ts'
import { FrameSplitter } from './frames.ts'
import { MAX_CHUNK_SIZE, defaultMaxInFlight, intOption, sealOptions } from './limits.ts'
import { orderedMap } from './ordered.ts'
import { Outlet } from './outlet.ts'
import type { PipelinePool } from './pool.ts'
import { RecordSplitter } from './records.ts'
import type { Splitter, StoredUnit } from './split.ts'
import { createStopper, destroyer, type Stopper } from './stop.ts'
import { StoredTally } from './tally.ts'
import type { DecodeReply, SealParams, UnpackReply } from './tasks.ts'
import { finishUnpack, newUnpackState } from '../clickhouse/parts-tar.ts'
import { rawMismatch, storedMismatch, type Expected } from './verify.ts'

/** Options of decode; `pool` is required, the rest must match what encode was given. */
export interface DecodeOptions {
  pool: PipelinePool
  /** The key the object was encoded with; its absence means codec `zstd`. */
  key?: Uint8Array
  /** Required with `key`: the objectId given to encode. */
  objectId?: string
  /** From the manifest: checked once the stored stream ends. */
  expected?: Expected
  /** Chunks between being read and being handed to the consumer; default pool threads + 2. */
  maxInFlight?: number
  signal?: AbortSignal
}

interface DecodeConfig {
  pool: PipelinePool
  maxInFlight: number
  seal: SealParams | undefined
  expected: Expected
}

/** A unit to decode, or the integrity failure found at that position in the stream. */
type Step = { unit: StoredUnit; index: number } | { failure: Error }

/**
 * Turns a stored object back into its raw bytes, in order. Sealed chunks are authenticated
 * before any of their bytes are emitted; the sha256, size and chunk count in `expected` are
 * checked when the stored stream ends, so the stream fails instead of ending on a mismatch
 * (bytes before the bad position have been emitted by then: consumers must treat an error
 * as "discard everything"). Errors: TM_ERR_DECRYPT "wrong key or corrupted chunk N",
 * TM_ERR_INTEGRITY naming what mismatched, TM_ERR_ABORTED, or the stored stream's own error.
 * Takes ownership of `stored`: it is read to its end or destroyed.
 */
export function decode(stored: Readable, opts: DecodeOptions): Readable {
  const config: DecodeConfig = {
    pool: opts.pool,
    maxInFlight: intOption('maxInFlight', opts.maxInFlight ?? defaultMaxInFlight(opts.pool.threads), 1, 1024),
    seal: sealOptions(opts.key, opts.objectId),
    expected: opts.expected ?? {},
  }
  const stopper = createStopper(destroyer(stored), opts.signal)
  const outlet = new Outlet(stopper.signal, (err) => stopper.stop(err))
  run(stored, config, outlet, stopper).catch(() => {}) // reported through the stream
  return outlet.stream
}

/** Cuts the stored stream into units; mismatches become failure steps so they surface in stream order. */
async function* steps(stored: Readable, splitter: Splitter, expected: Expected): AsyncGenerator<Step> {
  const tally = new StoredTally()
  try {
    for await (const piece of stored) {
      const bytes = piece instanceof Uint8Array ? Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength) : Buffer.from(String(piece))
      tally.add(bytes)
      splitter.push(bytes)
      for (let unit = splitter.next(); unit; unit = splitter.next()) yield { unit, index: splitter.count - 1 }
    }
    const mismatch = storedMismatch(expected, { sha256: tally.digest(), storedBytes: tally.bytes, chunks: splitter.count })
    if (mismatch) throw mismatch
    splitter.finish()
  } catch (err) {
    if (!(err instanceof TidemarkError && err.code === 'TM_ERR_INTEGRITY')) throw err
    yield { failure: err }
  }
}

function replyBytes(reply: DecodeReply, index: number): Buffer {
  if (reply.ok) return Buffer.from(reply.raw.buffer, 0, reply.raw.length)
  throw decodeFailure(reply.kind, reply.message, index)
}

/** The error of a chunk a worker could not open or decompress. */
function decodeFailure(kind: 'decrypt' | 'corrupt', message: string, chunk: number): TidemarkError {
  if (kind === 'decrypt') {
    return new TidemarkError('TM_ERR_DECRYPT', `wrong key or corrupted chunk ${chunk} (or chunks reordered, dropped or taken from another object)`, { details: { chunk } })
  }
  return new TidemarkError('TM_ERR_INTEGRITY', `stored object is corrupt: chunk ${chunk} does not decompress (${message})`, { details: { chunk } })
}

async function run(stored: Readable, config: DecodeConfig, outlet: Outlet, stopper: Stopper): Promise<void> {
  const splitter = config.seal ? new RecordSplitter() : new FrameSplitter()
  let rawBytes = 0
  const work = async (step: Step) => {
    if ('failure' in step) throw step.failure
    const task = { stored: step.unit.bytes.buffer as ArrayBuffer, index: step.index, maxRaw: MAX_CHUNK_SIZE, seal: config.seal }
    const reply = await config.pool.decodeChunk(task).catch((err: unknown) => {
      throw asTidemarkError(err)
    })
    return replyBytes(reply, step.index)
  }
  const emit = async (raw: Buffer) => {
    rawBytes += raw.length
    await outlet.push(raw)
  }
  try {
    if (stopper.signal.aborted) throw stopper.signal.reason
    await orderedMap(steps(stored, splitter, config.expected), work, emit, config.maxInFlight)
    const mismatch = rawMismatch(config.expected, rawBytes)
    if (mismatch) throw mismatch
    outlet.end()
  } catch (err) {
    const failure = stopper.failure(err)
    stopper.stop(failure)
    outlet.fail(failure)
    throw failure
  } finally {
    stopper.release()
  }
}

/** The error of a failed unpackChunk reply: the decode failures as in decode(), a file system error as such (its errno code kept). */
function unpackFailure(reply: Exclude<UnpackReply, { ok: true }>, index: number): Error {
  if (reply.kind === 'fs') return Object.assign(new Error(reply.message), { code: reply.code })
  if (reply.kind === 'part') return new TidemarkError('TM_ERR_REPO_CORRUPT', reply.message)
  return decodeFailure(reply.kind, reply.message, index)
}

/**
 * Decodes a stored object that holds a packed part directory (clickhouse/parts-tar.ts)
 * straight into `dir`: each chunk is decoded and its files written on a worker thread
 * (pool.unpackChunk), one chunk at a time in order, the next one read and cut from the
 * stored stream meanwhile. Checks what decode() checks (sha256, sizes, chunk count,
 * authenticity) and that the part stream is complete; rejects like decode(), with
 * TM_ERR_REPO_CORRUPT for a malformed part stream, or with the file system's error. After a
 * rejection `dir` may hold some files (the caller removes it); no chunk is being written
 * any more. Takes ownership of `stored`.
 */
export async function unpackStored(stored: Readable, dir: string, opts: Omit<DecodeOptions, 'maxInFlight'>): Promise<string[]> {
  const seal = sealOptions(opts.key, opts.objectId)
  const expected = opts.expected ?? {}
  const splitter = seal ? new RecordSplitter() : new FrameSplitter()
  const it = steps(stored, splitter, expected)
  let state = newUnpackState()
  let rawBytes = 0
  try {
    let next = it.next()
    for (;;) {
      opts.signal?.throwIfAborted()
      const r = await next
      if (r.done) break
      const step = r.value
      if ('failure' in step) throw step.failure
      // Read and cut the next chunk while a worker writes this one.
      next = it.next()
      next.catch(() => undefined)
      const reply = await opts.pool.unpackChunk({ stored: step.unit.bytes.buffer as ArrayBuffer, index: step.index, maxRaw: MAX_CHUNK_SIZE, seal, dir, state }).catch((err: unknown) => {
        throw asTidemarkError(err)
      })
      if (!reply.ok) throw unpackFailure(reply, step.index)
      state = reply.state
      rawBytes += reply.rawBytes
    }
    const mismatch = rawMismatch(expected, rawBytes)
    if (mismatch) throw mismatch
    return finishUnpack(state)
  } catch (err) {
    throw opts.signal?.aborted ? asTidemarkError(opts.signal.reason) : err
  } finally {
    stored.destroy()
    await it.return(undefined).catch(() => undefined)
  }
}
