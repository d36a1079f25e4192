/**
 * Masking of credentials embedded in free text: the password part of URLs
 * (`postgres://user:pass@host`) and `password=…` pairs (libpq connection strings,
 * query parameters). Used for error messages, printed configuration and every log
 * line, so a secret that slips into a string is still not shown.
 */

/** What a secret is replaced with. */
export const SECRET_MASK = '***'

// userinfo password: scheme://user:PASSWORD@ — stops at characters that cannot be
// part of an unencoded userinfo (whitespace, quotes, '/', '@').
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:@/"'`]*):([^\s@/"'`]+)@/gi
const KEY_VALUE = /\b((?:password|passwd|pwd|passphrase|secret|token|sslpassword)\s*=\s*)('[^']*'|[^\s&;"'`,]+)/gi

/** Returns `text` with credentials in URLs and `password=…` pairs replaced by `***`. */
export function maskCredentials(text: string): string {
  return text.replace(URL_PASSWORD, `$1:${SECRET_MASK}@`).replace(KEY_VALUE, `$1${SECRET_MASK}`)
}
