import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto'
import { release } from './codec.ts'

/*
 * Encrypted stored format (codec `zstd+aes256gcm`): a sequence of records, exactly one per chunk,
 * in chunk order, nothing before, between or after them. All integers are big-endian.
 *
 *   offset   size  field
 *   0        4     u32 bodyLength = 1 + 12 + n + 16 (bytes that follow this field)
 *   4        1     flags: bit 0 = final chunk (set on the last record only); other bits 0
 *   5        12    nonce: 96 random bits, fresh for every record
 *   17       n     ciphertext: AES-256-GCM of one complete zstd frame (the chunk compressed)
 *   17+n     16    GCM authentication tag
 *
 * Additional authenticated data (not stored):
 *   "tidemark chunk v1" (17 ASCII bytes) | u32 byte length of objectId | objectId (UTF-8)
 *   | u64 chunk index (0-based) | u8 flags
 *
 * So a record only opens at its own position (index), in its own object (objectId), with its
 * own final flag: reordering, dropping, swapping chunks between objects or cutting the tail
 * off (the new last record lacks the final flag) is detected. Even an empty object has one
 * record (an empty frame) flagged final.
 *
 * Nonces are 96 fresh random bits per record, not a per-object random prefix plus a counter:
 * with a 64-bit prefix some two objects collide with probability ~(objects)²/2^65, random
 * nonces with ~(records)²/2^97, which is lower for any object under 2^16 chunks (256 GiB at
 * 4 MiB), and workers need no shared counter. NIST SP 800-38D allows random 96-bit nonces up to 2^32
 * records per key (16 PiB at 4 MiB chunks).
 */

/** Field sizes and the final flag of the record layout above. */
export const LENGTH_BYTES = 4
export const FLAGS_BYTES = 1
export const NONCE_BYTES = 12
export const TAG_BYTES = 16
export const FLAG_FINAL = 0x01
/** Bytes before the ciphertext. */
export const RECORD_HEADER_BYTES = LENGTH_BYTES + FLAGS_BYTES + NONCE_BYTES
/** Smallest possible bodyLength: flags, nonce, tag and an empty ciphertext. */
export const MIN_BODY_BYTES = FLAGS_BYTES + NONCE_BYTES + TAG_BYTES
const AAD_DOMAIN = Buffer.from('tidemark chunk v1', 'ascii')
const CIPHER = 'aes-256-gcm'

/** The additional authenticated data binding a record to its object, position and final flag. */
export function chunkAad(objectId: string, index: number, flags: number): Buffer {
  const id = Buffer.from(objectId, 'utf8')
  const tail = Buffer.alloc(4 + id.length + 8 + 1)
  tail.writeUInt32BE(id.length, 0)
  id.copy(tail, 4)
  tail.writeBigUInt64BE(BigInt(index), 4 + id.length)
  tail.writeUInt8(flags, 4 + id.length + 8)
  return Buffer.concat([AAD_DOMAIN, tail])
}

/** Seals one zstd frame into a record (layout above) held in a Buffer that owns its ArrayBuffer. */
export function sealRecord(frame: Uint8Array, key: Uint8Array, objectId: string, index: number, final: boolean): Buffer {
  const flags = final ? FLAG_FINAL : 0
  const record = Buffer.allocUnsafeSlow(RECORD_HEADER_BYTES + frame.length + TAG_BYTES)
  record.writeUInt32BE(record.length - LENGTH_BYTES, 0)
  record.writeUInt8(flags, LENGTH_BYTES)
  const nonce = randomFillSync(record.subarray(LENGTH_BYTES + FLAGS_BYTES, RECORD_HEADER_BYTES))
  const cipher = createCipheriv(CIPHER, key, nonce, { authTagLength: TAG_BYTES })
  cipher.setAAD(chunkAad(objectId, index, flags))
  const body = cipher.update(frame)
  const rest = cipher.final()
  record.set(body, RECORD_HEADER_BYTES)
  record.set(rest, RECORD_HEADER_BYTES + body.length)
  record.set(cipher.getAuthTag(), record.length - TAG_BYTES)
  release(body)
  return record
}

/** The flags byte of a whole record. */
export function recordFlags(record: Uint8Array): number {
  return record[LENGTH_BYTES] ?? 0
}

/** Opens a whole record (length prefix included) expected at chunk `index`; throws if it does not authenticate. */
export function openRecord(record: Uint8Array, key: Uint8Array, objectId: string, index: number): Buffer {
  const bytes = Buffer.from(record.buffer, record.byteOffset, record.byteLength)
  const nonce = bytes.subarray(LENGTH_BYTES + FLAGS_BYTES, RECORD_HEADER_BYTES)
  const decipher = createDecipheriv(CIPHER, key, nonce, { authTagLength: TAG_BYTES })
  decipher.setAAD(chunkAad(objectId, index, recordFlags(bytes)))
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES))
  const frame = decipher.update(bytes.subarray(RECORD_HEADER_BYTES, bytes.length - TAG_BYTES))
  const rest = decipher.final()
  return rest.length === 0 ? frame : Buffer.concat([frame, rest])
}
