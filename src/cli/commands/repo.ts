/** `tidemark repo init` and `tidemark repo info`. */
import type { RepoInfo } from '../../engine/repository/index.ts'
import type { Command } from '../command.ts'
import { REPO_OPTION } from '../options.ts'

/** A few aligned lines describing a repository. */
export function formatRepoInfo(info: RepoInfo): string {
  const counts = Object.entries(info.manifests).map(([source, n]) => `${source} ${n}`)
  const rows: [string, string][] = [
    ['location', info.sink],
    ['id', info.id],
    ['format', String(info.formatVersion)],
    ['created', info.createdAt],
    ['encryption', info.encryption],
    ['backups', counts.length === 0 ? 'none' : counts.join(', ')],
  ]
  const width = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')
}

/** `tidemark repo init`: fails with TM_ERR_REPO_EXISTS when one is there; writes nothing else. */
export const repoInitCommand: Command = {
  name: ['repo', 'init'],
  summary: 'create a repository (encrypted when a passphrase or key file is configured)',
  usage: '[--repo <url>] [--json]',
  options: REPO_OPTION,
  async run(ctx) {
    const { repoUrl, withRepository } = await import('../repo.ts')
    const info = await withRepository(await ctx.config(), await repoUrl(ctx), 'init', (repo) => repo.info())
    return { data: info, text: `created repository ${info.id}\n${formatRepoInfo(info)}` }
  },
}

/** `tidemark repo info`: read-only. */
export const repoInfoCommand: Command = {
  name: ['repo', 'info'],
  summary: 'show a repository: id, format, encryption, number of backups per source',
  usage: '[--repo <url>] [--json]',
  options: REPO_OPTION,
  async run(ctx) {
    const { repoUrl, withRepository } = await import('../repo.ts')
    const info = await withRepository(await ctx.config(), await repoUrl(ctx), 'open', (repo) => repo.info())
    return { data: info, text: formatRepoInfo(info) }
  },
}
