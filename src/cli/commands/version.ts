/** `tidemark version` (also `tidemark --version`): the package version and the Node version running it. */
import { readFileSync } from 'node:fs'
import type { Command } from '../command.ts'

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

/** `tidemark version`. */
export const versionCommand: Command = {
  name: ['version'],
  summary: 'print the version (with --json: also the Node.js version)',
  usage: '[--json]',
  async run() {
    const version = packageVersion()
    return { data: { version, node: process.version }, text: `tidemark ${version}` }
  },
}
