/**
 * `tidemark list [--source <name>]`: what each source's backups can restore to.
 * Each source contributes a lister (LISTERS below, loaded lazily); without --source
 * every source is listed. Read-only: takes no lease.
 */
import type { Repository } from '../../engine/repository/index.ts'
import type { Command, CommandContext, CommandResult } from '../command.ts'
import { REPO_OPTION } from '../options.ts'
import { usageError } from '../parse.ts'

/** Lists one source's backups in `repo`: `data` for --json, `text` for people. */
export type Lister = (ctx: CommandContext, repo: Repository) => Promise<CommandResult>

/** One entry per source: a loader of its lister. */
const LISTERS: Readonly<Record<string, () => Promise<Lister>>> = {
  postgres: async () => (await import('./list-postgres.ts')).listPostgres,
  clickhouse: async () => (await import('./list-clickhouse.ts')).listClickHouse,
}

/** `tidemark list`. */
export const listCommand: Command = {
  name: ['list'],
  summary: 'list backups and what they can restore to (for PostgreSQL: the recovery window per timeline)',
  usage: `[--source <${Object.keys(LISTERS).join('|')}>] [--repo <url>] [--json]`,
  options: {
    source: { type: 'string', arg: '<name>', description: `one source: ${Object.keys(LISTERS).join(', ')} (default: all)` },
    ...REPO_OPTION,
  },
  async run(ctx) {
    const only = ctx.string('source')
    if (only !== undefined && !(only in LISTERS)) throw usageError(`unknown source "${only}"; known: ${Object.keys(LISTERS).join(', ')}`, listCommand)
    const sources = only === undefined ? Object.keys(LISTERS) : [only]
    const { repoUrl, withRepository } = await import('../repo.ts')
    const url = await repoUrl(ctx)
    const results = await withRepository(await ctx.config(), url, 'open', async (repo) => {
      const out: [string, CommandResult][] = []
      for (const s of sources) out.push([s, await (await (LISTERS[s] as () => Promise<Lister>)())(ctx, repo)])
      return out
    })
    return {
      data: { repository: url, sources: Object.fromEntries(results.map(([s, r]) => [s, r.data])) },
      text: results.map(([s, r]) => `${s}:\n${r.text.replace(/^/gm, '  ')}`).join('\n'),
    }
  },
}
