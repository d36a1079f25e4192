/**
 * The `tidemark` command. Run through bin/tidemark (which picks Node 24) or
 * `node src/main.ts`. Exits with the code runCli returns.
 */
import { lstatSync, mkdirSync } from 'node:fs'
import { enableCompileCache } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * This user's compile cache directory, when it is safe to use: a directory of this user's
 * that nobody else can write to (it holds code that will be run). Undefined otherwise.
 */
function privateCacheDir(): string | undefined {
  const dir = join(tmpdir(), `tidemark-compile-cache-${process.getuid?.() ?? 'user'}`)
  try {
    mkdirSync(dir, { mode: 0o700 })
  } catch {
    // there already, or not creatable: checked below
  }
  try {
    const st = lstatSync(dir)
    return st.isDirectory() && (st.mode & 0o022) === 0 && st.uid === (process.getuid?.() ?? st.uid) ? dir : undefined
  } catch {
    return undefined
  }
}

// Node 24 caches the type-stripped TypeScript and its compiled code (start time, and the
// type stripper kept out of every thread: tens of MiB of RSS). One cache per user: wal-fetch
// runs as the database server's user, once per WAL segment, so its start-up is recovery
// time. bin/tidemark sets NODE_COMPILE_CACHE (checked the same way) so that even this file
// comes from the cache; run directly, the cache starts here, and the environment variable
// carries it into the pipeline's worker threads.
if (process.env.NODE_COMPILE_CACHE === undefined) {
  const dir = privateCacheDir()
  if (dir !== undefined) {
    process.env.NODE_COMPILE_CACHE = dir
    enableCompileCache(dir)
  }
}
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
