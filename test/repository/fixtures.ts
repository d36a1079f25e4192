import { Readable } from 'node:stream'
import { createHash, randomBytes } from 'node:crypto'
import type { ManifestBase, ObjectRef } from '../../src/engine/repository/index.ts'

/** Deterministic-size random bytes as a stream of small pieces (unknown length to the reader). */
export function randomSource(bytes: number, piece = 64 * 1024): { stream: () => Readable; sha256: string; data: Buffer } {
  const data = randomBytes(bytes)
  const sha256 = createHash('sha256').update(data).digest('hex')
  const stream = () =>
    Readable.from(
      (function* () {
        for (let i = 0; i < data.length; i += piece) yield data.subarray(i, i + piece)
      })(),
    )
  return { stream, sha256, data }
}

export function testManifest(id: string, objects: ObjectRef[], at = new Date()): ManifestBase {
  return {
    format: 'tidemark-repository',
    version: 1,
    id,
    source: 'clickhouse',
    method: 'test',
    startedAt: at.toISOString(),
    endedAt: at.toISOString(),
    objects,
  }
}
