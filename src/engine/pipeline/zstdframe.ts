/** Zstandard frame header fields (RFC 8878 section 3.1.1): only what the pipeline needs. */

/** The 4 bytes every zstd frame starts with, read little-endian. */
export const ZSTD_MAGIC = 0xfd2fb528
/** Largest block: a corrupt header cannot claim more. */
export const MAX_BLOCK = 128 * 1024
export const BLOCK_RLE = 1
export const BLOCK_RESERVED = 3
const DICT_ID_BYTES = [0, 1, 2, 4] as const
const CONTENT_SIZE_BYTES = [0, 2, 4, 8] as const

function contentSizeBytes(descriptor: number): number {
  const sizeFlag = descriptor >> 6
  return sizeFlag === 0 ? (descriptor >> 5) & 1 : CONTENT_SIZE_BYTES[sizeFlag]!
}

/** Size of a frame header (magic included) from its descriptor byte, the fifth byte of the frame. */
export function headerBytes(descriptor: number): number {
  const singleSegment = (descriptor >> 5) & 1
  return 4 + 1 + (singleSegment ? 0 : 1) + DICT_ID_BYTES[descriptor & 3]! + contentSizeBytes(descriptor)
}

/** Whether frames with this descriptor end with a 4-byte content checksum. */
export function hasChecksum(descriptor: number): boolean {
  return ((descriptor >> 2) & 1) === 1
}

/**
 * The content size a frame header declares, or undefined if it declares none or `frame` does not
 * start with a whole zstd frame header. Frames written by compressFrame always declare it.
 */
export function frameContentSize(frame: Uint8Array): number | undefined {
  const bytes = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength)
  if (bytes.length < 5 || bytes.readUInt32LE(0) !== ZSTD_MAGIC) return undefined
  const descriptor = bytes[4]!
  const fieldBytes = contentSizeBytes(descriptor)
  const end = headerBytes(descriptor)
  if (fieldBytes === 0 || bytes.length < end) return undefined
  if (fieldBytes === 8) return Number(bytes.readBigUInt64LE(end - 8))
  // The 2-byte form is stored minus 256 (RFC 8878 section 3.1.1.1.4).
  return bytes.readUIntLE(end - fieldBytes, fieldBytes) + (fieldBytes === 2 ? 256 : 0)
}
