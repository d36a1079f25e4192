/**
 * Help texts, generated from the command table so a new command documents itself.
 */
import type { Command, OptionSpec } from './command.ts'
import { GLOBAL_OPTIONS, usageLine } from './parse.ts'

function pad(rows: readonly (readonly [string, string])[], indent = '  '): string {
  const width = Math.max(0, ...rows.map(([a]) => a.length))
  return rows.map(([a, b]) => `${indent}${a.padEnd(width)}  ${b}`.trimEnd()).join('\n')
}

function optionRows(specs: Readonly<Record<string, OptionSpec>>): [string, string][] {
  return Object.entries(specs).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.arg ? ` ${o.arg}` : ''}`
    return [flag, o.description]
  })
}

/** The list of commands (all, or those under `group`, e.g. `['repo']`). */
export function commandsHelp(commands: readonly Command[], group: readonly string[] = []): string {
  const shown = commands.filter((c) => !c.hidden && group.every((w, i) => c.name[i] === w))
  const head = group.length === 0 ? 'tidemark: backup and restore for ClickHouse and PostgreSQL' : `tidemark ${group.join(' ')}`
  return [
    head,
    '',
    'Usage: tidemark <command> [options]',
    '',
    'Commands:',
    pad(shown.map((c) => [usageLine(c).slice('tidemark '.length), c.summary])),
    '',
    'Global options:',
    pad([...optionRows(GLOBAL_OPTIONS), ['-V, --version', 'print the version']]),
    '',
    'Exit status: 0 success, 1 failure, 2 bad usage or configuration.',
    'Errors print "TM_ERR_… message" on stderr; with --json, {"error":{"code","message"}} on stderr.',
    'Set TIDEMARK_DEBUG=1 to print stack traces.',
    '',
  ].join('\n')
}

/** Help for one command. */
export function commandHelp(command: Command): string {
  const options = optionRows({ ...command.options, ...GLOBAL_OPTIONS })
  return [`Usage: ${usageLine(command)}`, '', command.summary, '', 'Options:', pad(options), ''].join('\n')
}

/** Help as data, for --help --json. */
export function helpData(commands: readonly Command[], command?: Command): unknown {
  const list = command ? [command] : commands.filter((c) => !c.hidden)
  return { commands: list.map((c) => ({ name: c.name.join(' '), usage: usageLine(c), summary: c.summary })) }
}
