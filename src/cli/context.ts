/**
 * Builds the CommandContext for one invocation: option accessors, and the
 * configuration and logger created lazily (once) so commands that need neither
 * (--version, --help) never read a file.
 */
import type { Writable } from 'node:stream'
import { loadConfig, type Config } from '../config.ts'
import { createLogger, type Logger } from '../log.ts'
import type { Command, CommandContext, OptionValue } from './command.ts'
import { usageError } from './parse.ts'

/** The process's surroundings, injected so the CLI can run in-process in tests. */
export interface CliIo {
  readonly stdout: Writable
  readonly stderr: Writable
  readonly env: Readonly<Record<string, string | undefined>>
  readonly cwd: string
}

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined
  return () => (p ??= make())
}

/** A context for running `command` with parsed `values` and `positionals`. */
export function createContext(
  command: Command,
  parsed: { values: Readonly<Record<string, OptionValue>>; positionals: readonly string[]; json: boolean },
  argv: readonly string[],
  io: CliIo,
): CommandContext {
  const { values } = parsed
  const config = once<Config>(() => loadConfig({ argvConfigPath: str(values.config), env: io.env, cwd: io.cwd }))
  const logger = once<Logger>(async () => createLogger({ level: (await config()).log.level }))
  return {
    argv,
    values,
    positionals: parsed.positionals,
    json: parsed.json,
    env: io.env,
    cwd: io.cwd,
    stdout: io.stdout,
    stderr: io.stderr,
    config,
    logger,
    string: (name) => str(values[name]),
    flag: (name) => values[name] === true,
    requireString: (name) => {
      const v = str(values[name])
      if (v === undefined || v === '') throw usageError(`missing --${name}`, command)
      return v
    },
  }
}

function str(v: OptionValue): string | undefined {
  if (Array.isArray(v)) v = v[v.length - 1]
  return typeof v === 'string' ? v : undefined
}
