/**
 * An unbounded single-consumer queue with an async iterator: producers push without
 * waiting, the consumer awaits the next item; `end` finishes the iteration once the
 * queued items are consumed.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = []
  #waiting: ((r: IteratorResult<T>) => void) | undefined
  #ended = false

  /** Adds an item; ignored after `end`. */
  push(item: T): void {
    if (this.#ended) return
    const wake = this.#waiting
    if (wake) {
      this.#waiting = undefined
      wake({ value: item, done: false })
    } else {
      this.#items.push(item)
    }
  }

  /** No more items will come; the iterator finishes after the queued ones. Idempotent. */
  end(): void {
    this.#ended = true
    const wake = this.#waiting
    this.#waiting = undefined
    wake?.({ value: undefined, done: true })
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    const next = (): Promise<IteratorResult<T>> => {
      if (this.#items.length > 0) return Promise.resolve({ value: this.#items.shift() as T, done: false })
      if (this.#ended) return Promise.resolve({ value: undefined, done: true })
      return new Promise((resolve) => (this.#waiting = resolve))
    }
    const it: AsyncIterableIterator<T> = { next, [Symbol.asyncIterator]: () => it }
    return it
  }
}
