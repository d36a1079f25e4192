/**
 * The shared Sink conformance suite: every adapter, and every wrapper stack over an
 * adapter, must pass it. Each subtest gets a fresh, empty sink from the factory.
 */
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import type { Test } from 'tap'
import { listAll, type Sink } from '../../src/sinks/sink.ts'

export interface SinkUnderTest {
  sink: Sink
  cleanup(): Promise<void>
  /** Upload state a failed put could leave behind (temp files, multipart uploads); 0 when clean. */
  pendingUploads?(): Promise<number>
}

const MiB = 1024 * 1024
/** Larger than the 5 MiB part size the s3 tests use, so puts go multipart. */
export const BIG = 12 * MiB + 123

export async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of r) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** `data` as a stream of unknown length in 64 KiB pieces. */
export function streamOf(data: Buffer, piece = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += piece) yield data.subarray(i, i + piece)
    })(),
    { objectMode: false },
  )
}

/** `bytes` bytes, then an error, as a source that dies midway would. */
export function failingStream(bytes: number, piece = 64 * 1024): Readable {
  return Readable.from(
    (async function* () {
      for (let sent = 0; sent < bytes; sent += piece) yield Buffer.alloc(Math.min(piece, bytes - sent), 7)
      throw new Error('source failed midway')
    })(),
    { objectMode: false },
  )
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

async function expectNotFound(t: Test, sink: Sink, p: Promise<unknown>, what: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(err, `${what} rejects`)
  t.ok(sink.isNotFound(err), `${what}: isNotFound`)
  t.ok(sink.isPermanent(err), `${what}: isPermanent`)
}

async function expectPermanent(t: Test, sink: Sink, p: Promise<unknown>, what: string): Promise<unknown> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(err, `${what} rejects`)
  t.ok(sink.isPermanent(err), `${what}: isPermanent`)
  t.notOk(sink.isNotFound(err), `${what}: not isNotFound`)
  return err
}

async function keysOf(sink: Sink, prefix: string): Promise<string[]> {
  const out: string[] = []
  for await (const o of listAll(sink, prefix)) out.push(o.key)
  return out
}

type Body = (t: Test, s: SinkUnderTest) => Promise<void>

const LIST_KEYS = ['l/a-x', 'l/a.y', 'l/a0', 'l/ab-c', 'l/ab/c', 'l/ab/d/e', 'l/ab0', 'l/b', 'l/c/d', 'l/c/e', 'l/z', 'lz', 'k/x', 'm/x']
const INVALID_KEYS = ['', '/a', 'a/', 'a//b', 'a/../b', './a', 'a/.', 'a b', 'tab\there', 'é', 'a\nb']
const SPECIAL_KEY = "odd/a+b=c&d@e,f;g$h!i'(j)k*l~m%20n[o]p{q}r|s^t`u\"v<w>x#y?z"

const cases: Record<string, Body> = {
  async 'put and get a Buffer'(t, { sink }) {
    const data = randomBytes(1000)
    t.same(await sink.put('obj/a', data), { size: 1000 })
    t.equal(sha(await collect(await sink.get('obj/a'))), sha(data), 'same bytes back')
    const info = await sink.head('obj/a')
    t.equal(info.key, 'obj/a')
    t.equal(info.size, 1000)
    t.ok(Math.abs(info.lastModified.getTime() - Date.now()) < 10 * 60_000, 'lastModified is about now')
  },

  async 'put a stream of unknown length, larger than an s3 part'(t, { sink }) {
    const data = randomBytes(BIG)
    t.same(await sink.put('big/one', streamOf(data)), { size: BIG })
    t.equal((await sink.head('big/one')).size, BIG)
    t.equal(sha(await collect(await sink.get('big/one'))), sha(data), 'same bytes back')
  },

  async 'empty objects'(t, { sink }) {
    t.same(await sink.put('empty/buf', Buffer.alloc(0)), { size: 0 })
    t.same(await sink.put('empty/stream', streamOf(Buffer.alloc(0))), { size: 0 })
    for (const k of ['empty/buf', 'empty/stream']) {
      t.equal((await collect(await sink.get(k))).length, 0, `${k} reads back empty`)
      t.equal((await sink.head(k)).size, 0, `${k} head size 0`)
    }
    await expectPermanent(t, sink, sink.get('empty/buf', { range: { start: 0 } }), 'a range of an empty object')
  },

  async 'ranged gets'(t, { sink }) {
    const data = randomBytes(1000)
    await sink.put('r', data)
    const get = async (start: number, end?: number) => collect(await sink.get('r', { range: { start, end } }))
    t.same(await get(0, 0), data.subarray(0, 1), 'first byte')
    t.same(await get(500, 599), data.subarray(500, 600), 'middle')
    t.same(await get(999, 999), data.subarray(999), 'last byte')
    t.same(await get(990), data.subarray(990), 'open-ended')
    t.same(await get(0), data, 'open-ended from 0')
    t.same(await get(900, 5000), data.subarray(900), 'end past the last byte is clamped')
    await expectPermanent(t, sink, sink.get('r', { range: { start: 1000 } }), 'start at size')
    await expectPermanent(t, sink, sink.get('r', { range: { start: 10, end: 5 } }), 'end before start')
    await expectPermanent(t, sink, sink.get('r', { range: { start: -1 } }), 'negative start')
  },

  async 'missing objects are not found, permanently'(t, { sink }) {
    await expectNotFound(t, sink, sink.get('no/such'), 'get')
    await expectNotFound(t, sink, sink.get('no/such', { range: { start: 0, end: 1 } }), 'ranged get')
    await expectNotFound(t, sink, sink.head('no/such'), 'head')
    await expectNotFound(t, sink, sink.copy('no/such', 'no/dest'), 'copy from a missing key')
    await expectNotFound(t, sink, sink.head('no/dest'), 'failed copy made no object')
    await sink.put('no/such/thing', Buffer.from('x'))
    await expectNotFound(t, sink, sink.head('no/such'), 'head of a prefix of an object')
    await expectNotFound(t, sink, sink.head('no/such/thing/below'), 'head of a key below an object')
    await expectNotFound(t, sink, sink.get('no/such/thing/below'), 'get of a key below an object')
  },

  async 'overwrite replaces the object'(t, { sink }) {
    await sink.put('ow', randomBytes(2000))
    const b = randomBytes(10)
    await sink.put('ow', streamOf(b))
    t.same(await collect(await sink.get('ow')), b)
    t.equal((await sink.head('ow')).size, 10)
  },

  async 'list: byte order, pagination, prefixes'(t, { sink }) {
    await Promise.all(LIST_KEYS.map((k) => sink.put(k, Buffer.from(k))))
    const expect = (prefix: string) => LIST_KEYS.filter((k) => k.startsWith(prefix)).sort()
    // Page by page, pageSize 3: ordered, each key once, `next` only while keys follow.
    const seen: string[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const page = await sink.list('l/', { pageSize: 3, cursor })
      t.ok(page.items.length <= 3, 'page within pageSize')
      for (const it of page.items) t.equal(it.size, it.key.length, `${it.key} size`)
      seen.push(...page.items.map((i) => i.key))
      cursor = page.next
      t.ok(++pages <= 10, 'pagination terminates')
    } while (cursor !== undefined && pages <= 10)
    t.same(seen, expect('l/'), 'all keys under l/, in byte order, exactly once')
    t.equal(pages, 4, '11 keys in pages of 3')
    for (const prefix of ['', 'l', 'l/a', 'l/ab/', 'l/c/d', 'lz', 'nothing/', 'l/ab/d/e/']) {
      t.same(await keysOf(sink, prefix), expect(prefix), `prefix ${JSON.stringify(prefix)}`)
    }
    const one: string[] = []
    cursor = undefined
    do {
      const page = await sink.list('l/a', { pageSize: 1, cursor })
      one.push(...page.items.map((i) => i.key))
      cursor = page.next
    } while (cursor !== undefined && one.length < 20)
    t.same(one, expect('l/a'), 'pageSize 1 over a partial segment prefix')
    const empty = await sink.list('nothing/')
    t.same(empty, { items: [] }, 'no keys: empty page, no next')
  },

  async 'delete many, missing keys included, idempotent'(t, { sink }) {
    await Promise.all(['d/a', 'd/b/c', 'd/c', 'keep'].map((k) => sink.put(k, Buffer.from(k))))
    await sink.delete(['d/a', 'd/missing', 'd/b/c'])
    t.same(await keysOf(sink, ''), ['d/c', 'keep'])
    await sink.delete(['d/a', 'd/missing', 'd/b/c'])
    await sink.delete([])
    await expectNotFound(t, sink, sink.head('d/b/c'), 'deleted key')
    await sink.put('d/b/c', Buffer.from('again'))
    t.same(await collect(await sink.get('d/b/c')), Buffer.from('again'), 'a deleted key can be written again')
  },

  async 'copy'(t, { sink }) {
    const a = randomBytes(3000)
    await sink.put('c/src', a)
    await sink.copy('c/src', 'c/deep/dst')
    t.same(await collect(await sink.get('c/deep/dst')), a, 'copied bytes')
    t.same(await collect(await sink.get('c/src')), a, 'source unchanged')
    const b = randomBytes(10)
    await sink.put('c/other', b)
    await sink.copy('c/other', 'c/deep/dst')
    t.same(await collect(await sink.get('c/deep/dst')), b, 'copy over an existing key replaces it')
    await sink.put(SPECIAL_KEY, b)
    await sink.copy(SPECIAL_KEY, `${SPECIAL_KEY}2`)
    t.same(await collect(await sink.get(`${SPECIAL_KEY}2`)), b, 'keys with URL-special characters copy')
    await sink.copy('c/src', 'c/src')
    t.same(await collect(await sink.get('c/src')), a, 'copy onto itself keeps the object')
    t.same(await keysOf(sink, 'odd/'), [SPECIAL_KEY, `${SPECIAL_KEY}2`].sort(), 'special keys list back verbatim')
  },

  async 'invalid keys are rejected as permanent'(t, { sink }) {
    for (const k of INVALID_KEYS) {
      const n = JSON.stringify(k)
      await expectPermanent(t, sink, sink.put(k, Buffer.from('x')), `put ${n}`)
      await expectPermanent(t, sink, sink.get(k), `get ${n}`)
      await expectPermanent(t, sink, sink.head(k), `head ${n}`)
      await expectPermanent(t, sink, sink.delete(['ok', k]), `delete ${n}`)
      await expectPermanent(t, sink, sink.copy('ok', k), `copy to ${n}`)
    }
    t.same(await keysOf(sink, ''), [], 'nothing was written')
  },

  async 'a put whose body fails midway leaves no object'(t, s) {
    const { sink } = s
    const small = await sink.put('f/small', failingStream(1000)).catch((e: unknown) => e)
    t.equal((small as Error).message, 'source failed midway', "the source's own error surfaces unchanged")
    await expectNotFound(t, sink, sink.head('f/small'), 'small failed put')
    const big = await sink.put('f/big', failingStream(8 * MiB)).catch((e: unknown) => e)
    t.equal((big as Error).message, 'source failed midway', "the source's own error surfaces unchanged (multipart)")
    await expectNotFound(t, sink, sink.head('f/big'), 'big failed put')
    const old = randomBytes(100)
    await sink.put('f/old', old)
    await t.rejects(sink.put('f/old', failingStream(6 * MiB)))
    t.same(await collect(await sink.get('f/old')), old, 'a failed overwrite keeps the previous object')
    t.same(await keysOf(sink, ''), ['f/old'], 'nothing else is listed')
    if (s.pendingUploads) t.equal(await s.pendingUploads(), 0, 'no upload state left behind')
  },

  async 'an aborted put leaves no object'(t, s) {
    const { sink } = s
    const ac = new AbortController()
    const body = Readable.from(
      (async function* () {
        for (let sent = 0; ; sent += 64 * 1024) {
          if (sent === 6 * MiB) ac.abort(new Error('stop now'))
          yield Buffer.alloc(64 * 1024, 1)
          await new Promise((r) => setImmediate(r))
        }
      })(),
      { objectMode: false },
    )
    const err = await expectPermanent(t, sink, sink.put('ab/x', body, { signal: ac.signal }), 'aborted put')
    t.match(err, { code: 'TM_ERR_ABORTED' })
    await expectNotFound(t, sink, sink.head('ab/x'), 'aborted put')
    await expectPermanent(t, sink, sink.put('ab/y', Buffer.from('x'), { signal: AbortSignal.abort() }), 'put with an aborted signal')
    await expectNotFound(t, sink, sink.head('ab/y'), 'pre-aborted put')
    if (s.pendingUploads) t.equal(await s.pendingUploads(), 0, 'no upload state left behind')
  },

  async 'contentLength must match the body'(t, { sink }) {
    await expectPermanent(t, sink, sink.put('len/a', Buffer.from('abc'), { contentLength: 4 }), 'Buffer longer than said')
    await expectPermanent(t, sink, sink.put('len/b', streamOf(Buffer.from('abc')), { contentLength: 2 }), 'stream longer than said')
    await expectPermanent(t, sink, sink.put('len/c', streamOf(Buffer.from('abc')), { contentLength: 9 }), 'stream shorter than said')
    t.same(await keysOf(sink, ''), [], 'no object written')
    t.same(await sink.put('len/d', streamOf(Buffer.from('abc')), { contentLength: 3 }), { size: 3 }, 'a matching length is fine')
  },

  async 'concurrent puts of different keys'(t, { sink }) {
    const blobs = Array.from({ length: 8 }, () => randomBytes(200 * 1024))
    await Promise.all(blobs.map((b, i) => sink.put(`cc/${i}`, i % 2 ? b : streamOf(b))))
    for (const [i, b] of blobs.entries()) t.equal(sha(await collect(await sink.get(`cc/${i}`))), sha(b), `cc/${i}`)
    t.equal((await keysOf(sink, 'cc/')).length, 8)
  },

  async 'close is idempotent'(t, { sink }) {
    await sink.close()
    await sink.close()
    t.pass('closed twice')
  },
}

/** Runs every conformance case against fresh sinks from `makeSink`, as subtests of `name`. */
export async function runSinkConformance(t: Test, name: string, makeSink: () => Promise<SinkUnderTest>): Promise<void> {
  await t.test(name, async (t) => {
    for (const [title, body] of Object.entries(cases)) {
      await t.test(title, async (t) => {
        const s = await makeSink()
        t.teardown(() => s.cleanup())
        await body(t, s)
      })
    }
  })
}
