/**
 * The stream format of one stored part directory (FORMAT.md, "ClickHouse
 * parts"): for each file, a header line `TMPART1 <size> <name>\n` (name
 * URI-encoded, `/` for files in subdirectories) followed by exactly `size`
 * bytes; then `TMPART1 END <files>\n`. Written and read file by file in
 * chunks, so memory stays flat whatever the part's size. The repository
 * pipeline checksums the whole stream; this format only has to be unambiguous.
 */
import { mkdir, open, readdir } from 'node:fs/promises'
import { dirname, join, relative, sep } from 'node:path'
import { Readable } from 'node:stream'
import { TidemarkError } from '../../errors.ts'

const MAGIC = 'TMPART1'
const MAX_HEADER = 4096

/** Every regular file under `dir`, as `/`-separated paths relative to it, sorted. */
async function listFiles(dir: string, root = dir): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, e.name)
    if (e.isDirectory()) out.push(...(await listFiles(full, root)))
    else if (e.isFile()) out.push(relative(root, full).split(sep).join('/'))
  }
  return out.sort()
}

const READ_SIZE = 1 << 20

/** One file's bytes in pieces of at most READ_SIZE; a FileHandle per file (createReadStream costs far more per small file, and parts are mostly small files). */
async function* fileChunks(path: string): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r')
  try {
    const { size } = await fh.stat()
    yield Buffer.from(`${MAGIC} ${size} `)
    let sent = 0
    while (sent < size) {
      const buf = Buffer.allocUnsafe(Math.min(READ_SIZE, size - sent))
      const { bytesRead } = await fh.read(buf, 0, buf.length, sent)
      // Frozen files are hard links that ClickHouse never rewrites; a short read means something else touched them.
      if (bytesRead === 0) throw new TidemarkError('TM_ERR_INTEGRITY', `part file ${path} shrank while it was read (${size} → ${sent} bytes)`)
      sent += bytesRead
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead)
    }
  } finally {
    await fh.close()
  }
}

async function* partChunks(dir: string): AsyncGenerator<Buffer> {
  const files = await listFiles(dir)
  for (const name of files) {
    let first = true
    for await (const chunk of fileChunks(join(dir, name))) {
      // The size comes from the open file's stat; the name completes the header line.
      yield first ? Buffer.concat([chunk, Buffer.from(`${encodeURIComponent(name)}\n`)]) : chunk
      first = false
    }
  }
  yield Buffer.from(`${MAGIC} END ${files.length}\n`)
}

/** A stream of the part directory `dir` in the format above. */
export function packPart(dir: string): Readable {
  return Readable.from(partChunks(dir), { objectMode: false })
}

/** Rejects a name that would leave the target directory. */
function safeName(raw: string): string {
  const name = decodeURIComponent(raw)
  if (name === '' || name.startsWith('/') || name.split('/').some((s) => s === '..' || s === '.' || s === '')) {
    throw new TidemarkError('TM_ERR_REPO_CORRUPT', `a stored part names the file "${name}", which is not a plain relative path`)
  }
  return name
}

function corrupt(why: string): TidemarkError {
  return new TidemarkError('TM_ERR_REPO_CORRUPT', `a stored part is malformed: ${why}`)
}

/**
 * Writes the files of a packed part into `dir` (created); resolves with the
 * file names once the end line was read. Rejects with TM_ERR_REPO_CORRUPT on a
 * malformed stream (the caller removes `dir`).
 */
export async function unpackPart(source: AsyncIterable<Buffer | string>, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true })
  const names: string[] = []
  let pending: Buffer = Buffer.alloc(0)
  let file: { fh: Awaited<ReturnType<typeof open>>; left: number } | undefined
  let ended = false
  try {
    for await (const raw of source) {
      const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw)
      // Only a partial header line is carried over; file bytes are written without copying.
      let buf: Buffer = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      pending = Buffer.alloc(0)
      while (buf.length > 0) {
        if (ended) throw corrupt('data after the end line')
        if (file) {
          const take = Math.min(file.left, buf.length)
          await file.fh.write(buf.subarray(0, take))
          file.left -= take
          buf = buf.subarray(take)
          if (file.left === 0) {
            await file.fh.close()
            file = undefined
          }
          continue
        }
        const nl = buf.indexOf(10)
        if (nl < 0) {
          if (buf.length > MAX_HEADER) throw corrupt('header line too long')
          pending = buf
          break
        }
        const [magic, a, b] = buf.subarray(0, nl).toString('utf8').split(' ')
        buf = buf.subarray(nl + 1)
        if (magic !== MAGIC || a === undefined || b === undefined) throw corrupt('bad header line')
        if (a === 'END') {
          if (Number(b) !== names.length) throw corrupt(`end line says ${b} files, ${names.length} were read`)
          ended = true
          continue
        }
        const size = Number(a)
        if (!Number.isSafeInteger(size) || size < 0) throw corrupt(`bad size "${a}"`)
        const name = safeName(b)
        if (name.includes('/')) await mkdir(dirname(join(dir, name)), { recursive: true })
        const fh = await open(join(dir, name), 'wx', 0o640)
        names.push(name)
        if (size === 0) await fh.close()
        else file = { fh, left: size }
      }
    }
  } finally {
    // A file still open here was cut short (error or truncated stream): closing it is all; the caller removes the directory.
    if (file) await file.fh.close()
  }
  if (!ended) throw corrupt('the stream ended before its end line')
  return names
}
