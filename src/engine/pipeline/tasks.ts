/** Messages between the pipeline and its workers. ArrayBuffers in them are transferred, not copied. */
import type { UnpackState } from '../clickhouse/parts-tar.ts'
import type { Movable } from './codec.ts'

/** Encryption parameters of one object, copied into each task. */
export interface SealParams {
  key: Uint8Array
  objectId: string
}

/** One chunk to compress (and seal). */
export interface EncodeTask {
  /** Chunk-sized buffer; the chunk is its first `length` bytes. Handed back in the reply for reuse. */
  input: ArrayBuffer
  length: number
  index: number
  final: boolean
  level: number
  seal: SealParams | undefined
}

/** The stored form of one chunk, and its input buffer handed back for reuse. */
export interface EncodeReply {
  /** The stored form: a zstd frame, or a sealed record holding one. */
  stored: Movable
  input: ArrayBuffer
}

/** One stored chunk to open (if sealed) and decompress. */
export interface DecodeTask {
  /** Exactly one stored unit (frame or record); freed by the worker. */
  stored: ArrayBuffer
  index: number
  /** Decompressed chunks larger than this are refused as corrupt. */
  maxRaw: number
  seal: SealParams | undefined
}

/** Failures are replies, not exceptions: an error's class and fields do not survive the thread boundary. */
export type DecodeReply = { ok: true; raw: Movable } | { ok: false; kind: 'decrypt' | 'corrupt'; message: string }

/** One stored chunk of a packed part directory (parts-tar.ts) to decode and write into `dir`. */
export interface UnpackTask extends DecodeTask {
  dir: string
  /** Where the previous chunk left the writing; the reply carries it on. */
  state: UnpackState
}

/** The state after the chunk, or why it failed: as DecodeReply, a malformed part stream, or a file system error (with its errno code). */
export type UnpackReply =
  | { ok: true; state: UnpackState; rawBytes: number }
  | { ok: false; kind: 'decrypt' | 'corrupt' | 'part'; message: string }
  | { ok: false; kind: 'fs'; message: string; code: string | undefined }
