/**
 * The transform pipeline: raw bytes ⇄ stored objects, computed on a shared worker pool with
 * bounded memory. Stored formats:
 * - codec `zstd`: one zstd frame per chunk, concatenated (a valid .zst file); every frame holds
 *   its content size and an XXH64 checksum; even empty input gives one (empty) frame.
 * - codec `zstd+aes256gcm`: one sealed record per chunk, layout in seal.ts.
 * The manifest records EncodeResult; decode checks it.
 */
export { createPipelinePool, type PipelinePool, type PipelinePoolOptions } from './pool.ts'
export { encode, type Codec, type EncodeHandle, type EncodeOptions, type EncodeResult, type Source } from './encode.ts'
export { decode, unpackStored, type DecodeOptions } from './decode.ts'
export type { Expected } from './verify.ts'
export type { ChunkReader } from './filechunks.ts'
export { DEFAULT_CHUNK_SIZE, DEFAULT_LEVEL, KEY_BYTES } from './limits.ts'
