/**
 * The S3 sink, loaded on first use: loading the AWS SDK is a large part of a command's
 * start-up, and a repository in a local directory never needs it. Modules that may run
 * without S3 create their S3 sinks through this, and import only types from ./s3.ts.
 */
import { createRequire } from 'node:module'
import type { Sink } from './sink.ts'
import type { S3SinkOptions } from './s3.ts'

const require = createRequire(import.meta.url)

export function createS3Sink(o: S3SinkOptions): Sink {
  return (require('./s3.ts') as typeof import('./s3.ts')).createS3Sink(o)
}
