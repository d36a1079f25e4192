/** The sinks package: the Sink contract, its adapters (fs, s3), wrappers (retry, limit, faults) and repository URLs. */
export * from './sink.ts'
export { SINK_OPS, type SinkOp } from './common.ts'
export { createFsSink } from './fs.ts'
export { createS3Sink, DEFAULT_PART_SIZE, DEFAULT_QUEUE_SIZE, MIN_PART_SIZE, type S3Credentials, type S3Settings, type S3SinkOptions } from './s3.ts'
export { backoffDelay, DEFAULT_RETRY, putWithRetry, retryCall, withRetry, type RetryInfo, type RetryOptions } from './retry.ts'
export { Semaphore, withLimit } from './limit.ts'
export { withFaults, type FaultCall, type FaultKind, type FaultPlan, type FaultySink } from './faulty.ts'
export { openSink, parseRepoUrl, type OpenSinkSettings, type RepoLocation } from './url.ts'
