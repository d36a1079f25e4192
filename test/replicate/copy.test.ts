import { createHash, randomBytes } from 'node:crypto'
import t from 'tap'
import { copyStreamed } from '../../src/engine/replicate/copy.ts'
import { readAll } from '../../src/engine/repository/index.ts'
import { startS3rver } from '../harness/s3rver.ts'
import { keysOf, s3Sink } from './helpers.ts'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

// One PutObject, and a multipart upload (over the sink's 8 MiB part size).
for (const [path, size] of [['one put', 3 * 1024 * 1024 + 17], ['multipart', 9 * 1024 * 1024 + 5]] as const) {
  t.test(`${path}: an intact object arrives byte for byte; a damaged, short or long one is refused and not left behind`, async (t) => {
    const [a, b] = await Promise.all([startS3rver(t), startS3rver(t)])
    const from = s3Sink(a, 'tm')
    const to = s3Sink(b, 'tm')
    t.teardown(async () => {
      await from.close()
      await to.close()
    })
    const bytes = randomBytes(size)
    await from.put('data/good', bytes)
    t.equal(await copyStreamed(from, to, { key: 'data/good', size, sha256: sha(bytes) }), size)
    t.ok((await readAll(await to.get('data/good'))).equals(bytes), 'same bytes at the target')
    t.equal(await copyStreamed(from, to, { key: 'data/good', size }), size, 'without a known sha256 too')

    const damaged = Buffer.from(bytes)
    damaged[size - 3]! ^= 0x40
    await from.put('data/damaged', damaged)
    await from.put('data/short', bytes.subarray(0, size - 1))
    await from.put('data/long', Buffer.concat([bytes, Buffer.from('x')]))
    const cases: [string, RegExp][] = [['data/damaged', /sha256 [0-9a-f]{64} instead of/], ['data/short', /bytes instead of/], ['data/long', /more than \d+ bytes/]]
    for (const [key, message] of cases) {
      await t.rejects(copyStreamed(from, to, { key, size, sha256: sha(bytes) }), { code: 'TM_ERR_INTEGRITY', message }, key)
    }
    t.same([...(await keysOf(to)).keys()], ['data/good'], 'nothing of the refused objects at the target')
  })
}
