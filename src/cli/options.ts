/** Options shared by several commands. */
import type { OptionSpec } from './command.ts'

/** The `--repo` option, for every command that touches a repository. */
export const REPO_OPTION: Readonly<Record<string, OptionSpec>> = {
  repo: { type: 'string', arg: '<url>', description: 'repository: file:///path, s3://bucket/prefix or a directory (else TIDEMARK_REPOSITORY, then configuration)' },
}
