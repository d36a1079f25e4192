import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { removeTempDir, tempDir } from '../harness/proc.ts'
import { tidemark } from './run.ts'

t.test('--help lists the commands and exits 0', async (t) => {
  const r = await tidemark(['--help'])
  t.equal(r.code, 0)
  for (const c of ['repo init', 'repo info', 'daemon', 'version']) t.match(r.stdout, c)
  const one = await tidemark(['repo', 'info', '--help'])
  t.equal(one.code, 0)
  t.match(one.stdout, 'Usage: tidemark repo info [--repo <url>] [--json]')
  const json = await tidemark(['--help', '--json'])
  t.match(JSON.parse(json.stdout), { commands: [{ name: 'repo init' }] })
})

t.test('bad usage exits 2 with the code, the problem and the usage on stderr', async (t) => {
  const none = await tidemark([])
  t.equal(none.code, 2)
  t.match(none.stderr, /^TM_ERR_USAGE missing command/)
  const unknown = await tidemark(['frobnicate'])
  t.equal(unknown.code, 2)
  t.equal(unknown.stderr, 'TM_ERR_USAGE unknown command "frobnicate"; run `tidemark --help` for the list\n')
  t.equal(unknown.stdout, '')
  const group = await tidemark(['repo'])
  t.equal(group.code, 2)
  t.match(group.stderr, 'tidemark repo init, tidemark repo info')
  const flag = await tidemark(['repo', 'info', '--nope'])
  t.equal(flag.code, 2)
  t.equal(flag.stderr, 'TM_ERR_USAGE unknown option --nope; usage: tidemark repo info [--repo <url>] [--json]\n')
  const value = await tidemark(['repo', 'info', '--repo'])
  t.equal(value.code, 2)
  t.match(value.stderr, 'option --repo needs a value')
  const extra = await tidemark(['version', 'extra'])
  t.equal(extra.code, 2)
  t.match(extra.stderr, 'unexpected argument "extra"')
})

t.test('with --json, errors are one JSON document on stderr and stdout stays empty', async (t) => {
  const r = await tidemark(['frobnicate', '--json'])
  t.equal(r.code, 2)
  t.equal(r.stdout, '')
  t.same(JSON.parse(r.stderr), { error: { code: 'TM_ERR_USAGE', message: 'unknown command "frobnicate"; run `tidemark --help` for the list' } })
})

t.test('configuration errors exit 2 without a stack trace (unless TIDEMARK_DEBUG=1)', async (t) => {
  const dir = await tempDir()
  t.teardown(() => removeTempDir(dir))
  const file = join(dir, 'tidemark.yaml')
  await writeFile(file, 'repository:\n  url: /tmp/x\n  bogus: 1\n')
  const r = await tidemark(['repo', 'info'], { env: { TIDEMARK_CONFIG: file } })
  t.equal(r.code, 2)
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
  t.match(r.stderr, `TM_ERR_CONFIG_INVALID invalid configuration: repository.bogus (file ${file} line 3): unknown key`)
  t.notMatch(r.stderr, /\n\s+at /)
  const dbg = await tidemark(['repo', 'info', '--config', file], { env: { TIDEMARK_DEBUG: '1' } })
  t.equal(dbg.code, 2)
  t.match(dbg.stderr, /\n\s+at /, 'stack trace with TIDEMARK_DEBUG=1')
  const env = await tidemark(['repo', 'info', '--json'], { env: { CLICKHOUSE_PORT: 'http', CLICKHOUSE_PASSWORD: 'pw-in-env-1234' } })
  t.equal(env.code, 2)
  const doc = JSON.parse(env.stderr) as { error: { code: string; message: string } }
  t.equal(doc.error.code, 'TM_ERR_CONFIG_INVALID')
  t.match(doc.error.message, 'clickhouse.port (environment variable CLICKHOUSE_PORT)')
  t.notMatch(env.stderr, 'pw-in-env-1234')
  const missing = await tidemark(['version'], { env: { TIDEMARK_CONFIG: join(dir, 'nope.yaml') } })
  t.equal(missing.code, 0, 'commands that need no configuration do not read it')
})
