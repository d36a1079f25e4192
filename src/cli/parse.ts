/**
 * From argv to an invocation: find the command by its words (the longest match in
 * the table), then parse its options strictly with node:util parseArgs. Global
 * options (--config, --json, --help, --version) may stand anywhere. Every mistake
 * is a TM_ERR_USAGE error (exit 2) whose message ends with the usage.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util'
import { TidemarkError } from '../errors.ts'
import type { Command, OptionSpec, OptionValue } from './command.ts'

/** Options every command accepts. */
export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  config: { type: 'string', arg: '<file>', description: 'YAML configuration file (else TIDEMARK_CONFIG; none: defaults + environment)' },
  json: { type: 'boolean', description: 'print one JSON document on stdout (errors: {"error":{…}} on stderr)' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
}

/** A parsed command line: a command to run, or help to show. */
export type Invocation =
  | { kind: 'run'; command: Command; values: Record<string, OptionValue>; positionals: string[]; json: boolean }
  | { kind: 'help'; command?: Command; group: readonly string[]; json: boolean }

const VALUE_GLOBALS = new Set(['--config'])
const FLAG_GLOBALS = new Set(['--json', '--help', '-h', '--version', '-V'])

/** Parses argv against the command table; throws TM_ERR_USAGE on any mistake. */
export function parseInvocation(argv: readonly string[], commands: readonly Command[]): Invocation {
  const { words, wordIdx } = commandWords(argv)
  const json = argv.includes('--json')
  const help = argv.includes('--help') || argv.includes('-h')
  if (words.length === 0 && (argv.includes('--version') || argv.includes('-V'))) {
    const version = commands.find((c) => c.name.join(' ') === 'version')
    if (version) return parseFor(version, argv.filter((a) => a !== '--version' && a !== '-V'), json)
  }
  const command = longestMatch(words, commands)
  if (!command) {
    const group = groupOf(words, commands)
    if (help && (words.length === 0 || group.length === words.length)) return { kind: 'help', group, json }
    throw usageError(words.length === 0 ? 'missing command; run `tidemark --help` for the list' : unknownCommand(words, group, commands))
  }
  if (help) return { kind: 'help', command, group: command.name, json }
  const rest = argv.filter((_, i) => !wordIdx.slice(0, command.name.length).includes(i))
  return parseFor(command, rest, json)
}

/** The leading non-option words (global options may precede or sit between them). */
function commandWords(argv: readonly string[]): { words: string[]; wordIdx: number[] } {
  const words: string[] = []
  const wordIdx: number[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (VALUE_GLOBALS.has(a)) i++
    else if (FLAG_GLOBALS.has(a) || a.startsWith('--config=')) continue
    else if (a.startsWith('-')) break
    else {
      words.push(a)
      wordIdx.push(i)
    }
  }
  return { words, wordIdx }
}

function longestMatch(words: readonly string[], commands: readonly Command[]): Command | undefined {
  let best: Command | undefined
  for (const c of commands) {
    const fits = c.name.length <= words.length && c.name.every((w, i) => words[i] === w)
    if (fits && (!best || c.name.length > best.name.length)) best = c
  }
  return best
}

/** The longest prefix of `words` that starts some command's name (e.g. `repo`). */
function groupOf(words: readonly string[], commands: readonly Command[]): readonly string[] {
  for (let n = words.length; n > 0; n--) {
    const prefix = words.slice(0, n)
    if (commands.some((c) => c.name.length > n && prefix.every((w, i) => c.name[i] === w))) return prefix
  }
  return []
}

function unknownCommand(words: readonly string[], group: readonly string[], commands: readonly Command[]): string {
  if (group.length === 0) return `unknown command "${words.join(' ')}"; run \`tidemark --help\` for the list`
  const subs = commands.filter((c) => group.every((w, i) => c.name[i] === w)).map((c) => `tidemark ${c.name.join(' ')}`)
  const what = group.length === words.length ? `"${group.join(' ')}" needs a subcommand` : `unknown command "${words.join(' ')}"`
  return `${what}: ${subs.join(', ')}`
}

function parseFor(command: Command, args: readonly string[], json: boolean): Invocation {
  const specs = { ...GLOBAL_OPTIONS, ...command.options }
  const options: ParseArgsOptionsConfig = {}
  for (const [name, o] of Object.entries(specs)) {
    options[name] = o.short === undefined ? { type: o.type, multiple: o.multiple ?? false } : { type: o.type, short: o.short, multiple: o.multiple ?? false }
  }
  let parsed: { values: Record<string, OptionValue>; positionals: string[] }
  try {
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: true }) as typeof parsed
  } catch (err) {
    throw usageError(explainParseError(err), command)
  }
  const { min, max } = command.positionals ?? { min: 0, max: 0 }
  const n = parsed.positionals.length
  if (n > max) throw usageError(`unexpected argument "${parsed.positionals[max]}"`, command)
  if (n < min) throw usageError('missing argument', command)
  return { kind: 'run', command, values: parsed.values, positionals: parsed.positionals, json }
}

function explainParseError(err: unknown): string {
  const e = err as { code?: string; message?: string }
  const quoted = /'([^']+)'/.exec(e.message ?? '')?.[1]
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${quoted ?? ''}`.trim()
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return `option ${quoted?.split(' ')[0] ?? ''} needs a value`
    default:
      return (e.message ?? String(err)).split('\n')[0] as string
  }
}

/** `tidemark repo init --repo <url> [--json]` */
export function usageLine(command: Command): string {
  return `tidemark ${command.name.join(' ')}${command.usage ? ` ${command.usage}` : ''}`
}

/** A TM_ERR_USAGE error; with a command, the message ends with its usage. */
export function usageError(problem: string, command?: Command): TidemarkError {
  const usage = command ? `; usage: ${usageLine(command)}` : ''
  return new TidemarkError('TM_ERR_USAGE', `${problem}${usage}`)
}
