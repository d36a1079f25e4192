/**
 * One CLI invocation from argv to exit code: parse, run the command, print the
 * result or the error. Never throws; exit codes come from the error catalog
 * (2 bad usage or configuration, 1 any other failure).
 */
import { asTidemarkError } from '../errors.ts'
import type { Command } from './command.ts'
import { COMMANDS } from './commands/index.ts'
import { createContext, type CliIo } from './context.ts'
import { commandHelp, commandsHelp, helpData } from './help.ts'
import { printError, printResult } from './output.ts'
import { parseInvocation } from './parse.ts'

/** Runs the CLI; resolves to the process exit code. */
export async function runCli(argv: readonly string[], io: CliIo, commands: readonly Command[] = COMMANDS): Promise<number> {
  const json = argv.includes('--json')
  try {
    const inv = parseInvocation(argv, commands)
    if (inv.kind === 'help') {
      const text = inv.command ? commandHelp(inv.command) : commandsHelp(commands, inv.group)
      printResult(io.stdout, { data: helpData(commands, inv.command), text }, inv.json)
      return 0
    }
    const result = await inv.command.run(createContext(inv.command, inv, argv, io))
    if (result) printResult(io.stdout, result, inv.json)
    return 0
  } catch (err) {
    const e = asTidemarkError(err)
    printError(io.stderr, e, json, io.env.TIDEMARK_DEBUG === '1')
    return e.exit
  }
}
