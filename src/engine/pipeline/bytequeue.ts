/**
 * A FIFO of bytes received in pieces. Splitters look at headers in place and take whole units
 * out with one copy into a buffer that owns its memory, so the unit can be transferred to a worker.
 */
export class ByteQueue {
  #pieces: Buffer[] = []
  #length = 0
  /** Bytes taken out so far: the stream offset of the queue's first byte. */
  #consumed = 0

  get length(): number {
    return this.#length
  }

  get offset(): number {
    return this.#consumed
  }

  push(piece: Buffer): void {
    if (piece.length === 0) return
    this.#pieces.push(piece)
    this.#length += piece.length
  }

  /** A copy of `n` bytes starting `at` bytes into the queue; the caller ensures they are there. */
  peek(at: number, n: number): Buffer {
    const out = Buffer.alloc(n)
    let filled = 0
    for (const piece of this.#pieces) {
      if (filled === n) break
      if (at >= piece.length) {
        at -= piece.length
        continue
      }
      const part = piece.subarray(at, at + n - filled)
      out.set(part, filled)
      filled += part.length
      at = 0
    }
    return out
  }

  /** Removes the first `n` bytes and returns them in a Buffer that owns its whole ArrayBuffer. */
  take(n: number): Buffer {
    const out = Buffer.allocUnsafeSlow(n)
    let filled = 0
    while (filled < n) {
      const piece = this.#pieces[0]!
      const want = n - filled
      if (piece.length <= want) {
        out.set(piece, filled)
        filled += piece.length
        this.#pieces.shift()
      } else {
        out.set(piece.subarray(0, want), filled)
        filled += want
        this.#pieces[0] = piece.subarray(want)
      }
    }
    this.#length -= n
    this.#consumed += n
    return out
  }
}
