/**
 * Piscina worker: the CPU-heavy part of each chunk (zstd, AES-GCM), off the main thread;
 * for a parts restore also the writing of the decoded part files (unpackChunk).
 */
import { Piscina } from 'piscina'
import { compressFrame, decompressFrame, movable, release, type Movable } from './codec.ts'
import { frameContentSize } from './zstdframe.ts'
import { openRecord, sealRecord } from './seal.ts'
import { isTidemarkError } from '../../errors.ts'
import { unpackPiece } from '../clickhouse/parts-tar.ts'
import type { DecodeReply, DecodeTask, EncodeReply, EncodeTask, UnpackReply, UnpackTask } from './tasks.ts'

/** Wraps a reply so piscina transfers the listed buffers instead of copying them. */
function transfer<T extends object>(value: T, buffers: ArrayBuffer[]): T {
  const moved = { [Piscina.transferableSymbol]: buffers, [Piscina.valueSymbol]: value }
  return Piscina.move(moved as unknown as Parameters<typeof Piscina.move>[0]) as unknown as T
}

/** Compresses one chunk into one zstd frame and, with seal params, seals it into a record. */
export function encodeChunk(task: EncodeTask): EncodeReply {
  const frame = compressFrame(new Uint8Array(task.input, 0, task.length), task.level)
  let stored: Movable
  if (task.seal) {
    stored = movable(sealRecord(frame, task.seal.key, task.seal.objectId, task.index, task.final))
    release(frame)
  } else {
    stored = movable(frame)
  }
  const reply = { stored, input: task.input }
  return transfer(reply, [reply.stored.buffer, reply.input])
}

type Decoded = { ok: true; raw: Buffer } | { ok: false; kind: 'decrypt' | 'corrupt'; message: string }

/** Opens (when sealed) and decompresses one stored chunk, freeing it; failures come back as values. */
function decodeStored(task: DecodeTask): Decoded {
  const stored = new Uint8Array(task.stored)
  let frame: Uint8Array = stored
  if (task.seal) {
    try {
      frame = openRecord(stored, task.seal.key, task.seal.objectId, task.index)
    } catch (err) {
      return { ok: false, kind: 'decrypt', message: err instanceof Error ? err.message : String(err) }
    }
  }
  try {
    const size = frameContentSize(frame)
    if (size === undefined || size > task.maxRaw) throw new Error(`frame content size ${size ?? 'missing'} (at most ${task.maxRaw} expected)`)
    const raw = decompressFrame(frame, size)
    if (raw.length !== size) throw new Error(`frame decompressed to ${raw.length} bytes, its header says ${size}`)
    return { ok: true, raw }
  } catch (err) {
    return { ok: false, kind: 'corrupt', message: err instanceof Error ? err.message : String(err) }
  } finally {
    if (frame !== stored) release(frame)
    release(stored)
  }
}

/** Opens (when sealed) and decompresses one stored chunk; failures come back as a reply. */
export function decodeChunk(task: DecodeTask): DecodeReply {
  const decoded = decodeStored(task)
  if (!decoded.ok) return decoded
  const raw = movable(decoded.raw)
  return transfer({ ok: true, raw }, [raw.buffer])
}

/**
 * Decodes one stored chunk of a packed part directory and writes it into `task.dir`, from
 * where the previous chunk's task left off (parts-tar.ts, unpackPiece); the decoded bytes
 * never leave this thread. Failures come back as a reply: a malformed part stream or a
 * file system error with its code.
 */
export function unpackChunk(task: UnpackTask): UnpackReply {
  const decoded = decodeStored(task)
  if (!decoded.ok) return decoded
  try {
    unpackPiece(task.dir, task.state, decoded.raw)
    return { ok: true, state: task.state, rawBytes: decoded.raw.length }
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (isTidemarkError(err)) return { ok: false, kind: 'part', message: err.message }
    return { ok: false, kind: 'fs', message: e.message, code: e.code }
  } finally {
    release(decoded.raw)
  }
}
