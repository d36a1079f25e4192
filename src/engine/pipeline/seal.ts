import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto'
import { release } from './codec.ts'

/*
 * Encrypted stored format (codec `zstd+aes256gcm`): a sequence of records, exactly one per chunk,
 * in chunk order, nothing before, between or after them. All integers are big-endian.
 *
 *   offset   size  field
 *   0        4     u32 bodyLength = 1 + 12 + n + 16 (bytes that follow this field)
 *   4        1     flags: bit 0 = final chunk (set on the last record only); other bits 0
 *   5        12    nonce: synthetic, see below
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
 * Keys: the repository's 32-byte master key is never used directly. The cipher key is
 * HMAC-SHA256(master, "tidemark chunk cipher key v1") and the nonce key
 * HMAC-SHA256(master, "tidemark chunk nonce key v1").
 *
 * Nonces are synthetic (as in AES-GCM-SIV's construction): the first 96 bits of
 * HMAC-SHA256(nonce key, AAD | zstd frame). So encoding is deterministic: the same raw bytes
 * under the same object id give the same stored bytes and sha256, which is what lets a
 * data key be rewritten (a retried upload, a WAL segment streamed twice) without ever
 * changing the content a manifest's sha256 describes. A nonce repeats only for the same
 * (object, index, flags, frame), where it yields the identical record, so GCM's
 * nonce-reuse failure cannot happen; an observer learns only that two records are equal.
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

const subkey = (master: Uint8Array, label: string): Buffer => createHmac('sha256', master).update(label).digest()
const cipherKey = (master: Uint8Array) => subkey(master, 'tidemark chunk cipher key v1')

/** Seals one zstd frame into a record (layout above) held in a Buffer that owns its ArrayBuffer. */
export function sealRecord(frame: Uint8Array, key: Uint8Array, objectId: string, index: number, final: boolean): Buffer {
  const flags = final ? FLAG_FINAL : 0
  const record = Buffer.allocUnsafeSlow(RECORD_HEADER_BYTES + frame.length + TAG_BYTES)
  record.writeUInt32BE(record.length - LENGTH_BYTES, 0)
  record.writeUInt8(flags, LENGTH_BYTES)
  const aad = chunkAad(objectId, index, flags)
  const nonce = record.subarray(LENGTH_BYTES + FLAGS_BYTES, RECORD_HEADER_BYTES)
  createHmac('sha256', subkey(key, 'tidemark chunk nonce key v1')).update(aad).update(frame).digest().copy(nonce, 0, 0, NONCE_BYTES)
  const cipher = createCipheriv(CIPHER, cipherKey(key), nonce, { authTagLength: TAG_BYTES })
  cipher.setAAD(aad)
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
  const decipher = createDecipheriv(CIPHER, cipherKey(key), nonce, { authTagLength: TAG_BYTES })
  decipher.setAAD(chunkAad(objectId, index, recordFlags(bytes)))
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES))
  const frame = decipher.update(bytes.subarray(RECORD_HEADER_BYTES, bytes.length - TAG_BYTES))
  const rest = decipher.final()
  return rest.length === 0 ? frame : Buffer.concat([frame, rest])
}
