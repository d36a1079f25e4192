// Run as a separate process by repository.test.ts: takes the writer lease, says so,
// and holds it until its stdin closes.
import { createFsSink } from '../../src/sinks/fs.ts'
import { openRepository } from '../../src/engine/repository/index.ts'

const [root] = process.argv.slice(2) as [string]
const repo = await openRepository(createFsSink(root), { leaseTtlSeconds: 5 })
const lease = await repo.lock('test writer')
process.stdout.write('locked\n')
process.stdin.resume()
process.stdin.on('end', async () => {
  await lease.release()
  await repo.close()
  process.exit(0)
})
