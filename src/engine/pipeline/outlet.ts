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

  /**
   * Fails the stream with `err`. A consumer may still be between receiving the stream and
   * reading it (an await in between); an 'error' event nobody listens to would crash the
   * process, so the failure waits for the first error listener (for await, pipeline and
   * finished all add one before they read).
   */
  fail(err: Error): void {
    if (this.stream.destroyed || this.stream.listenerCount('error') > 0) {
      this.stream.destroy(err)
      return
    }
    const onListener = (event: string | symbol) => {
      if (event !== 'error') return
      this.stream.off('newListener', onListener)
      // Emitted on a later tick, once the listener being added is in place.
      this.stream.destroy(err)
    }
    this.stream.on('newListener', onListener)
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
