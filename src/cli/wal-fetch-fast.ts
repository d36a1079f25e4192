/**
 * The fast path of `tidemark wal-fetch`: PostgreSQL runs the restore_command once per
 * WAL file, so during recovery the command's start-up is recovery time. When the file
 * was read ahead by an earlier call (pg_wal/tidemark-prefetch, see wal-fetch.ts), taking
 * it is a rename, and loading the whole command line (configuration, repository, S3
 * client) for that costs more than the rename. main.ts tries this first.
 *
 * Only the exact argument shapes tidemark writes into restore_command are recognised
 * (`[--config <f>] wal-fetch [--repo <url>] [--system-id <id>] [--prefetch <n>] <file>
 * <path>`); anything else, a file not read ahead, or any error goes to the full
 * command, which then does the work and reports as usual.
 */
import { dirname, join, resolve } from 'node:path'
import { takePrefetched } from '../engine/postgres/wal-fetch.ts'

const VALUE_OPTIONS = new Set(['--config', '--repo', '--system-id', '--prefetch'])

interface FastArgs {
  name: string
  path: string
  prefetch: number
}

/** The arguments when they are a plain wal-fetch call, else undefined. */
export function parseFastArgs(argv: readonly string[]): FastArgs | undefined {
  const positionals: string[] = []
  let prefetch = '8'
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (a.startsWith('--')) {
      const eq = a.indexOf('=')
      const opt = eq < 0 ? a : a.slice(0, eq)
      if (!VALUE_OPTIONS.has(opt)) return undefined
      const value = eq < 0 ? argv[++i] : a.slice(eq + 1)
      if (value === undefined) return undefined
      if (opt === '--prefetch') prefetch = value
      continue
    }
    if (a.startsWith('-')) return undefined
    positionals.push(a)
  }
  const [command, name, path, ...rest] = positionals
  if (command !== 'wal-fetch' || name === undefined || path === undefined || rest.length > 0) return undefined
  const n = Number(prefetch)
  if (!/^\d+$/.test(prefetch) || n < 1 || n > 64) return undefined
  return { name, path, prefetch: n }
}

const SIGNALS = { SIGINT: 2, SIGQUIT: 3, SIGTERM: 15 } as const

/** True when the file was taken from the read-ahead spool (the caller exits 0). */
export async function walFetchFastPath(argv: readonly string[], cwd: string): Promise<boolean> {
  const args = parseFastArgs(argv)
  if (!args) return false
  // As the full command: never die by a signal (PostgreSQL would take that for a crash).
  // Removed again before the full command, which installs its own (they clean up its temp file).
  const handlers = Object.entries(SIGNALS).map(([sig, n]) => [sig, () => process.exit(128 + n)] as const)
  for (const [sig, h] of handlers) process.on(sig, h)
  try {
    const dest = resolve(cwd, args.path)
    return await takePrefetched(join(dirname(dest), 'tidemark-prefetch'), args.name, dest).catch(() => false)
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h)
  }
}
