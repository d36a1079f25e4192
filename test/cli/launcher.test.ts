import { chmod, copyFile, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { BIN, ROOT, tidemark } from './run.ts'

/** A directory whose `node` claims to be v20 (the machine's own node may be anything). */
async function oldNodeDir(dir: string): Promise<string> {
  const bin = join(dir, 'old-node')
  await mkdir(bin)
  await writeFile(join(bin, 'node'), '#!/bin/sh\nif [ "$1" = "--version" ]; then echo v20.0.0; else echo 20; fi\n')
  await chmod(join(bin, 'node'), 0o755)
  return bin
}

t.test('--version prints the package version; Node 24 runs it even when PATH has an older node', async (t) => {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }
  const plain = await tidemark(['--version'])
  t.equal(plain.code, 0)
  t.equal(plain.stdout, `tidemark ${pkg.version}\n`)
  const path = `${await oldNodeDir(dir)}:/usr/bin:/bin`
  const r = await tidemark(['--version', '--json'], { env: { PATH: path } })
  t.equal(r.code, 0, r.stderr)
  const doc = JSON.parse(r.stdout) as { version: string; node: string }
  t.equal(doc.version, pkg.version)
  t.match(doc.node, /^v24\./, 'the node devDependency, not the one on PATH')
})

t.test('works through a symlink (as npm links it into node_modules/.bin)', async (t) => {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  await mkdir(join(dir, 'a'))
  await symlink(BIN, join(dir, 'a', 'tidemark'))
  await symlink(join('a', 'tidemark'), join(dir, 'tm'))
  const r = await tidemark(['version', '--json'], { bin: join(dir, 'tm'), cwd: dir })
  t.equal(r.code, 0, r.stderr)
  t.match(JSON.parse(r.stdout), { node: /^v24\./ })
})

t.test('without Node 24 it exits 1 and says what is needed', async (t) => {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  // A package copy without node_modules: the launcher must fall back to PATH.
  await mkdir(join(dir, 'pkg', 'bin'), { recursive: true })
  await copyFile(BIN, join(dir, 'pkg', 'bin', 'tidemark'))
  await chmod(join(dir, 'pkg', 'bin', 'tidemark'), 0o755)
  const r = await tidemark(['--version'], { bin: join(dir, 'pkg', 'bin', 'tidemark'), env: { PATH: `${await oldNodeDir(dir)}:/usr/bin:/bin` } })
  t.equal(r.code, 1)
  t.match(r.stderr, 'Node.js 24 or newer is needed (found: v20.0.0)')
  t.equal(r.stdout, '')
})

t.test('the compile cache: a private directory per user, never one others can write to', async (t) => {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  const uid = process.getuid?.() ?? 0
  const fresh = join(dir, 'fresh')
  await mkdir(fresh)
  t.equal((await tidemark(['--version'], { env: { TMPDIR: fresh } })).code, 0)
  const cache = join(fresh, `tidemark-compile-cache-${uid}`)
  t.equal((await stat(cache)).mode & 0o777, 0o700, 'created for this user only')
  t.ok((await readdir(cache)).length > 0, 'and filled')
  const open = join(dir, 'open')
  await mkdir(join(open, `tidemark-compile-cache-${uid}`), { recursive: true })
  await chmod(join(open, `tidemark-compile-cache-${uid}`), 0o777)
  const r = await tidemark(['--version'], { env: { TMPDIR: open } })
  t.equal(r.code, 0, 'runs without a cache')
  t.same(await readdir(join(open, `tidemark-compile-cache-${uid}`)), [], 'a directory others can write to is not used')
})
