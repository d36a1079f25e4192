/**
 * `tidemark wal-fetch <file> <path>`: PostgreSQL's restore_command. Exit status is
 * what PostgreSQL reads, so it is set here rather than by the error catalog:
 *
 * - 0: fetched (written atomically to <path>).
 * - 1: the repository does not hold the file. Quiet: PostgreSQL asks for files that
 *   do not exist (the next timeline's history, the segment after the end) as part of
 *   normal recovery, and takes this status to mean "end of archive".
 * - 255 (any status above 125): the fetch failed (repository unreachable, wrong key,
 *   corrupt object). PostgreSQL then aborts recovery instead of taking the failure
 *   for the end of the archive and promoting with data missing.
 * - 128 + signal number on SIGTERM, SIGINT or SIGQUIT: the temp file is removed and
 *   the process exits; it never dies by the signal itself.
 *
 * The repository's keys and credentials come from the configuration file (--config)
 * or the environment of the server, never from the command line.
 */
import { unlinkSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { TidemarkError, asTidemarkError } from '../../errors.ts'
import type { Command, CommandContext } from '../command.ts'
import { REPO_OPTION } from '../options.ts'
import { printError, printResult } from '../output.ts'

/** Exit statuses of wal-fetch (see the module comment). */
export const WAL_FETCH_EXIT = { fetched: 0, missing: 1, failed: 255 } as const

const SIGNALS = { SIGINT: 2, SIGQUIT: 3, SIGTERM: 15 } as const

/** Exits 128 + n on a stop signal, removing the temp file first. */
function guardSignals(ctx: CommandContext, tempPath: string): void {
  for (const [sig, n] of Object.entries(SIGNALS)) {
    process.on(sig, () => {
      try {
        unlinkSync(tempPath)
      } catch {
        // not written yet, or already renamed
      }
      ctx.stderr.write(`tidemark wal-fetch: stopped by ${sig}\n`)
      process.exit(128 + n)
    })
  }
}

/** `tidemark wal-fetch`. */
export const walFetchCommand: Command = {
  name: ['wal-fetch'],
  summary: 'fetch one archived WAL file for PostgreSQL\'s restore_command (exit 1: not in the repository; above 125: failed)',
  usage: '<file> <path> [--repo <url>] [--system-id <id>]',
  positionals: { min: 2, max: 2 },
  options: {
    ...REPO_OPTION,
    'system-id': { type: 'string', arg: '<id>', description: 'the PostgreSQL cluster (system identifier); needed when the repository holds several' },
    prefetch: { type: 'string', arg: '<n>', description: 'complete segments to read ahead into pg_wal/tidemark-prefetch (default 8; 0: none)' },
  },
  async run(ctx) {
    const [name, path] = ctx.positionals as [string, string]
    const dest = resolve(ctx.cwd, path)
    const { fetchTempPath, fetchWal, takePrefetched } = await import('../../engine/postgres/wal-fetch.ts')
    guardSignals(ctx, fetchTempPath(dest))
    const count = Number(ctx.string('prefetch') ?? '8')
    if (!Number.isInteger(count) || count < 0 || count > 64) {
      printError(ctx.stderr, new TidemarkError('TM_ERR_USAGE', '--prefetch must be an integer from 0 to 64'), ctx.json, false)
      process.exit(WAL_FETCH_EXIT.failed)
    }
    // The spool sits in pg_wal (the destination's directory): same filesystem, so taking a file is a rename.
    const prefetch = count > 0 ? { dir: join(dirname(dest), 'tidemark-prefetch'), count } : undefined
    try {
      // A segment read ahead by an earlier call: no configuration, no repository, no key derivation.
      if (prefetch && (await takePrefetched(prefetch.dir, name, dest))) return
      const config = await ctx.config()
      const { openSink } = await import('../../sinks/url.ts')
      const { repoUrl, settingsFor } = await import('../repo.ts')
      const { openRepository } = await import('../../engine/repository/index.ts')
      const { WalStore } = await import('../../engine/postgres/wal-store.ts')
      const { soleSystemId } = await import('../../engine/postgres/catalog.ts')
      const url = await repoUrl(ctx)
      const reach = settingsFor(config, url)
      const sink = openSink(url, reach.sink)
      const opts = reach.options
      // One file at a time: a single worker thread starts fastest.
      const repo = await openRepository(sink, { ...opts, pipeline: { ...opts.pipeline, threads: 1, maxInFlight: 4 } }).catch(async (err: unknown) => {
        await sink.close()
        throw err
      })
      try {
        const systemId = ctx.string('system-id') ?? (await soleSystemId(repo))
        const found = await fetchWal(new WalStore(repo, systemId), name, dest, { prefetch })
        if (!found) process.exit(WAL_FETCH_EXIT.missing)
        if (ctx.json) printResult(ctx.stdout, { data: { name, path: dest, source: found.source, bytes: 'ref' in found ? found.ref.rawSize : undefined }, text: '' }, true)
      } finally {
        await repo.close()
      }
    } catch (err) {
      printError(ctx.stderr, asTidemarkError(err), ctx.json, ctx.env.TIDEMARK_DEBUG === '1')
      process.exit(WAL_FETCH_EXIT.failed)
    }
  },
}
