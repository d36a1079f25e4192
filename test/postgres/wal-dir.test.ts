/**
 * The WAL directory watcher against the race between a scan and a removal: a listing taken
 * before a stored file was removed must not report that file a second time (the consumer
 * would try to store a file that is gone), while a file of the same name created after the
 * removal is reported again.
 */
import * as fsp from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { silentLogger } from '../../src/engine/postgres/conn.ts'
import type { WalFileEvent } from '../../src/engine/postgres/wal-dir.ts'

const SEG = '000000010000000000000008'
const MiB = 1024 * 1024

t.test('a scan whose listing predates a removal does not report the removed file again; a re-created one is', async (t) => {
  // readdir takes its listing at once and returns it only when the test lets it, so the removal lands in between.
  let gate: Promise<void> | undefined
  const { WalDir } = await t.mockImport<typeof import('../../src/engine/postgres/wal-dir.ts')>('../../src/engine/postgres/wal-dir.ts', {
    'node:fs/promises': {
      ...fsp,
      readdir: async (dir: string) => {
        const names = await fsp.readdir(dir)
        if (gate) await gate
        return names
      },
    },
  })
  const root = await tempDir('tidemark-waldir-')
  t.teardown(() => removeTempDir(root))
  const dir = new WalDir(root, MiB, silentLogger)
  const seen: string[] = []
  dir.on('file', (e: WalFileEvent) => void seen.push(e.name))
  await fsp.writeFile(join(root, SEG), Buffer.alloc(MiB))
  await dir.scan()
  t.same(seen, [SEG], 'reported once')

  let open: () => void = () => {}
  gate = new Promise<void>((resolve) => (open = resolve))
  const scanning = dir.scan() // lists the segment, then waits
  await new Promise((r) => setTimeout(r, 50))
  await dir.remove(SEG) // stored and removed meanwhile
  open()
  await scanning
  gate = undefined
  t.same(seen, [SEG], 'the stale listing did not report it again')

  await dir.scan()
  await fsp.writeFile(join(root, SEG), Buffer.alloc(MiB))
  await dir.scan()
  t.same(seen, [SEG, SEG], 'a file of that name written after the removal is reported')
})
