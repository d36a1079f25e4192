/** Piscina worker: the CPU-heavy part of each chunk (zstd, AES-GCM), off the main thread. */
import { Piscina } from 'piscina'
import { compressFrame, decompressFrame, movable, release, type Movable } from './codec.ts'
import { frameContentSize } from './zstdframe.ts'
import { openRecord, sealRecord } from './seal.ts'
import type { DecodeReply, DecodeTask, EncodeReply, EncodeTask } from './tasks.ts'

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

/** Opens (when sealed) and decompresses one stored chunk; failures come back as a reply. */
export function decodeChunk(task: DecodeTask): DecodeReply {
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
    const raw = movable(decompressFrame(frame, size))
    if (raw.length !== size) throw new Error(`frame decompressed to ${raw.length} bytes, its header says ${size}`)
    return transfer({ ok: true, raw }, [raw.buffer])
  } catch (err) {
    return { ok: false, kind: 'corrupt', message: err instanceof Error ? err.message : String(err) }
  } finally {
    if (frame !== stored) release(frame)
    release(stored)
  }
}
