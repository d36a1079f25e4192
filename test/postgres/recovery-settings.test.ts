import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { confString, formatTargetTime, recoverySettings, shellWord, walFetchCommand, writeRecoveryConfig } from '../../src/engine/postgres/recovery.ts'
import { removeTempDir, tempDir } from '../harness/proc.ts'

t.test('postgresql.conf string quoting', async (t) => {
  t.equal(confString('plain'), "'plain'")
  t.equal(confString("it's"), "'it''s'")
  t.equal(confString('a\\b'), "'a\\\\b'")
  t.throws(() => confString('two\nlines'), { code: 'TM_ERR_CONFIG_INVALID' })
  t.throws(() => confString('nul\0'), { code: 'TM_ERR_CONFIG_INVALID' })
})

t.test('shell words survive sh -c', async (t) => {
  for (const w of ['plain', '/usr/bin/tidemark', 'with space', "it's", '$HOME', 'back`tick`', 'a"b', '*', '']) {
    const out = execFileSync('sh', ['-c', `printf %s ${shellWord(w)}`]).toString()
    t.equal(out, w, JSON.stringify(w))
  }
})

t.test('the wal-fetch restore_command', async (t) => {
  t.equal(walFetchCommand(['/usr/local/bin/tidemark']), '/usr/local/bin/tidemark wal-fetch %f %p')
  t.equal(walFetchCommand(['/opt/tide mark/bin/tidemark', '--config', '/etc/100%.yaml']), "'/opt/tide mark/bin/tidemark' --config '/etc/100%%.yaml' wal-fetch %f %p", '% doubled so PostgreSQL does not substitute it')
  t.throws(() => walFetchCommand([]), { code: 'TM_ERR_CONFIG_INVALID' })
})

t.test('target times are UTC with an explicit offset and microseconds', async (t) => {
  t.equal(formatTargetTime({ time: new Date('2026-11-28T09:40:00Z') }), '2026-11-28 09:40:00.000000+00:00')
  t.equal(formatTargetTime({ time: new Date('2026-11-28T10:40:00.123+01:00') }), '2026-11-28 09:40:00.123000+00:00')
  t.equal(formatTargetTime({ time: new Date('2026-11-28T09:40:00.123Z'), microsecond: 456 }), '2026-11-28 09:40:00.123456+00:00')
  t.throws(() => formatTargetTime({ time: new Date('nope') }), { code: 'TM_ERR_CONFIG_INVALID' })
  t.throws(() => formatTargetTime({ time: new Date(), microsecond: 1000 }), { code: 'TM_ERR_CONFIG_INVALID' })
})

t.test('settings text', async (t) => {
  const cmd = walFetchCommand(['/usr/local/bin/tidemark'])
  t.equal(recoverySettings({ restoreCommand: cmd, target: { time: new Date('2026-11-28T09:40:00Z') } }), `
# Written by tidemark restore.
restore_command = '/usr/local/bin/tidemark wal-fetch %f %p'
recovery_target_time = '2026-11-28 09:40:00.000000+00:00'
recovery_target_inclusive = 'on'
recovery_target_action = 'promote'
recovery_target_timeline = 'latest'
recovery_end_command = 'rm -rf pg_wal/tidemark-prefetch'
`)
  const latest = recoverySettings({ restoreCommand: cmd, target: 'latest' })
  t.notMatch(latest, /recovery_target_time =|recovery_target_action/, 'latest sets no target')
  t.match(latest, /recovery_target_timeline = 'latest'/)
  t.throws(() => recoverySettings({ restoreCommand: 'cp x y', target: 'latest' }), { code: 'TM_ERR_CONFIG_INVALID' })
})

t.test('writeRecoveryConfig appends and signals', async (t) => {
  const dir = await tempDir('tidemark-rc-')
  t.teardown(() => removeTempDir(dir))
  const auto = join(dir, 'postgresql.auto.conf')
  execFileSync('sh', ['-c', `printf '%s\\n' "work_mem = '8MB'" > '${auto}'`])
  await writeRecoveryConfig(dir, recoverySettings({ restoreCommand: walFetchCommand(['tm']), target: 'latest' }))
  const text = await readFile(auto, 'utf8')
  t.match(text, /^work_mem = '8MB'\n\n# Written by tidemark restore\.\nrestore_command = 'tm wal-fetch %f %p'/, 'existing settings kept, ours appended')
  t.equal(await readFile(join(dir, 'recovery.signal'), 'utf8'), '')
})
