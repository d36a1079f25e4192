/**
 * wal-fetch's fast path (src/cli/wal-fetch-fast.ts): which argument shapes it takes, and
 * that it only ever takes a file from the read-ahead spool, through the real launcher.
 */
import { execFile } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { parseFastArgs } from '../../src/cli/wal-fetch-fast.ts'
import { walFetchRestoreCommand } from '../../src/engine/postgres/restore.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { BIN, cleanEnv } from '../cli/run.ts'

const run = promisify(execFile)
const SEG = '000000010000000000000005'

t.test('argument shapes', async (t) => {
  // What restore writes into restore_command, with %f and %p substituted.
  const words = walFetchRestoreCommand(['/opt/tidemark/bin/tidemark', '--config', '/etc/tidemark.yaml'], 's3://b/p', '7300000000000000001').split(' ')
  const argv = [...words.slice(1, -2).map((w) => w.replace(/^'|'$/g, '')), SEG, 'pg_wal/RECOVERYXLOG']
  t.same(parseFastArgs(argv), { name: SEG, path: 'pg_wal/RECOVERYXLOG', prefetch: 8 }, 'the restore_command tidemark writes')
  t.same(parseFastArgs(['wal-fetch', '--prefetch=4', SEG, 'x']), { name: SEG, path: 'x', prefetch: 4 })
  for (const [argv, why] of [
    [['wal-fetch', '--json', SEG, 'x'], 'JSON output is the full command\'s'],
    [['wal-fetch', '--prefetch', '0', SEG, 'x'], 'read-ahead off'],
    [['wal-fetch', '--prefetch', 'many', SEG, 'x'], 'a bad --prefetch is reported by the full command'],
    [['wal-fetch', '--debug', SEG, 'x'], 'an unknown option'],
    [['wal-fetch', SEG], 'a missing path'],
    [['wal-fetch', SEG, 'x', 'y'], 'an extra argument'],
    [['repo', 'info'], 'another command'],
    [['wal-fetch', '--repo'], 'an option without its value'],
  ] as const) t.equal(parseFastArgs(argv), undefined, why)
})

t.test('through bin/tidemark: a spooled file is taken; anything else goes to the full command', async (t) => {
  const dir = await tempDir('tidemark-walfast-')
  t.teardown(() => removeTempDir(dir))
  const spool = join(dir, 'pg_wal', 'tidemark-prefetch')
  await mkdir(spool, { recursive: true })
  await writeFile(join(spool, SEG), 'segment bytes')
  const env = cleanEnv({ TIDEMARK_REPOSITORY: `file://${join(dir, 'no-repo')}` })
  await run(BIN, ['wal-fetch', SEG, 'pg_wal/RECOVERYXLOG'], { cwd: dir, env })
  t.equal(await readFile(join(dir, 'pg_wal', 'RECOVERYXLOG'), 'utf8'), 'segment bytes', 'taken from the spool, no repository needed')
  // Not spooled: the full command runs and reports that the repository is not there.
  const missing = await run(BIN, ['wal-fetch', SEG, 'pg_wal/RECOVERYXLOG'], { cwd: dir, env }).then(() => 0, (e: { code: number; stderr: string }) => e)
  t.match(missing, { code: 255, stderr: /TM_ERR_/ }, 'the full command ran: no repository, exit 255')
})
