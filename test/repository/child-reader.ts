// Run as a separate process by repository.test.ts: opens a repository and prints
// what it reads, proving the format is readable by a process that did not write it.
import { createHash } from 'node:crypto'
import { createFsSink } from '../../src/sinks/fs.ts'
import { openRepository } from '../../src/engine/repository/index.ts'

const [root, passphrase] = process.argv.slice(2) as [string, string | undefined]
const repo = await openRepository(createFsSink(root), { passphrase: passphrase || undefined })
const out: Record<string, unknown> = { info: await repo.info(), backups: [] as unknown[] }
for (const id of await repo.listManifestIds('clickhouse')) {
  const m = await repo.readManifest('clickhouse', id)
  const hashes = []
  for (const ref of m.objects) {
    const h = createHash('sha256')
    for await (const c of await repo.readObject(ref)) h.update(c as Buffer)
    hashes.push(h.digest('hex'))
  }
  ;(out.backups as unknown[]).push({ id, hashes })
}
await repo.close()
process.stdout.write(JSON.stringify(out))
