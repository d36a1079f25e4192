/** Shared fixtures for the pipeline tests. */
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { decode, encode, type DecodeOptions, type EncodeOptions, type EncodeResult } from '../../src/engine/pipeline/index.ts'
import { FrameSplitter } from '../../src/engine/pipeline/frames.ts'

export const KIB = 1024

export async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const part of stream) parts.push(part as Buffer)
  return Buffer.concat(parts)
}

/** Everything a stream emits before it fails, and the error (undefined if it ended). */
export async function collectUntilError(stream: Readable): Promise<{ bytes: Buffer; error: (Error & { code?: string }) | undefined }> {
  const parts: Buffer[] = []
  try {
    for await (const part of stream) parts.push(part as Buffer)
    return { bytes: Buffer.concat(parts), error: undefined }
  } catch (err) {
    return { bytes: Buffer.concat(parts), error: err as Error }
  }
}

/** `bytes` as a byte-mode stream of pieces of uneven sizes, so chunk boundaries fall inside pieces. */
export function piecewise(bytes: Buffer, sizes = [1000, 70_000, 13, 65_536]): Readable {
  const pieces: Buffer[] = []
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = sizes[i % sizes.length]!
    pieces.push(bytes.subarray(at, at + n))
    at += n
  }
  return Readable.from(pieces, { objectMode: false })
}

export async function encodeAll(raw: Buffer, opts: EncodeOptions): Promise<{ stored: Buffer; result: EncodeResult }> {
  const { stream, done } = encode(piecewise(raw), opts)
  const stored = await collect(stream)
  return { stored, result: await done }
}

export function decodeBytes(stored: Buffer, opts: DecodeOptions): Readable {
  return decode(piecewise(stored, [777, 100_000]), opts)
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** Deterministic JSON-ish lines: compresses several times over, like trace payloads. */
export function compressible(n: number): Buffer {
  const lines: string[] = []
  let size = 0
  for (let i = 0; size < n; i++) {
    const line = `{"id":"run-${i}","status":"${i % 3 ? 'success' : 'error'}","tokens":${(i * 7919) % 1000},"name":"chain ${i % 17}"}\n`
    lines.push(line)
    size += line.length
  }
  return Buffer.from(lines.join('')).subarray(0, n)
}

/** A sealed object cut into its records (u32 big-endian length prefix, see seal.ts). */
export function records(stored: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let at = 0; at < stored.length; ) {
    const end = at + 4 + stored.readUInt32BE(at)
    out.push(stored.subarray(at, end))
    at = end
  }
  return out
}

/** An unencrypted object cut into its zstd frames. */
export function frames(stored: Buffer): Buffer[] {
  const splitter = new FrameSplitter()
  splitter.push(stored)
  const out: Buffer[] = []
  for (let unit = splitter.next(); unit; unit = splitter.next()) out.push(unit.bytes)
  splitter.finish()
  return out
}
