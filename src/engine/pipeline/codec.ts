import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib'

/** A view over the first `length` bytes of a buffer that is moved, not copied, between threads. */
export interface Movable {
  buffer: ArrayBuffer
  length: number
}

/** Upper bound of a zstd frame for `n` input bytes (ZSTD_COMPRESSBOUND, plus frame header room). */
function compressBound(n: number): number {
  return n + (n >>> 8) + (n < 128 * 1024 ? (128 * 1024 - n) >>> 11 : 0) + 64
}

/**
 * One chunk as one complete zstd frame. The frame carries its content size (zstd records it
 * when the whole input is given at once) and an XXH64 content checksum, so even an unencrypted
 * chunk is verified on its own when decompressed, by us or by the zstd CLI. The output buffer
 * is sized for the worst case so zlib allocates it once and never concatenates pieces.
 */
export function compressFrame(raw: Uint8Array, level: number): Buffer {
  return zstdCompressSync(raw, {
    chunkSize: compressBound(raw.length),
    params: { [constants.ZSTD_c_compressionLevel]: level, [constants.ZSTD_c_checksumFlag]: 1 },
  })
}

/**
 * Decompresses one zstd frame whose content size `rawSize` is known (from its header); throws on
 * a corrupt frame or a checksum mismatch. One spare byte of output room lets zlib finish without
 * allocating another output buffer.
 */
export function decompressFrame(frame: Uint8Array, rawSize: number): Buffer {
  return zstdDecompressSync(frame, { chunkSize: Math.max(rawSize + 1, 64), maxOutputLength: Math.max(rawSize, 1) })
}

/** True if `bytes` is the start of a buffer no other Buffer shares: small Buffers are slices of Node's pool slab. */
function exclusive(bytes: Uint8Array): bytes is Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.buffer.byteLength > Buffer.poolSize
}

/**
 * `bytes` ready to be transferred. Its own buffer moves when it is exclusive and mostly used;
 * otherwise the bytes are copied into an exact-size buffer and the original, if exclusive, is
 * freed. A pool slab must never move (it would vanish from under every other small Buffer of the
 * thread), and a mostly empty buffer should not: V8 counts its full size as external memory on
 * the receiving thread, which makes that thread collect garbage more often.
 */
export function movable(bytes: Uint8Array): Movable {
  if (exclusive(bytes) && bytes.buffer.byteLength - bytes.length <= bytes.length >>> 3) return { buffer: bytes.buffer, length: bytes.length }
  const length = bytes.length
  const buffer = new ArrayBuffer(length)
  new Uint8Array(buffer).set(bytes)
  release(bytes) // `bytes` reads as empty from here on
  return { buffer, length }
}

/**
 * Frees an exclusive buffer now instead of at the next GC: V8 lets dead external memory pile up
 * to tens of MiB per thread before collecting it, which is most of a pipeline's resident memory.
 * Only for buffers nothing else references.
 */
export function release(bytes: Uint8Array): void {
  if (exclusive(bytes) && !bytes.buffer.detached) bytes.buffer.transfer(0)
}
