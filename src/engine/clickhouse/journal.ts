/**
 * The journal of a running backup: the entries of the objects it has uploaded,
 * written to the repository every `intervalMs` and once more when the backup
 * fails, so the next backup reuses them (FORMAT.md rule 5). A hint only:
 * nothing is restored from it, and a failed journal write never fails the
 * backup.
 */
import type { Repository } from '../repository/index.ts'
import type { ChObject } from './manifest.ts'

/** Collects uploaded entries and writes them out now and then, one write at a time. */
export class JournalWriter {
  readonly #repo: Repository
  readonly #backupId: string
  readonly #intervalMs: number
  readonly #entries: ChObject[] = []
  #lastWrite = Date.now()
  #writing: Promise<void> = Promise.resolve()

  constructor(repo: Repository, backupId: string, intervalMs: number) {
    this.#repo = repo
    this.#backupId = backupId
    this.#intervalMs = intervalMs
  }

  /** How many entries the journal holds. */
  get size(): number {
    return this.#entries.length
  }

  /** Records an uploaded object; writes the journal when the interval has passed. */
  add(entry: ChObject): void {
    this.#entries.push(entry)
    if (Date.now() - this.#lastWrite >= this.#intervalMs) void this.flush()
  }

  /** Writes every entry so far (after any write in progress); never rejects. */
  flush(): Promise<void> {
    this.#lastWrite = Date.now()
    const snapshot = [...this.#entries]
    this.#writing = this.#writing.then(() => (snapshot.length === 0 ? undefined : this.#repo.writeJournal('clickhouse', this.#backupId, snapshot))).catch(() => undefined)
    return this.#writing
  }

  /** Waits for a write in progress (before the manifest commit deletes the journal). */
  settled(): Promise<void> {
    return this.#writing
  }
}
