/**
 * What a CLI command is. A command is one entry in the table (commands/index.ts):
 * the words that select it, its options, and `run`, which returns data (printed as
 * one JSON document with --json) and a text rendering (printed otherwise).
 */
import type { Writable } from 'node:stream'
import type { Config } from '../config.ts'
import type { Logger } from '../log.ts'

/** One command-line option (node:util parseArgs semantics). */
export interface OptionSpec {
  readonly type: 'string' | 'boolean'
  readonly short?: string
  /** May be given several times; the value is then a list. */
  readonly multiple?: boolean
  /** Placeholder shown in help, e.g. `<url>`. */
  readonly arg?: string
  readonly description: string
}

/** A parsed option value. */
export type OptionValue = string | boolean | (string | boolean)[] | undefined

/** What a command returns to be printed. */
export interface CommandResult {
  /** What `--json` prints (one document on stdout). */
  readonly data: unknown
  /** What is printed otherwise (a trailing newline is added when missing). */
  readonly text: string
}

/** Everything a command may use; config and logger are created on first use. */
export interface CommandContext {
  readonly argv: readonly string[]
  readonly values: Readonly<Record<string, OptionValue>>
  readonly positionals: readonly string[]
  readonly json: boolean
  readonly env: Readonly<Record<string, string | undefined>>
  readonly cwd: string
  readonly stdout: Writable
  readonly stderr: Writable
  /** The validated configuration (`--config`, TIDEMARK_CONFIG, environment); loaded once. */
  config(): Promise<Config>
  /** The process logger (stderr, level from config); created once. */
  logger(): Promise<Logger>
  /** A string option's value, if given. */
  string(name: string): string | undefined
  /** A boolean option: true when given. */
  flag(name: string): boolean
  /** A string option that must be given; TM_ERR_USAGE (exit 2) otherwise. */
  requireString(name: string): string
}

/** One entry of the command table. */
export interface Command {
  /** The words that select the command, e.g. `['repo', 'init']`. */
  readonly name: readonly string[]
  readonly summary: string
  /** Arguments after the name, for help and usage errors, e.g. `--repo <url> [--json]`. */
  readonly usage: string
  readonly options?: Readonly<Record<string, OptionSpec>>
  /** Positional arguments after the name; none unless given. */
  readonly positionals?: { readonly min: number; readonly max: number }
  /** Not listed by --help. */
  readonly hidden?: boolean
  /** Returns the result to print, or nothing (long-running commands). Throws TidemarkError on failure. */
  run(ctx: CommandContext): Promise<CommandResult | void>
}
