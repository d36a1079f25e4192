/**
 * The S3 sink, with the AWS SDK loaded on first use: loading the SDK is a large part of a
 * command's start-up, and a repository in a local directory never needs it. Options are
 * checked at once (TM_ERR_CONFIG_INVALID), as by the sink itself; the first operation
 * imports ./s3.ts and hands every call on to the real sink. Modules that may run without
 * S3 create their S3 sinks here and import only types from ./s3.ts.
 */
import type { Readable } from 'node:stream'
import { s3Description, validateS3Options, type S3SinkOptions } from './s3-options.ts'
import { isNotFoundError, isPermanentError, type GetOptions, type ListOptions, type ListPage, type ObjectInfo, type OpOptions, type PutOptions, type PutResult, type Sink } from './sink.ts'

class LazyS3Sink implements Sink {
  readonly description: string
  readonly #opts: S3SinkOptions
  #real: Promise<Sink> | undefined

  constructor(opts: S3SinkOptions) {
    validateS3Options(opts)
    this.#opts = opts
    this.description = s3Description(opts)
  }

  #sink(): Promise<Sink> {
    this.#real ??= import('./s3.ts').then((m) => m.createS3Sink(this.#opts))
    return this.#real
  }

  async put(key: string, body: Readable | Buffer, opts?: PutOptions): Promise<PutResult> {
    return (await this.#sink()).put(key, body, opts)
  }

  async get(key: string, opts?: GetOptions): Promise<Readable> {
    return (await this.#sink()).get(key, opts)
  }

  async head(key: string, opts?: OpOptions): Promise<ObjectInfo> {
    return (await this.#sink()).head(key, opts)
  }

  async list(prefix: string, opts?: ListOptions): Promise<ListPage> {
    return (await this.#sink()).list(prefix, opts)
  }

  async delete(keys: readonly string[], opts?: OpOptions): Promise<void> {
    return (await this.#sink()).delete(keys, opts)
  }

  async copy(from: string, to: string, opts?: OpOptions): Promise<void> {
    return (await this.#sink()).copy(from, to, opts)
  }

  // The real sink classifies errors with these same functions.
  isNotFound(err: unknown): boolean {
    return isNotFoundError(err)
  }

  isPermanent(err: unknown): boolean {
    return isPermanentError(err)
  }

  async close(): Promise<void> {
    if (this.#real) await (await this.#real).close()
  }
}

/** A Sink over `s3://bucket/prefix`. Throws TM_ERR_CONFIG_INVALID for bad options; loads nothing and makes no request until used. */
export function createS3Sink(opts: S3SinkOptions): Sink {
  return new LazyS3Sink(opts)
}
