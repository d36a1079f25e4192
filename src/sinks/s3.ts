/**
 * The s3 sink: a prefix in an S3-compatible bucket. Key `k` is the object `<prefix>/k`.
 *
 * The SDK client makes exactly one attempt per call (`maxAttempts: 1`): retrying is
 * the retry wrapper's job, so attempts are never multiplied. Request checksums are
 * only sent when an operation requires them, because S3-compatible stores differ in
 * their support for the newer streaming checksum encoding; integrity is checked above
 * this layer (sha256 of stored bytes in every manifest).
 *
 * A put of known length up to `partSize` whose sha256 is known (PutOptions.sha256) or
 * that goes over HTTPS is one PutObject streaming the body: the known hash is the SigV4
 * payload hash (the store verifies the bytes; the SDK hashes nothing), and over HTTPS
 * without it the payload is UNSIGNED-PAYLOAD (TLS protects it). Plain HTTP without a
 * known hash keeps a signed payload: lib-storage hashes the buffered body.
 * Other puts stream through lib-storage's Upload: one PutObject for bodies up to `partSize`,
 * a multipart upload (with `queueSize` parts in flight) beyond. A failed or aborted
 * multipart upload is aborted by Upload and then once more by us, in case Upload's own
 * abort request failed; if both fail (endpoint gone) the parts remain until a bucket
 * lifecycle rule (AbortIncompleteMultipartUpload) removes them — configure one.
 *
 * copy is one CopyObject, which S3 limits to source objects of 5 GiB.
 *
 * Object bodies to a plain-HTTP endpoint (GetObject, PutObject, UploadPart) go through
 * s3-direct.ts on kept-alive connections of its own; a get then returns the socket body
 * itself, readable with `readInto`, and a put of such a body (a replicated object,
 * copy.ts) is written from reusable buffers with its last read held back until the
 * body's checks passed. Everything else, and everything over HTTPS, uses the SDK's
 * NodeHttpHandler.
 */
import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  PutObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { addAbortSignal, pipeline, Readable, Transform, type TransformCallback } from 'node:stream'
import { abortedError, ByteCounter, DirectCounter, checkLength, checkPageSize, checkRange, discardBody, guardBody, relay, throwIfAborted } from './common.ts'
import { hasReadInto, type DirectSource } from '../net/direct.ts'
import { SocketBody } from '../net/socket-body.ts'
import { DirectBodyHandler } from './s3-direct.ts'
import { mapDeleteError, mapS3Error, type S3ErrorContext } from './s3-errors.ts'
import { DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE, endpointLabel, s3Description, validateS3Options, type S3SinkOptions } from './s3-options.ts'
import {
  checkKey,
  isNotFoundError,
  isPermanentError,
  SinkError,
  type GetOptions,
  type ListOptions,
  type ListPage,
  type ObjectInfo,
  type OpOptions,
  type PutOptions,
  type PutResult,
  type Sink,
} from './sink.ts'

export { DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE, MIN_PART_SIZE, type S3Credentials, type S3Settings, type S3SinkOptions } from './s3-options.ts'

const SHA256_HEX = /^[0-9a-fA-F]{64}$/
const DELETE_BATCH = 1000

/**
 * Passes chunks on one behind, and the last only when the body ended cleanly. A
 * streamed PutObject announces its Content-Length, so a store commits the object
 * once that many bytes arrived: a body failing at its very end (a length or checksum
 * check in its flush) must never have sent its last bytes.
 */
class HoldLast extends Transform {
  private last: Buffer | undefined

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const prev = this.last
    this.last = chunk
    cb(null, prev)
  }

  override _flush(cb: TransformCallback): void {
    cb(null, this.last)
  }
}


/** CopySource is `bucket/key` URL-encoded; `/` stays literal between segments. */
function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`
}

class S3Sink implements Sink {
  readonly description: string
  private readonly client: S3Client
  private readonly bucket: string
  private readonly base: string
  private readonly endpoint: string
  private readonly partSize: number
  private readonly queueSize: number
  private readonly sse: { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string }
  /** TLS to the store: a stream body may go unsigned (UNSIGNED-PAYLOAD). */
  private readonly https: boolean
  private closed = false

  constructor(o: S3SinkOptions) {
    validateS3Options(o)
    this.bucket = o.bucket
    this.base = o.prefix ? `${o.prefix}/` : ''
    this.endpoint = endpointLabel(o)
    this.description = s3Description(o)
    this.partSize = o.partSize ?? DEFAULT_PART_SIZE
    this.queueSize = o.queueSize ?? DEFAULT_QUEUE_SIZE
    this.https = o.endpoint === undefined || /^https:/i.test(o.endpoint)
    this.sse = o.sse === 'AES256' || o.sse === 'aws:kms' ? { ServerSideEncryption: o.sse, ...(o.kmsKeyId ? { SSEKMSKeyId: o.kmsKeyId } : {}) } : {}
    this.client = new S3Client({
      region: o.region ?? 'us-east-1',
      endpoint: o.endpoint,
      forcePathStyle: o.forcePathStyle ?? false,
      credentials: o.credentials,
      maxAttempts: 1,
      // The sink reports its own failures: the SDK would otherwise warn on the console when a streamed request fails.
      logger: { trace: () => {}, debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
      followRegionRedirects: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: new DirectBodyHandler({ connectTimeoutMs: o.connectTimeoutMs ?? 10_000, idleTimeoutMs: o.idleTimeoutMs ?? 120_000 }),
    })
  }

  private ctx(what: string, key?: string): S3ErrorContext {
    return { what: `${what} in ${this.description}`, key, bucket: this.bucket, endpoint: this.endpoint }
  }

  async put(key: string, body: Readable | Buffer, opts: PutOptions = {}): Promise<PutResult> {
    const ctx = this.ctx(`put ${key}`, key)
    try {
      checkKey(key)
      throwIfAborted(ctx.what, opts.signal, key)
      if (Buffer.isBuffer(body)) checkLength(key, opts.contentLength, body.length)
    } catch (err) {
      discardBody(body)
      throw err
    }
    if (Buffer.isBuffer(body) && body.length <= this.partSize) return this.putWhole(key, body, opts, ctx)
    if (!Buffer.isBuffer(body) && hasReadInto(body) && this.singlePut(opts) && !this.https) return this.putDirect(key, body, opts, ctx)
    const guard = Buffer.isBuffer(body) ? undefined : guardBody(body)
    // Everything goes through `feed`: destroying it is how an abort reaches Upload
    // without racing Upload's own cleanup (Upload.abort() resolves before its multipart
    // upload is aborted).
    const feed = new ByteCounter(key, opts.contentLength)
    pipeline(guard?.stream ?? Readable.from([body]), feed, () => undefined)
    const onAbort = () => feed.destroy(abortedError(ctx.what, opts.signal, key))
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    if (this.singlePut(opts)) {
      const held = feed.pipe(new HoldLast())
      // The HTTP request only pipes the body: a failing body must abort the request, and its error is the one to report.
      const failed = new AbortController()
      let bodyError: unknown
      feed.once('error', (err) => {
        bodyError = err
        failed.abort(err)
      })
      held.on('error', () => undefined)
      try {
        await this.client.send(this.putObject(key, held, opts), { abortSignal: opts.signal ? AbortSignal.any([opts.signal, failed.signal]) : failed.signal })
        return { size: feed.bytes }
      } catch (err) {
        held.destroy()
        feed.destroy()
        discardBody(body)
        throwIfAborted(ctx.what, opts.signal, key)
        const cause = bodyError ?? err
        if (guard?.isSourceError(cause) || bodyError instanceof SinkError) throw cause
        throw mapS3Error(cause, ctx)
      } finally {
        opts.signal?.removeEventListener('abort', onAbort)
      }
    }
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: this.base + key, Body: feed, ...this.sse },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    })
    try {
      await upload.done()
      return { size: feed.bytes }
    } catch (err) {
      // An early failure leaves the body unread: release it.
      feed.destroy()
      discardBody(body)
      await this.abortLeftover(upload, key)
      throwIfAborted(ctx.what, opts.signal, key)
      if (guard?.isSourceError(err)) throw err
      throw mapS3Error(err, ctx)
    } finally {
      opts.signal?.removeEventListener('abort', onAbort)
    }
  }

  /** One PutObject of a body in memory: no stream stages; the SDK hashes it for the signature unless its sha256 is given. */
  private async putWhole(key: string, body: Buffer, opts: PutOptions, ctx: S3ErrorContext): Promise<PutResult> {
    try {
      await this.client.send(this.putObject(key, body, { ...opts, contentLength: body.length }), { abortSignal: opts.signal })
      return { size: body.length }
    } catch (err) {
      throwIfAborted(ctx.what, opts.signal, key)
      throw mapS3Error(err, ctx)
    }
  }

  /**
   * One PutObject of a body read direct, to a plain-HTTP endpoint (s3-direct.ts writes it
   * from reusable buffers and holds its last read back until the body's end passed its
   * checks, as HoldLast does for a stream). Over HTTPS a body goes the stream way.
   */
  private async putDirect(key: string, body: Readable & DirectSource, opts: PutOptions, ctx: S3ErrorContext): Promise<PutResult> {
    const counted = new DirectCounter(key, body, opts.contentLength)
    try {
      await this.client.send(this.putObject(key, counted, opts), { abortSignal: opts.signal })
      return { size: counted.bytes }
    } catch (err) {
      counted.destroy()
      discardBody(body)
      throwIfAborted(ctx.what, opts.signal, key)
      if (counted.failure) throw counted.failure.err
      throw mapS3Error(err, ctx)
    }
  }

  /** One streamed PutObject: length known and within a part, and a payload hash known or not needed (HTTPS). */
  private singlePut(opts: PutOptions): boolean {
    const sized = opts.contentLength !== undefined && opts.contentLength <= this.partSize
    return sized && (SHA256_HEX.test(opts.sha256 ?? '') || this.https)
  }

  /** The PutObject of a body; a known sha256 goes in as the signed payload hash. */
  private putObject(key: string, feed: Readable | Buffer, opts: PutOptions): PutObjectCommand {
    const cmd = new PutObjectCommand({ Bucket: this.bucket, Key: this.base + key, Body: feed, ContentLength: opts.contentLength, ...this.sse })
    const sha = opts.sha256?.toLowerCase()
    if (sha !== undefined && SHA256_HEX.test(sha)) {
      // The signer takes a payload hash already in the headers as given, instead of hashing (or leaving unsigned) the body.
      cmd.middlewareStack.add((next) => (args) => {
        const req = args.request as { headers?: Record<string, string> }
        if (req.headers) req.headers['x-amz-content-sha256'] = sha
        return next(args)
      }, { step: 'build', name: 'tidemarkKnownPayloadHash' })
    }
    return cmd
  }

  /** Aborts the multipart upload Upload may have left behind; NoSuchUpload means it was already gone. */
  private async abortLeftover(upload: Upload, key: string): Promise<void> {
    if (!upload.uploadId) return
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.base + key, UploadId: upload.uploadId }))
    } catch {
      // Already aborted by Upload (NoSuchUpload), or unreachable: the lifecycle rule is the last resort.
    }
  }

  async get(key: string, opts: GetOptions = {}): Promise<Readable> {
    checkKey(key)
    if (opts.range) checkRange(key, opts.range)
    const ctx = this.ctx(`get ${key}`, key)
    throwIfAborted(ctx.what, opts.signal, key)
    const Range = opts.range ? `bytes=${opts.range.start}-${opts.range.end ?? ''}` : undefined
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.base + key, Range }), { abortSignal: opts.signal })
      const body = (out.Body as Readable | undefined) ?? Readable.from([])
      if (opts.signal) addAbortSignal(opts.signal, body)
      if (!(body instanceof SocketBody)) return relay(body, (err) => mapS3Error(err, ctx))
      // A body read direct (s3-direct.ts) maps its own errors: no extra stream stage.
      body.mapError = (err) => mapS3Error(err, ctx)
      return body
    } catch (err) {
      throw mapS3Error(err, ctx)
    }
  }

  async head(key: string, opts: OpOptions = {}): Promise<ObjectInfo> {
    checkKey(key)
    const ctx = this.ctx(`head ${key}`, key)
    throwIfAborted(ctx.what, opts.signal, key)
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.base + key }), { abortSignal: opts.signal })
      return { key, size: out.ContentLength ?? 0, lastModified: out.LastModified ?? new Date(0) }
    } catch (err) {
      throw mapS3Error(err, ctx)
    }
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListPage> {
    const ctx = this.ctx(`list ${JSON.stringify(prefix)}`)
    checkPageSize(ctx.what, opts.pageSize)
    throwIfAborted(ctx.what, opts.signal)
    try {
      const out = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.base + prefix, ContinuationToken: opts.cursor, MaxKeys: opts.pageSize }),
        { abortSignal: opts.signal },
      )
      const items = (out.Contents ?? []).map((o) => ({ key: (o.Key ?? '').slice(this.base.length), size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) }))
      return out.IsTruncated && out.NextContinuationToken ? { items, next: out.NextContinuationToken } : { items }
    } catch (err) {
      throw mapS3Error(err, ctx)
    }
  }

  async delete(keys: readonly string[], opts: OpOptions = {}): Promise<void> {
    keys.forEach(checkKey)
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH)
      const ctx = this.ctx(`delete ${batch.length} keys`, batch[0])
      throwIfAborted(ctx.what, opts.signal)
      let errors
      try {
        const out = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((k) => ({ Key: this.base + k })), Quiet: true } }),
          { abortSignal: opts.signal },
        )
        errors = out.Errors ?? []
      } catch (err) {
        throw mapS3Error(err, ctx)
      }
      // DeleteObjects answers 200 even when some keys failed: the failures are in Errors.
      if (errors.length > 0) {
        throw mapDeleteError(errors[0]!, { ...ctx, what: `${ctx.what} (${errors.length} of ${batch.length} not deleted)` })
      }
    }
  }

  async copy(from: string, to: string, opts: OpOptions = {}): Promise<void> {
    checkKey(from)
    checkKey(to)
    const ctx = this.ctx(`copy ${from} -> ${to}`, from)
    throwIfAborted(ctx.what, opts.signal, from)
    // S3 refuses a copy onto itself without a change; for us it is a no-op on an existing key.
    if (from === to) {
      await this.head(from, opts)
      return
    }
    try {
      await this.client.send(
        new CopyObjectCommand({ Bucket: this.bucket, Key: this.base + to, CopySource: copySource(this.bucket, this.base + from), ...this.sse }),
        { abortSignal: opts.signal },
      )
    } catch (err) {
      throw mapS3Error(err, ctx)
    }
  }

  isNotFound(err: unknown): boolean {
    return isNotFoundError(err)
  }

  isPermanent(err: unknown): boolean {
    return isPermanentError(err)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.client.destroy()
  }
}

/** A Sink over `s3://bucket/prefix`. Throws TM_ERR_CONFIG_INVALID for bad options; makes no request until used. */
export function createS3Sink(opts: S3SinkOptions): Sink {
  return new S3Sink(opts)
}
