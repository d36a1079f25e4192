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
import type { DecodeReply, SealParams } from './tasks.ts'
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
  if (reply.kind === 'decrypt') {
    return fail('TM_ERR_DECRYPT', `wrong key or corrupted chunk ${index} (or chunks reordered, dropped or taken from another object)`, index)
  }
  return fail('TM_ERR_INTEGRITY', `stored object is corrupt: chunk ${index} does not decompress (${reply.message})`, index)
}

function fail(code: 'TM_ERR_DECRYPT' | 'TM_ERR_INTEGRITY', message: string, chunk: number): never {
  throw new TidemarkError(code, message, { details: { chunk } })
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
