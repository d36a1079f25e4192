/**
 * The `tidemark` command. Run through bin/tidemark (which picks Node 24) or
 * `node src/main.ts`. Exits with the code runCli returns.
 */
import { enableCompileCache } from 'node:module'

// Before anything else is loaded: Node 24 then caches the type-stripped TypeScript and
// its compiled code, for this process and the pipeline's workers. That saves start time
// and keeps the type stripper out of every thread (about 50 MiB of RSS less).
enableCompileCache()
const { runCli } = await import('./cli/run.ts')

const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() })
// Explicit exit: a client library's idle keep-alive socket must not hold a finished command open.
process.exit(code)
