import t from 'tap'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { initRepository } from '../../src/engine/repository/index.ts'
import { createFsSink } from '../../src/sinks/fs.ts'
import { tidemark } from '../cli/run.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { buildOverlapping, CHUNK, testPool } from '../replicate/helpers.ts'

const pool = testPool()
t.teardown(() => pool.destroy())

t.test('tidemark verify: clean exits 0; a missing object is named and exits 1; unknown ids and bad usage are clear', async (t) => {
  const root = await tempDir()
  t.teardown(() => removeTempDir(root))
  const repo = await initRepository(createFsSink(root), { pipeline: { pool, chunkSize: CHUNK } })
  const built = await buildOverlapping(repo, new Date())
  await repo.close()
  const url = pathToFileURL(root).href

  const clean = await tidemark(['verify', '--read', '--repo', url, '--json'])
  t.equal(clean.code, 0, clean.stderr)
  t.match(JSON.parse(clean.stdout), { ok: true, read: true, objects: 7, repository: url })

  const b = built.refs.b!
  await rm(join(root, ...b.key.split('/')))
  const bad = await tidemark(['verify', '--repo', url])
  t.equal(bad.code, 1)
  for (const m of built.manifests.filter((x) => x.objects.includes(b))) t.match(bad.stdout, new RegExp(`FAIL  ${m.id} .*\\n +missing  ${b.key}: object missing`))
  t.match(bad.stdout, /verified 4 backups, 7 objects .*: 2 problems in 2 backups/)
  t.match(bad.stderr, new RegExp(`^TM_ERR_VERIFY_FAILED verify found 2 problems; first: backup \\S+ object ${b.key}: missing`))

  const one = await tidemark(['verify', built.manifests[1]!.id, '--repo', url, '--json'])
  t.equal(one.code, 0, 'the backup that does not need b verifies')
  t.same(JSON.parse(one.stdout).backups.map((x: { id: string }) => x.id), [built.manifests[1]!.id])

  const unknown = await tidemark(['verify', '20200101T000000Z-pg-0000', '--repo', url, '--json'])
  t.equal(unknown.code, 1)
  t.match(JSON.parse(unknown.stderr), { error: { code: 'TM_ERR_MANIFEST_NOT_FOUND' } })
  const both = await tidemark(['verify', built.manifests[1]!.id, '--all', '--repo', url])
  t.equal(both.code, 2)
  t.match(both.stderr, /^TM_ERR_USAGE give a backup id or --all, not both; usage: tidemark verify/)
})
