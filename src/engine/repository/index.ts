/**
 * Opening and creating repositories. `initRepository` writes config.json once;
 * `openRepository` reads it, refuses unknown formats and checks the encryption key
 * before anything else happens, so a wrong key or an incompatible repository
 * changes nothing.
 */
import { randomUUID } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { TidemarkError } from '../../errors.ts'
import type { Sink } from '../../sinks/sink.ts'
import { systemClock, type Clock } from '../clock.ts'
import { createPipelinePool } from '../pipeline/index.ts'
import { CONFIG_KEY, FORMAT_NAME, FORMAT_VERSION, type RepoConfig } from './format.ts'
import { readJson } from './json.ts'
import { deriveKey, newEncryption, readSecret, type KeySource } from './keys.ts'
import { Repository, type PipelineSettings } from './repository.ts'

export { ObjectChecks, Repository, readAll, type KnownObject, type RepoInfo, type ObjectSource, type PipelineSettings } from './repository.ts'
export * from './format.ts'
export type { Lease, LockRecord } from './lease.ts'

export interface RepositoryOptions extends KeySource {
  clock?: Clock
  /** Pipeline settings; without a pool, one of `threads` workers is created and owned by the repository. */
  pipeline?: Partial<PipelineSettings> & { threads?: number }
  leaseTtlSeconds?: number
}

const MiB = 1024 * 1024

function build(sink: Sink, config: RepoConfig, key: Buffer | undefined, opts: RepositoryOptions): Repository {
  const threads = opts.pipeline?.threads ?? availableParallelism()
  const ownsPool = opts.pipeline?.pool === undefined
  const pool = opts.pipeline?.pool ?? createPipelinePool({ threads })
  return new Repository({
    sink,
    config,
    key,
    clock: opts.clock ?? systemClock,
    pipeline: {
      pool,
      chunkSize: opts.pipeline?.chunkSize ?? 4 * MiB,
      level: opts.pipeline?.level ?? 3,
      maxInFlight: opts.pipeline?.maxInFlight ?? threads * 2 + 2,
    },
    ownsPool,
    leaseTtlMs: (opts.leaseTtlSeconds ?? 60) * 1000,
  })
}

async function readConfig(sink: Sink): Promise<RepoConfig | undefined> {
  try {
    return await readJson<RepoConfig>(sink, CONFIG_KEY)
  } catch (err) {
    if (sink.isNotFound(err)) return undefined
    throw err
  }
}

/** Creates a repository in an empty location; TM_ERR_REPO_EXISTS if one is already there. */
export async function initRepository(sink: Sink, opts: RepositoryOptions = {}): Promise<Repository> {
  if (await readConfig(sink)) {
    throw new TidemarkError('TM_ERR_REPO_EXISTS', `a repository already exists at ${sink.description}; use it as it is, or choose another location`)
  }
  const secret = await readSecret(opts)
  const enc = secret ? await newEncryption(secret) : undefined
  const config: RepoConfig = {
    format: FORMAT_NAME,
    version: FORMAT_VERSION,
    id: randomUUID(),
    createdAt: (opts.clock ?? systemClock).now().toISOString(),
    encryption: enc?.record ?? null,
  }
  await sink.put(CONFIG_KEY, Buffer.from(JSON.stringify(config, null, 2)))
  return build(sink, config, enc?.key, opts)
}

/** Opens an existing repository, checking its format and the encryption key first. */
export async function openRepository(sink: Sink, opts: RepositoryOptions = {}): Promise<Repository> {
  const config = await readConfig(sink)
  if (!config) {
    throw new TidemarkError('TM_ERR_REPO_NOT_FOUND', `no repository at ${sink.description}; create one with \`tidemark repo init --repo <url>\``)
  }
  if (config.format !== FORMAT_NAME || typeof config.version !== 'number') {
    throw new TidemarkError('TM_ERR_REPO_FORMAT', `${sink.description} does not hold a tidemark repository (config.json has format ${JSON.stringify(config.format)})`)
  }
  if (config.version !== FORMAT_VERSION) {
    throw new TidemarkError(
      'TM_ERR_REPO_FORMAT',
      `the repository at ${sink.description} has format version ${config.version}; this tidemark reads version ${FORMAT_VERSION}` +
        (config.version > FORMAT_VERSION ? ': upgrade tidemark' : ''),
    )
  }
  const secret = await readSecret(opts)
  if (config.encryption && !secret) {
    throw new TidemarkError('TM_ERR_REPO_KEY', `the repository at ${sink.description} is encrypted: give its passphrase (TIDEMARK_PASSPHRASE) or key file (TIDEMARK_KEY_FILE)`)
  }
  if (!config.encryption && secret) {
    throw new TidemarkError('TM_ERR_REPO_KEY', `the repository at ${sink.description} is not encrypted, but an encryption key was given; remove it, or create a new encrypted repository`)
  }
  const key = config.encryption && secret ? await deriveKey(config.encryption, secret) : undefined
  return build(sink, config, key, opts)
}
