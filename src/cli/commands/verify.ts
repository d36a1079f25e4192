/**
 * `tidemark verify [<backup-id>|--all] [--read]`: checks that the backups' objects
 * exist with their recorded sizes and, with --read, that they hash, decrypt and
 * decompress. Prints a line per backup and per problem (object key and backup id);
 * exits 1 (TM_ERR_VERIFY_FAILED) when anything is wrong.
 */
import type { VerifyReport } from '../../engine/verify.ts'
import { TidemarkError } from '../../errors.ts'
import type { Command, OptionSpec } from '../command.ts'
import { REPO_OPTION } from '../options.ts'
import { printResult } from '../output.ts'
import { usageError } from '../parse.ts'

/** `--secondary <name>`: work on a configured secondary with its own settings. */
export const SECONDARY_OPTION: Readonly<Record<string, OptionSpec>> = {
  secondary: { type: 'string', arg: '<name>', description: 'a configured secondary (its endpoint, credentials, keys and retention) instead of the primary' },
}

/** The report as text: one line per backup, its problems indented, a summary last. */
export function formatVerify(r: VerifyReport, bytes: (n: number) => string): string {
  const lines: string[] = []
  for (const b of r.backups) {
    lines.push(`${b.problems === 0 ? 'ok  ' : 'FAIL'}  ${b.id}  ${b.source}  ${b.objects} objects  ${bytes(b.bytes)}`)
    for (const p of r.problems.filter((x) => x.backupId === b.id)) lines.push(`      ${p.kind}  ${p.key}: ${p.code ? `${p.code} ` : ''}${p.message}`)
  }
  const read = r.read ? `, read ${bytes(r.bytesRead)}` : ' (sizes only; --read checks content)'
  const bad = new Set(r.problems.map((p) => p.backupId)).size
  lines.push(`verified ${r.backups.length} backups, ${r.objects} objects${read}: ${r.ok ? 'no problems' : `${r.problems.length} problems in ${bad} backups`}`)
  return lines.join('\n')
}

/** `tidemark verify`. */
export const verifyCommand: Command = {
  name: ['verify'],
  summary: 'check that backups are complete (sizes) and, with --read, readable (sha256, decryption, decompression)',
  usage: '[<backup-id> | --all] [--read] [--repo <url> | --secondary <name>] [--json]',
  positionals: { min: 0, max: 1 },
  options: {
    all: { type: 'boolean', description: 'every backup (the default when no id is given)' },
    read: { type: 'boolean', description: 'download every object and check its sha256, decryption and decompression' },
    ...REPO_OPTION,
    ...SECONDARY_OPTION,
  },
  async run(ctx) {
    const id = ctx.positionals[0]
    if (id !== undefined && ctx.flag('all')) throw usageError('give a backup id or --all, not both', verifyCommand)
    const config = await ctx.config()
    const { verify } = await import('../../engine/verify.ts')
    const { chosenPlace, formatBytes, withRepositoryAt } = await import('../targets.ts')
    const place = await chosenPlace(ctx)
    const read = ctx.flag('read')
    const report = await withRepositoryAt(config, place, (repo) => verify(repo, { ids: id === undefined ? undefined : [id], read }), { decode: read })
    const result = { data: { repository: place.url, ...report }, text: formatVerify(report, formatBytes) }
    if (report.ok) return result
    printResult(ctx.stdout, result, ctx.json)
    const first = report.problems[0]!
    throw new TidemarkError('TM_ERR_VERIFY_FAILED', `verify found ${report.problems.length} problems; first: backup ${first.backupId} object ${first.key}: ${first.kind}: ${first.message}`)
  },
}
