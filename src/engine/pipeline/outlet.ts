import { Readable } from 'node:stream'

/**
 * The output side of a pipeline: a Readable whose producer awaits `push` until the consumer
 * wants more, which is how the consumer's pace reaches the source.
 */
export class Outlet {
  readonly stream: Readable
  readonly #stop: AbortSignal
  #wake: (() => void) | undefined

  /** `onClose(err)` runs when the consumer destroys the stream before its end. */
  constructor(stop: AbortSignal, onClose: (err: Error) => void) {
    this.#stop = stop
    this.stream = new Readable({
      read: () => this.#wakeUp(),
      destroy: (err, callback) => {
        if (!this.stream.readableEnded) onClose(err ?? new Error('pipeline output closed before its end'))
        this.#wakeUp()
        callback(err)
      },
    })
    stop.addEventListener('abort', () => this.#wakeUp(), { once: true })
  }

  /** Hands `bytes` to the consumer; resolves when it is ready for more, rejects once the pipeline is stopped. */
  async push(bytes: Buffer): Promise<void> {
    this.#throwIfStopped()
    if (this.stream.push(bytes)) return
    await new Promise<void>((resolve) => (this.#wake = resolve))
    this.#throwIfStopped()
  }

  end(): void {
    this.stream.push(null)
  }

  fail(err: Error): void {
    this.stream.destroy(err)
  }

  #throwIfStopped(): void {
    if (this.#stop.aborted) throw this.#stop.reason
    if (this.stream.destroyed) throw new Error('pipeline output closed before its end')
  }

  #wakeUp(): void {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }
}
