/**
 * The command table. To add a command: write `src/cli/commands/<name>.ts`
 * exporting a `Command` and add it here; help, usage errors, --json and exit codes
 * come with it.
 */
import type { Command } from '../command.ts'
import { backupClickHouseCommand } from './backup-clickhouse.ts'
import { backupPostgresCommand } from './backup-postgres.ts'
import { daemonCommand } from './daemon.ts'
import { listCommand } from './list.ts'
import { pruneCommand } from './prune.ts'
import { repoInfoCommand, repoInitCommand } from './repo.ts'
import { replicateCommand } from './replicate.ts'
import { restoreClickHouseCommand } from './restore-clickhouse.ts'
import { restoreCommand } from './restore.ts'
import { restorePointsCommand } from './restore-points.ts'
import { restorePostgresCommand } from './restore-postgres.ts'
import { verifyCommand } from './verify.ts'
import { versionCommand } from './version.ts'
import { walArchiveCommand } from './wal-archive.ts'
import { walFetchCommand } from './wal-fetch.ts'

/** Every command, in the order --help lists them. */
export const COMMANDS: readonly Command[] = [repoInitCommand, repoInfoCommand, replicateCommand, pruneCommand, verifyCommand, listCommand, backupClickHouseCommand, restoreClickHouseCommand, backupPostgresCommand, walArchiveCommand, restorePostgresCommand, walFetchCommand, restorePointsCommand, restoreCommand, daemonCommand, versionCommand]
