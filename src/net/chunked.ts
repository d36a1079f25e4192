/**
 * A decoder for HTTP/1.1 chunked transfer coding that turns each socket read
 * into one body buffer. ClickHouse 18.16 writes its response in 4 KiB chunks;
 * Node's HTTP client hands each one through the parser and a stream push of
 * its own, which costs more CPU than the bytes are worth. Here one read of the
 * socket (up to 64 KiB) becomes one buffer, compacted in place, and the terminating zero-size
 * chunk proves the body is complete (a connection closed before it is an error).
 */

const CR = 13
const LF = 10

/** Thrown for bytes that are not valid chunked coding. */
export class ChunkedError extends Error {}

/** Incremental decoder (pure; no I/O). */
export class ChunkedDecoder {
  /** Body bytes still to come in the current chunk. */
  #remaining = 0
  /** `size` | `data` | `data-end` (the CRLF after data) | `trailer` | `done`. */
  #state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size'
  #line = ''

  /** True once the terminating chunk and the trailer have been read. */
  get done(): boolean {
    return this.#state === 'done'
  }

  /**
   * Decodes `input` and returns the body bytes it held, as a view of `input`:
   * they are moved to its start in place (no allocation per read; `input` is
   * overwritten, so pass a buffer nothing else reads). Throws ChunkedError.
   */
  push(input: Buffer): Buffer {
    let at = 0
    let i = 0
    while (i < input.length) {
      if (this.#state === 'data') {
        const n = Math.min(this.#remaining, input.length - i)
        // A move towards the start: copy() handles the overlap (memmove).
        if (at !== i) input.copy(input, at, i, i + n)
        at += n
        i += n
        this.#remaining -= n
        if (this.#remaining === 0) this.#state = 'data-end'
        continue
      }
      if (this.#state === 'done') throw new ChunkedError('bytes after the end of a chunked body')
      const nl = input.indexOf(LF, i)
      const end = nl < 0 ? input.length : nl
      this.#line += input.toString('latin1', i, end)
      if (this.#line.length > 4096) throw new ChunkedError('chunk header line too long')
      i = nl < 0 ? input.length : nl + 1
      if (nl >= 0) this.#endLine()
    }
    return input.subarray(0, at)
  }

  #endLine(): void {
    const line = this.#line.charCodeAt(this.#line.length - 1) === CR ? this.#line.slice(0, -1) : this.#line
    this.#line = ''
    if (this.#state === 'data-end') {
      if (line !== '') throw new ChunkedError('missing CRLF after chunk data')
      this.#state = 'size'
    } else if (this.#state === 'size') {
      const hex = line.split(';', 1)[0]?.trim() ?? ''
      if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw new ChunkedError(`bad chunk size line: ${JSON.stringify(line.slice(0, 40))}`)
      this.#remaining = parseInt(hex, 16)
      this.#state = this.#remaining === 0 ? 'trailer' : 'data'
    } else if (line === '') {
      this.#state = 'done' // end of the trailer section
    }
  }
}
