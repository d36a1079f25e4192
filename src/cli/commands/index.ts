/**
 * The command table. To add a command: write `src/cli/commands/<name>.ts`
 * exporting a `Command` and add it here; help, usage errors, --json and exit codes
 * come with it.
 */
import type { Command } from '../command.ts'
import { daemonCommand } from './daemon.ts'
import { pruneCommand } from './prune.ts'
import { repoInfoCommand, repoInitCommand } from './repo.ts'
import { replicateCommand } from './replicate.ts'
import { verifyCommand } from './verify.ts'
import { versionCommand } from './version.ts'

/** Every command, in the order --help lists them. */
export const COMMANDS: readonly Command[] = [repoInitCommand, repoInfoCommand, replicateCommand, pruneCommand, verifyCommand, daemonCommand, versionCommand]
