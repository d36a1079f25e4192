/**
 * The `tidemark` command. Run through bin/tidemark (which picks Node 24) or
 * `node src/main.ts`. Exits with the code runCli returns.
 */
import { enableCompileCache } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// Before anything else is loaded: Node 24 then caches the type-stripped TypeScript and
// its compiled code, for this process and the pipeline's workers. That saves start time
// and keeps the type stripper out of every thread (about 50 MiB of RSS less). One cache
// per user: wal-fetch runs as the database server's user, which cannot use root's cache,
// and it is started once per WAL segment, so its start-up time is recovery time.
enableCompileCache(process.env.NODE_COMPILE_CACHE ?? join(tmpdir(), `tidemark-compile-cache-${process.getuid?.() ?? 'user'}`))
const argv = process.argv.slice(2)
if (argv.includes('wal-fetch')) {
  // A WAL file read ahead by an earlier call: taken without loading the command line.
  const { walFetchFastPath } = await import('./cli/wal-fetch-fast.ts')
  if (await walFetchFastPath(argv, process.cwd())) process.exit(0)
}
const { runCli } = await import('./cli/run.ts')

const code = await runCli(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() })
// Explicit exit: a client library's idle keep-alive socket must not hold a finished command open.
process.exit(code)
