/**
 * Detects a server exception at the end of a streamed response. Once ClickHouse
 * has sent `200 OK` it cannot change the status, so an error during a long
 * SELECT is written into the body and the response then ends normally. Without
 * this check a failed export would look like a complete, slightly longer file.
 *
 * Servers from 25.11 announce a tag in `X-ClickHouse-Exception-Tag` and frame
 * the message with it: exact. Older servers append the plain message
 * (`Code: N, e.displayText() = DB::Exception: …` up to 19.x, `Code: N.
 * DB::Exception: …` later): recognised by shape at the very end of the body. A
 * row whose last bytes happen to look like such a message makes the export fail
 * loudly, never pass silently: the safe direction.
 */
import { Transform, type TransformCallback } from 'node:stream'
import { TAIL_BYTES } from '../../net/socket-body.ts'

const LEGACY = /^Code: (\d+)(?:, e\.displayText\(\) = |\. )(?:[\w:]*)Exception\b[^\0]*$/

/** The exception message at the end of `tail`, if any (pure; exported for tests). */
export function trailingException(tail: Buffer, exceptionTag: string | undefined): string | undefined {
  if (exceptionTag) {
    const end = ` ${exceptionTag}\r\n__exception__\r\n`
    const text = tail.toString('utf8')
    if (!text.endsWith(end)) return undefined
    const open = `__exception__\r\n${exceptionTag}`
    const start = text.lastIndexOf(open, text.length - end.length)
    const body = start >= 0 ? text.slice(start + open.length, -end.length) : ''
    return body.replace(/\n\d+$/, '').trim() || 'exception in the response stream'
  }
  const text = tail.toString('latin1')
  const at = text.lastIndexOf('Code: ')
  if (at < 0) return undefined
  const candidate = text.slice(at)
  if (!LEGACY.test(candidate)) return undefined
  return Buffer.from(candidate, 'latin1').toString('utf8').trim()
}

/**
 * A pass-through that errors at the end with `onException(message)` when the
 * body ends with a server exception. Bytes pass through unchanged and at once.
 */
export function exceptionGuard(exceptionTag: string | undefined, onException: (message: string) => Error): Transform {
  // References to the newest chunks covering at least TAIL_BYTES: copying a tail per chunk
  // cost more CPU than the rest of an export (18.16 sends 4 KiB chunks); concatenate once, at the end.
  let recent: Buffer[] = []
  let held = 0
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      recent.push(chunk)
      held += chunk.length
      while (recent.length > 1 && held - (recent[0] as Buffer).length >= TAIL_BYTES) held -= (recent.shift() as Buffer).length
      cb(null, chunk)
    },
    flush(cb: TransformCallback) {
      const tail = Buffer.concat(recent).subarray(-TAIL_BYTES)
      recent = []
      const message = trailingException(tail, exceptionTag)
      cb(message === undefined ? null : onException(message))
    },
  })
}
