/**
 * Encryption key handling for a repository: the master key is derived with scrypt
 * from a passphrase or the bytes of a key file and a per-repository random salt. The
 * repository's config.json stores only the salt, the KDF parameters and a check value
 * (HMAC of a fixed label), so a wrong key is detected before anything is read or written.
 */
import { createHmac, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { TidemarkError } from '../../errors.ts'

export interface KdfParams {
  name: 'scrypt'
  N: number
  r: number
  p: number
  /** base64 */
  salt: string
}

export interface EncryptionRecord {
  algorithm: 'aes-256-gcm'
  kdf: KdfParams
  /** base64 HMAC-SHA256(key, CHECK_LABEL) */
  check: string
}

export interface KeySource {
  passphrase?: string | undefined
  keyFile?: string | undefined
}

const CHECK_LABEL = 'tidemark repository key check v1'
/** 2^15 × 8 × 128 B = 32 MiB of memory: slow enough to resist guessing, fast enough for a CLI call. */
const DEFAULT_KDF = { N: 1 << 15, r: 8, p: 1 }

function scrypt(secret: Buffer, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(secret, salt, 32, { ...opts, maxmem: 256 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))),
  )
}

/** The secret bytes from a passphrase or key file; undefined when neither is given. */
export async function readSecret(src: KeySource): Promise<Buffer | undefined> {
  if (src.passphrase !== undefined && src.keyFile !== undefined) {
    throw new TidemarkError('TM_ERR_USAGE', 'give either an encryption passphrase or a key file, not both')
  }
  if (src.passphrase !== undefined) {
    if (src.passphrase.length === 0) throw new TidemarkError('TM_ERR_USAGE', 'the encryption passphrase is empty')
    return Buffer.from(src.passphrase, 'utf8')
  }
  if (src.keyFile !== undefined) {
    let bytes: Buffer
    try {
      bytes = await readFile(src.keyFile)
    } catch (err) {
      throw new TidemarkError('TM_ERR_REPO_KEY', `cannot read the encryption key file ${src.keyFile}: ${(err as Error).message}`, { cause: err })
    }
    if (bytes.length < 16) throw new TidemarkError('TM_ERR_REPO_KEY', `the encryption key file ${src.keyFile} holds fewer than 16 bytes`)
    return bytes
  }
  return undefined
}

function checkValue(key: Buffer): Buffer {
  return createHmac('sha256', key).update(CHECK_LABEL).digest()
}

/** Creates the encryption record for a new repository and returns it with the derived key. */
export async function newEncryption(secret: Buffer): Promise<{ record: EncryptionRecord; key: Buffer }> {
  const salt = randomBytes(32)
  const key = await scrypt(secret, salt, DEFAULT_KDF)
  return {
    key,
    record: { algorithm: 'aes-256-gcm', kdf: { name: 'scrypt', ...DEFAULT_KDF, salt: salt.toString('base64') }, check: checkValue(key).toString('base64') },
  }
}

/** Derives the key for an existing repository; throws TM_ERR_REPO_KEY when it is not the repository's key. */
export async function deriveKey(record: EncryptionRecord, secret: Buffer): Promise<Buffer> {
  const { N, r, p, salt } = record.kdf
  const key = await scrypt(secret, Buffer.from(salt, 'base64'), { N, r, p })
  const expected = Buffer.from(record.check, 'base64')
  const actual = checkValue(key)
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
    throw new TidemarkError('TM_ERR_REPO_KEY', 'wrong encryption key: the passphrase or key file does not match this repository; nothing was read or written')
  }
  return key
}
