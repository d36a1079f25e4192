/**
 * The `tidemark` command. Run through bin/tidemark (which picks Node 24) or
 * `node src/main.ts`. Exits with the code runCli returns.
 */
import { runCli } from './cli/run.ts'

const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() })
// Explicit exit: a client library's idle keep-alive socket must not hold a finished command open.
process.exit(code)
