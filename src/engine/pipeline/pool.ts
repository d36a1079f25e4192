import { getCompileCacheDir } from 'node:module'
import { availableParallelism } from 'node:os'
import { Piscina } from 'piscina'
import { TidemarkError } from '../../errors.ts'
import { intOption } from './limits.ts'
import type { DecodeReply, DecodeTask, EncodeReply, EncodeTask, UnpackReply, UnpackTask } from './tasks.ts'

/** Options of createPipelinePool. */
export interface PipelinePoolOptions {
  /** Worker threads; default: the machine's available parallelism. */
  threads?: number
}

/**
 * The workers' environment: the process's, plus its compile cache directory if the process
 * enabled one with module.enableCompileCache(). Workers do not inherit that call; with the cache
 * they load their TypeScript already stripped and never start the type stripper, which saves
 * about 12 MiB of resident memory per thread.
 */
function workerEnv(): NodeJS.ProcessEnv {
  const cache = getCompileCacheDir()
  return cache === undefined || process.env.NODE_COMPILE_CACHE ? process.env : { ...process.env, NODE_COMPILE_CACHE: cache }
}

/**
 * The worker threads every pipeline of the process shares. Create one at start-up, pass it to
 * encode/decode, destroy it at shutdown. Tasks are queued in order of submission.
 */
export class PipelinePool {
  readonly threads: number
  #piscina: Piscina | undefined
  #destroyed = false
  #pending = 0

  constructor(opts: PipelinePoolOptions = {}) {
    this.threads = intOption('threads', opts.threads ?? availableParallelism(), 1, 256)
  }

  // Threads start with the first task: an idle worker costs about 25 MiB, and many
  // commands (list, verify without --read, prune, replicate) never compress anything.
  get #workers(): Piscina {
    if (this.#destroyed) throw new TidemarkError('TM_ERR_INTERNAL', 'the pipeline pool was destroyed')
    this.#piscina ??= new Piscina({
      filename: new URL('./worker.ts', import.meta.url).href,
      minThreads: this.threads,
      maxThreads: this.threads,
      env: workerEnv(),
    })
    return this.#piscina
  }

  /** Tasks submitted and not yet settled (all pipelines together): 0 when nothing is left running. */
  get pending(): number {
    return this.#pending
  }

  /** Internal to the pipeline: compresses (and seals) one chunk. `task.input` is transferred. */
  encodeChunk(task: EncodeTask): Promise<EncodeReply> {
    return this.#run(task, 'encodeChunk', [task.input])
  }

  /** Internal to the pipeline: opens and decompresses one stored chunk. `task.stored` is transferred. */
  decodeChunk(task: DecodeTask): Promise<DecodeReply> {
    return this.#run(task, 'decodeChunk', [task.stored])
  }

  /** Internal to the pipeline: opens, decompresses and writes one chunk of a packed part. `task.stored` is transferred. */
  unpackChunk(task: UnpackTask): Promise<UnpackReply> {
    return this.#run(task, 'unpackChunk', [task.stored])
  }

  /** Stops the threads; tasks still queued or running reject. Idempotent. */
  async destroy(): Promise<void> {
    this.#destroyed = true
    await this.#piscina?.destroy()
  }

  async #run<R>(task: object, name: string, transferList: ArrayBuffer[]): Promise<R> {
    this.#pending++
    try {
      return (await this.#workers.run(task, { name, transferList })) as R
    } finally {
      this.#pending--
    }
  }
}

/** Creates the shared worker pool (see PipelinePool). */
export function createPipelinePool(opts: PipelinePoolOptions = {}): PipelinePool {
  return new PipelinePool(opts)
}
