import t from 'tap'
import { readdir, readFile, writeFile, mkdir, chmod } from 'node:fs/promises'
import { join } from 'node:path'
import { createFsSink } from '../../src/sinks/fs.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { collect, failingStream, runSinkConformance } from './conformance.ts'

const TMP = '.tmp tidemark'

async function freshFs() {
  const root = await tempDir('tidemark-fs-sink-')
  const sink = createFsSink(root)
  return {
    sink,
    root,
    cleanup: () => removeTempDir(root),
    pendingUploads: async () => (await readdir(join(root, TMP)).catch(() => [])).length,
  }
}

await runSinkConformance(t, 'fs sink', freshFs)

t.test('objects are plain files under the root; temp files are invisible', async (t) => {
  const s = await freshFs()
  t.teardown(s.cleanup)
  await s.sink.put('data/ab/obj', Buffer.from('hello'))
  t.equal(await readFile(join(s.root, 'data', 'ab', 'obj'), 'utf8'), 'hello', 'key a/b/c is the file <root>/a/b/c')
  // Leftovers of a crashed put and foreign files whose names cannot be keys are not listed.
  await mkdir(join(s.root, TMP), { recursive: true })
  await writeFile(join(s.root, TMP, 'crashed'), 'partial')
  await writeFile(join(s.root, 'data', 'not a key'), 'x')
  const page = await s.sink.list('')
  t.same(page.items.map((i) => i.key), ['data/ab/obj'])
  t.equal(s.sink.description, `file://${s.root}`)
})

t.test('delete removes emptied directories, keeps the root', async (t) => {
  const s = await freshFs()
  t.teardown(s.cleanup)
  await s.sink.put('x/y/z', Buffer.from('1'))
  await s.sink.put('x/w', Buffer.from('2'))
  await s.sink.delete(['x/y/z'])
  t.same((await readdir(join(s.root, 'x'))).sort(), ['w'], 'x/y removed once empty')
  await s.sink.delete(['x/w'])
  t.same((await readdir(s.root)).filter((n) => n !== TMP), [], 'x removed once empty')
})

t.test('a key that is also a prefix of another key is a permanent error (fs limitation)', async (t) => {
  const s = await freshFs()
  t.teardown(s.cleanup)
  await s.sink.put('a', Buffer.from('file'))
  const err = await s.sink.put('a/b', Buffer.from('x')).catch((e: unknown) => e)
  t.ok(s.sink.isPermanent(err), 'permanent')
  t.notOk(s.sink.isNotFound(err))
  t.match(err, { code: 'TM_ERR_SINK_IO', message: /a local directory cannot hold both/ })
  t.equal(await s.pendingUploads(), 0, 'temp file removed')
  t.same(await collect(await s.sink.get('a')), Buffer.from('file'), 'a untouched')
})

t.test('a read-only directory gives a permanent error naming permissions', { skip: process.getuid?.() === 0 ? 'root ignores permissions' : false }, async (t) => {
  const s = await freshFs()
  t.teardown(async () => {
    await chmod(s.root, 0o755)
    await s.cleanup()
  })
  await s.sink.put('seed', Buffer.from('x'))
  await chmod(s.root, 0o555)
  const err = await s.sink.put('new/key', Buffer.from('x')).catch((e: unknown) => e)
  t.ok(s.sink.isPermanent(err))
  t.match(err, { message: /permissions/ })
})

t.test('a missing root lists empty and reads as not found', async (t) => {
  const s = await freshFs()
  t.teardown(s.cleanup)
  const sink = createFsSink(join(s.root, 'not', 'yet'))
  t.same(await sink.list(''), { items: [] })
  t.ok(sink.isNotFound(await sink.get('k').catch((e: unknown) => e)))
  await sink.put('k', Buffer.from('v'))
  t.same(await collect(await sink.get('k')), Buffer.from('v'), 'root created by the first put')
})

t.test('a failed stream put removes its temp file', async (t) => {
  const s = await freshFs()
  t.teardown(s.cleanup)
  await t.rejects(s.sink.put('k', failingStream(100_000)), { message: /source failed/ })
  t.equal(await s.pendingUploads(), 0)
})
