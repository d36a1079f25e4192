/**
 * Runs one s3rver in its own process (so a test can kill it for real), with fixes for
 * what s3rver 3.7.1 gets wrong or lacks, each needed by the s3 sink's contract:
 *
 * 1. Listing order: s3rver walks directories in readdir order, which is not sorted,
 *    so ListObjectsV2 pages miss or repeat keys. The walk is replaced by a sorted one
 *    (a directory sorts as `name/`, an object file as its key segment).
 * 2. Range `bytes=0-0` returns the whole object (an `end` of 0 is treated as absent).
 *    getObject is replaced with one that honours end 0 and answers InvalidRange for a
 *    start at or past the end.
 * 3. AbortMultipartUpload is not implemented (405): added, removing the upload's parts.
 * 4. CopyObject decodes x-amz-copy-source with decodeURI, which leaves %2B, %26, %3D…
 *    encoded, so keys with `+&=` and the like cannot be copied. The header is
 *    re-encoded so decodeURI yields the real key.
 * 5. Server-side encryption headers are dropped. They are now stored and returned on
 *    GET/HEAD like S3 does, for put, multipart put and copy.
 * 6. PutObject answers before the object's bytes are on disk (it resolves when its own
 *    hashing stage ends, and at once for a buffered body), so a listing or HEAD right
 *    after a PUT can see a short or empty object; S3 is read-after-write consistent.
 *    putObject now resolves once the file is written.
 * 7. PutObject truncates the object's file and writes it in place, and its metadata
 *    likewise, so a GET or HEAD of a key while another PUT replaces it can read an empty
 *    or short object (seen as a WAL record that was "not valid JSON" while the archiver
 *    and a backup stored the same record); S3 replaces an object whole. Both files are
 *    now written beside their place and renamed over it, and getObject takes the size
 *    from the file it opened, not from a stat of the path before.
 *
 * Needs `--openssl-legacy-provider`: continuation tokens are DES-encrypted, and
 * OpenSSL 3 has DES only in its legacy provider.
 *
 * Usage: node --openssl-legacy-provider s3rver-child.ts <dataDir> <port|0> <bucket>...
 * Prints one JSON line `{"port":N}` on stdout once listening.
 */
import { createHash, randomUUID } from 'node:crypto'
import { createWriteStream, readdirSync, statSync } from 'node:fs'
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join, posix } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'

const require = createRequire(import.meta.url)
/* eslint-disable @typescript-eslint/no-explicit-any -- patching an untyped CommonJS package */
const utils: any = require('s3rver/lib/utils.js')
const OBJECT_SUFFIX = '._S3rver_object'

utils.walk = function* sortedWalk(dir: string, recurseFilter?: (p: string) => boolean): Generator<string> {
  const entries = readdirSync(dir).flatMap((name) => {
    const p = posix.join(dir, name)
    // A temporary file of a PUT (fix 7) may be renamed away meanwhile.
    const st = statSync(p, { throwIfNoEntry: false })
    if (!st) return []
    const isDir = st.isDirectory()
    return [{ p, isDir, sortKey: isDir ? `${name}/` : name.endsWith(OBJECT_SUFFIX) ? name.slice(0, -OBJECT_SUFFIX.length) : name }]
  })
  entries.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0))
  for (const e of entries) {
    if (!e.isDir) yield e.p
    else if (!recurseFilter || recurseFilter(e.p)) yield* sortedWalk(e.p, recurseFilter)
  }
}

// Loaded after the walk patch: the store takes `walk` from utils when it loads.
const S3rver: any = require('s3rver')
const Store: any = require('s3rver/lib/stores/filesystem.js')
const S3Object: any = require('s3rver/lib/models/object.js')
const S3Error: any = require('s3rver/lib/models/error.js')

const SSE_HEADERS = ['x-amz-server-side-encryption', 'x-amz-server-side-encryption-aws-kms-key-id']
S3Object.ALLOWED_METADATA.push(...SSE_HEADERS)

/** Writes `path` whole or not at all (fix 7): into a temporary file beside it, then renamed over it. */
async function replaceFile(path: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${path}.tmp-${randomUUID()}`
  try {
    await write(tmp)
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

Store.prototype.putMetadata = async function putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5?: string) {
  const json = Object.fromEntries(Object.entries(metadata).filter(([k]) => S3Object.ALLOWED_METADATA.includes(k) || k.startsWith('x-amz-meta-')))
  if (md5) await replaceFile(this.getResourcePath(bucket, key, 'object.md5'), (tmp) => writeFile(tmp, md5))
  await replaceFile(this.getResourcePath(bucket, key, 'metadata.json'), (tmp) => writeFile(tmp, JSON.stringify(json, null, 2)))
}

Store.prototype.putObject = async function putObject(object: any) {
  const objectPath: string = this.getResourcePath(object.bucket, object.key, 'object')
  await mkdir(dirname(objectPath), { recursive: true })
  const md5 = createHash('md5')
  let size = 0
  const count = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      md5.update(chunk)
      size += chunk.length
      callback(null, chunk)
    },
  })
  const source: Readable = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content
  // Resolves when the write stream has finished: the bytes are in the file.
  await replaceFile(objectPath, (tmp) => pipeline(source, count, createWriteStream(tmp)))
  const digest = md5.digest('hex')
  await this.putMetadata(object.bucket, object.key, object.metadata, digest)
  return { size, md5: digest }
}

Store.prototype.getObject = async function getObject(bucket: string, key: string, options?: { start?: number; end?: number }) {
  let metadata
  try {
    metadata = await this.getMetadata(bucket, key)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  // The size of the file this GET reads, which a PUT may have replaced since getMetadata's stat.
  let file
  try {
    file = await open(this.getResourcePath(bucket, key, 'object'), 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  const size = (await file.stat()).size
  metadata['content-length'] = size
  const ranged = options !== undefined && (options.start !== undefined || options.end !== undefined)
  const range = ranged ? { start: options.start ?? 0, end: Math.min(options.end ?? Infinity, size - 1) } : undefined
  if (range && (range.start >= size || range.end < range.start)) {
    await file.close()
    return Object.assign(new S3Object(bucket, key, null, metadata), { range })
  }
  const content = file.createReadStream({ autoClose: true, ...(range ?? {}) })
  const object = new S3Object(bucket, key, content, metadata)
  if (range) object.range = range
  return object
}

const [dataDir, portArg, ...buckets] = process.argv.slice(2)
if (!dataDir || portArg === undefined) {
  process.stderr.write('usage: s3rver-child.ts <dataDir> <port> <bucket>...\n')
  process.exit(2)
}

function uploadDir(bucket: string, uploadId: string): string {
  return join(dataDir!, bucket, '._S3rver_uploads', uploadId)
}

async function abortMultipart(ctx: any, bucket: string): Promise<void> {
  const dir = uploadDir(bucket, String(ctx.query.uploadId))
  if (!(await stat(dir).catch(() => undefined))) throw new S3Error('NoSuchUpload', 'The specified upload does not exist.', { UploadId: ctx.query.uploadId })
  await rm(dir, { recursive: true, force: true })
  ctx.status = 204
}

async function copySseToDest(bucket: string, key: string, headers: Record<string, string>): Promise<void> {
  const file = app.store.getResourcePath(bucket, key, 'metadata.json')
  const meta = JSON.parse(await readFile(file, 'utf8').catch(() => '{}'))
  for (const h of SSE_HEADERS) if (headers[h]) meta[h] = headers[h]
  await writeFile(file, JSON.stringify(meta, null, 2))
}

async function harnessFixes(ctx: any, next: () => Promise<void>): Promise<void> {
  const [, bucket, ...rest] = ctx.path.split('/')
  const key = rest.map(decodeURIComponent).join('/')
  if (ctx.method === 'DELETE' && bucket && key && 'uploadId' in ctx.query) return abortMultipart(ctx, bucket)
  const copy = ctx.method === 'PUT' && 'x-amz-copy-source' in ctx.headers
  if (copy) ctx.headers['x-amz-copy-source'] = encodeURI(decodeURIComponent(ctx.headers['x-amz-copy-source']))
  await next()
  if (copy && ctx.status === 200 && SSE_HEADERS.some((h) => ctx.headers[h])) await copySseToDest(bucket, key, ctx.headers)
}

const app = new S3rver({
  address: '127.0.0.1',
  port: Number(portArg),
  directory: dataDir,
  silent: true,
  vhostBuckets: false,
  configureBuckets: buckets.map((name) => ({ name, configs: [] })),
})
app.middleware.unshift(harnessFixes)
const addr = await app.run()
process.stdout.write(`${JSON.stringify({ port: addr.port })}\n`)
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void app.close().finally(() => process.exit(0)))
