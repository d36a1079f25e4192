import t from 'tap'
import { deletesOnly, keepFromDdl, type Mutation, type MutationLog } from '../../src/engine/clickhouse/mutations.ts'

const m = (number: number, command: string, partitionId = '', done = true): Mutation => ({ command, done, blocks: [{ partitionId, number: BigInt(number) }] })
const log = (mutations: Mutation[], keep: number | null = 100): MutationLog => ({ mutations, keep: keep ?? undefined })
const DEL = 'DELETE WHERE d = \'2024-01-05\''
const UPD = 'UPDATE s = \'x\' WHERE id = 1'

// Each case: the log, the partition, the lowest block of the earlier state and the new mutation version → proof or not.
const cases: { what: string; log: MutationLog; partition?: string; lo: number; hi: number; expect: boolean }[] = [
  { what: 'one DELETE since: proven', log: log([m(20, DEL)]), lo: 3, hi: 20, expect: true },
  { what: 'an UPDATE since: no proof', log: log([m(20, UPD)]), lo: 3, hi: 20, expect: false },
  { what: 'a lightweight delete (an UPDATE of _row_exists): no proof', log: log([m(20, 'UPDATE _row_exists = 0 WHERE id = 1')]), lo: 3, hi: 20, expect: false },
  { what: 'DELETE then UPDATE: no proof', log: log([m(20, DEL), m(25, UPD)]), lo: 3, hi: 25, expect: false },
  { what: 'an UPDATE older than the partition’s blocks does not count', log: log([m(2, UPD), m(20, DEL)]), lo: 3, hi: 20, expect: true },
  { what: 'an UPDATE not yet applied (above the new version) does not count', log: log([m(20, DEL), m(30, UPD, '', false)]), lo: 3, hi: 20, expect: true },
  { what: 'the mutation that set the version is not on record: no proof', log: log([m(19, DEL)]), lo: 3, hi: 20, expect: false },
  { what: 'another partition’s UPDATE (replicated numbering) does not count', log: log([{ command: UPD, done: true, blocks: [{ partitionId: '20240102', number: 20n }] }, { command: DEL, done: true, blocks: [{ partitionId: '20240101', number: 20n }] }]), partition: '20240101', lo: 3, hi: 20, expect: true },
  { what: 'finished mutations reached the bound and none as old as the partition is left: no proof (some may be forgotten)', log: log([m(20, DEL), m(21, DEL)], 2), lo: 3, hi: 21, expect: false },
  { what: 'bound reached, but one at or below the start is still listed: proven', log: log([m(3, UPD), m(20, DEL), m(21, DEL)], 3), lo: 3, hi: 21, expect: true },
  { what: 'bound unknown and nothing as old as the partition listed: no proof', log: log([m(20, DEL)], null), lo: 3, hi: 20, expect: false },
  { what: 'unfinished mutations do not count towards the bound', log: log([m(20, DEL), m(21, DEL, '', false)], 2), lo: 3, hi: 21, expect: true },
  { what: 'command text is matched as the server prints it, any case', log: log([m(20, 'delete where x = 1')]), lo: 3, hi: 20, expect: true },
]

for (const c of cases) {
  t.test(c.what, async (t) => {
    t.equal(deletesOnly(c.log, c.partition ?? '20240101', BigInt(c.lo), BigInt(c.hi)), c.expect)
  })
}

t.test('finished_mutations_to_keep from the DDL', async (t) => {
  t.equal(keepFromDdl('CREATE TABLE a.b (x UInt8) ENGINE = MergeTree ORDER BY x SETTINGS index_granularity = 8192, finished_mutations_to_keep = 7'), 7)
  t.equal(keepFromDdl('CREATE TABLE a.b (x UInt8) ENGINE = MergeTree ORDER BY x SETTINGS index_granularity = 8192'), undefined)
})
