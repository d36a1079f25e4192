import { Readable } from 'node:stream'
import { asTidemarkError } from '../../errors.ts'
import { cutChunks, sharedRecycler, type Chunk } from './chunker.ts'
import { cutFileChunks, type ChunkReader } from './filechunks.ts'
import { DEFAULT_CHUNK_SIZE, DEFAULT_LEVEL, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, defaultMaxInFlight, intOption, sealOptions } from './limits.ts'
import { orderedMap } from './ordered.ts'
import { Outlet } from './outlet.ts'
import type { PipelinePool } from './pool.ts'
import { createStopper, destroyer, type Stopper } from './stop.ts'
import { StoredTally } from './tally.ts'
import type { SealParams } from './tasks.ts'

/** How a stored object is encoded; recorded in the manifest and chosen again at decode by whether a key is given. */
export type Codec = 'zstd' | 'zstd+aes256gcm'

/** Options of encode; only `pool` is required. */
export interface EncodeOptions {
  pool: PipelinePool
  /** Raw bytes per chunk (1 KiB to 64 MiB); default 4 MiB. */
  chunkSize?: number
  /** zstd level 1 to 19; default 3. */
  level?: number
  /** Chunks between being read and being handed to the consumer; default pool threads + 2. */
  maxInFlight?: number
  /** 32-byte AES-256 key: seals every chunk (codec `zstd+aes256gcm`). */
  key?: Uint8Array
  /** Required with `key`: bound into every chunk so it only opens in this object (e.g. its repository key). */
  objectId?: string
  signal?: AbortSignal
}

/** What the manifest records about one stored object. */
export interface EncodeResult {
  rawBytes: number
  storedBytes: number
  chunks: number
  /** Hex sha256 of the stored bytes. */
  sha256: string
  codec: Codec
  chunkSize: number
}

/** A running encode: read `stream` to its end, then await `done` for what to put in the manifest. */
export interface EncodeHandle {
  /** The stored bytes, in order. Destroying it stops the pipeline. */
  stream: Readable
  /** Resolves after the last stored byte was pushed; rejects with the error the stream failed with, after every worker task settled. */
  done: Promise<EncodeResult>
}

interface EncodeConfig {
  pool: PipelinePool
  chunkSize: number
  level: number
  maxInFlight: number
  seal: SealParams | undefined
}

function encodeConfig(opts: EncodeOptions): EncodeConfig {
  return {
    pool: opts.pool,
    chunkSize: intOption('chunkSize', opts.chunkSize ?? DEFAULT_CHUNK_SIZE, MIN_CHUNK_SIZE, MAX_CHUNK_SIZE),
    level: intOption('level', opts.level ?? DEFAULT_LEVEL, 1, 19),
    maxInFlight: intOption('maxInFlight', opts.maxInFlight ?? defaultMaxInFlight(opts.pool.threads), 1, 1024),
    seal: sealOptions(opts.key, opts.objectId),
  }
}

/**
 * A stream that can also copy its bytes straight into a caller's buffer (a ClickHouse bulk
 * response body, src/net/socket-body.ts): encode then fills its chunk buffers from it like from a
 * file, with no buffer per read. Resolves 0 at the end.
 */
export interface DirectReadable extends Readable {
  readInto(buffer: Uint8Array, offset: number, length: number): Promise<number>
}

function isDirect(s: Readable): s is DirectReadable {
  return typeof (s as Partial<DirectReadable>).readInto === 'function'
}

function directReader(s: DirectReadable): ChunkReader {
  return { read: async (buffer, offset, length) => ({ bytesRead: await s.readInto(buffer, offset, length) }) }
}

/** Raw bytes to encode: a stream of any length, or an open file (or a ChunkReader) read from offset 0 to its end. */
export type Source = Readable | ChunkReader

/**
 * Turns `source` (raw bytes of any length) into the stored form: one independent zstd frame per
 * chunk, each sealed with AES-256-GCM when a key is given (layout in seal.ts). A stream source
 * is owned from here on: read to its end or destroyed. A FileHandle (ChunkReader) stays the caller's to close
 * once `done` settles; it is the cheaper source (read straight into chunk buffers). Option errors
 * throw TM_ERR_USAGE synchronously; a source error, a worker failure or an abort destroys
 * `stream` with that error.
 */
export function encode(source: Source, opts: EncodeOptions): EncodeHandle {
  const config = encodeConfig(opts)
  const stopper = createStopper(source instanceof Readable ? destroyer(source) : () => {}, opts.signal)
  const outlet = new Outlet(stopper.signal, (err) => stopper.stop(err))
  const done = run(source, config, outlet, stopper)
  done.catch(() => {}) // a caller may watch only the stream; the rejection is still theirs to await
  return { stream: outlet.stream, done }
}

async function run(source: Source, config: EncodeConfig, outlet: Outlet, stopper: Stopper): Promise<EncodeResult> {
  const tally = new StoredTally()
  const buffers = sharedRecycler(config.pool, config.chunkSize, config.maxInFlight + 2)
  let rawBytes = 0
  let chunks = 0
  const work = async (chunk: Chunk) => {
    rawBytes += chunk.data.length
    chunks++
    const reply = await config.pool
      .encodeChunk({
        input: chunk.data.buffer,
        length: chunk.data.length,
        index: chunk.index,
        final: chunk.final,
        level: config.level,
        seal: config.seal,
      })
      .catch((err: unknown) => {
        throw asTidemarkError(err)
      })
    buffers.give(reply.input)
    return Buffer.from(reply.stored.buffer, 0, reply.stored.length)
  }
  const emit = async (stored: Buffer) => {
    tally.add(stored)
    await outlet.push(stored)
  }
  try {
    if (stopper.signal.aborted) throw stopper.signal.reason
    const cut =
      source instanceof Readable
        ? isDirect(source)
          ? cutFileChunks(directReader(source), config.chunkSize, buffers, stopper.signal)
          : cutChunks(source, config.chunkSize, buffers)
        : cutFileChunks(source, config.chunkSize, buffers, stopper.signal)
    await orderedMap(cut, work, emit, config.maxInFlight)
    outlet.end()
    const codec = config.seal ? 'zstd+aes256gcm' : 'zstd'
    return { rawBytes, storedBytes: tally.bytes, chunks, sha256: tally.digest(), codec, chunkSize: config.chunkSize }
  } catch (err) {
    const failure = stopper.failure(err)
    stopper.stop(failure)
    outlet.fail(failure)
    throw failure
  } finally {
    stopper.release()
  }
}
