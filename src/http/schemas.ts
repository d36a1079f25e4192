/**
 * The JSON schemas of the API: requests (validated by fastify; unknown fields are
 * refused with `additionalProperties: false`) and responses (published in the
 * OpenAPI document only: they are not used to serialize, so a response is never
 * silently trimmed). One source for validation and documentation.
 */

const SOURCES = ['clickhouse', 'postgres']

/** A time as the API accepts it; parsed by the handler so its error names the accepted format. */
const time = (description: string) => ({ type: 'string', minLength: 1, maxLength: 64, description: `${description}: ISO 8601 with an offset (Z or ±hh:mm)` })

export const errorBody = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string', pattern: '^TM_ERR_' }, message: { type: 'string' }, details: { type: 'object' } },
    },
  },
}

const progress = {
  type: 'object',
  properties: { bytesDone: { type: 'number' }, bytesTotal: { type: 'number' }, unitsDone: { type: 'number' }, unitsTotal: { type: 'number' } },
}

export const job = {
  type: 'object',
  required: ['id', 'kind', 'store', 'state', 'progress', 'createdAt'],
  properties: {
    id: { type: 'string' },
    kind: { type: 'string', enum: ['backup', 'restore', 'prune', 'replicate'] },
    store: { type: 'string' },
    trigger: { type: 'string', enum: ['schedule', 'api', 'cli'] },
    state: { type: 'string', enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'skipped'] },
    params: { type: 'object' },
    progress,
    createdAt: { type: 'string' },
    startedAt: { type: 'string' },
    endedAt: { type: 'string' },
    result: {},
    error: errorBody.properties.error,
  },
}

export const jobBody = { type: 'object', required: ['job'], properties: { job } }

export const backup = {
  type: 'object',
  properties: {
    id: { type: 'string' }, source: { type: 'string', enum: SOURCES }, method: { type: 'string' }, startedAt: { type: 'string' }, endedAt: { type: 'string' },
    restorePoint: { type: 'string' }, objects: { type: 'integer' }, storedBytes: { type: 'integer' }, rawBytes: { type: 'integer' }, manifest: { type: 'object' },
  },
}

export const idParams = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', minLength: 1, maxLength: 200 } } }

export const backupsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { source: { type: 'string', enum: SOURCES }, from: time('backups that ended at or after'), to: time('backups that ended at or before') },
}

export const backupRequest = {
  type: 'object',
  required: ['source'],
  additionalProperties: false,
  properties: { source: { type: 'string', enum: SOURCES }, full: { type: 'boolean', description: 'ClickHouse: export every partition again' } },
}

export const restorePointsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: time('points at or after'),
    to: time('points at or before'),
    sources: { type: 'string', pattern: '^(clickhouse|postgres)(,(clickhouse|postgres))?$', description: 'comma-separated: clickhouse,postgres (default: every configured store)' },
  },
}

const target = {
  type: 'object',
  additionalProperties: false,
  properties: {
    postgres: {
      type: 'object',
      additionalProperties: false,
      properties: {
        dataDir: { type: 'string', minLength: 1, description: 'an empty or new data directory on the daemon host' },
        url: { type: 'string', pattern: '^postgres(ql)?://', description: 'the restored server, to smoke-check once it is started on the data directory' },
      },
    },
    clickhouse: { type: 'object', required: ['url'], additionalProperties: false, properties: { url: { type: 'string', pattern: '^https?://', description: 'an empty ClickHouse server' }, dataPath: { type: 'string', pattern: '^/', description: 'the target server\'s data path as mounted here (restoring a parts backup)' } } },
  },
}

export const restoreRequest = {
  type: 'object',
  required: ['at'],
  additionalProperties: false,
  properties: {
    at: { type: 'string', minLength: 1, maxLength: 64, description: 'latest, or ISO 8601 with an offset (Z or ±hh:mm)' },
    sources: { type: 'array', items: { type: 'string', enum: SOURCES }, minItems: 1, uniqueItems: true, description: 'default: every configured store' },
    targets: target,
    dryRun: { type: 'boolean', description: 'answer with the plan; change nothing' },
    callbackUrl: { type: 'string', pattern: '^https?://', description: 'POSTed {job} when the restore ends' },
  },
}

export const jobsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { kind: job.properties.kind, state: job.properties.state },
}

export const plan = { type: 'object', properties: { requested: { type: 'string' }, point: { type: 'string' }, clickhouse: { type: 'object' }, postgres: { type: 'object' } } }
