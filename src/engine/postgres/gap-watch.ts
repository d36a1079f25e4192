/**
 * Notices gaps as segments are archived: a segment stored while earlier ones of its
 * timeline are neither archived nor seen means WAL was lost before it was streamed.
 */
import { skipped } from './archive-rules.ts'
import type { WalStore } from './wal-store.ts'
import { classifyWalName, walFileName, type Gap } from './wal.ts'

/** Per timeline, the highest segment archived; seeded from the repository on first use. */
export class GapWatch {
  readonly #store: WalStore
  readonly #segSize: number
  readonly #last = new Map<number, bigint | undefined>()

  constructor(store: WalStore, segSize: number) {
    this.#store = store
    this.#segSize = segSize
  }

  /** The run of segments missing before `segno` (checked in the repository), or undefined. */
  async check(timeline: number, segno: bigint): Promise<Gap | undefined> {
    if (!this.#last.has(timeline)) {
      const newest = await this.#store.newestSegment(timeline)
      const c = newest === undefined ? undefined : classifyWalName(newest, this.#segSize)
      this.#last.set(timeline, c?.kind === 'segment' ? c.segno : undefined)
    }
    const missing: bigint[] = []
    for (const s of skipped(this.#last.get(timeline), segno)) if (!(await this.#store.has(walFileName(timeline, s, this.#segSize)))) missing.push(s)
    if (missing.length === 0) return undefined
    return { from: walFileName(timeline, missing[0] as bigint, this.#segSize), to: walFileName(timeline, missing.at(-1) as bigint, this.#segSize), count: BigInt(missing.length) }
  }

  /** Records that `segno` is archived. */
  stored(timeline: number, segno: bigint): void {
    const prev = this.#last.get(timeline)
    if (prev === undefined || segno > prev) this.#last.set(timeline, segno)
  }
}
