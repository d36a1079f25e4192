import t from 'tap'
import { checkPartFormat } from '../../src/engine/clickhouse/parts-restore.ts'
import { escapeForFileName } from '../../src/engine/clickhouse/parts-shadow.ts'
import { partitionOfPart, partKey } from '../../src/engine/clickhouse/parts-manifest.ts'

t.test('part format: same or newer target accepted, older refused', async (t) => {
  t.doesNotThrow(() => checkPartFormat('18.16.1', '18.16.1'))
  t.doesNotThrow(() => checkPartFormat('18.16.1', '19.3.4'))
  t.doesNotThrow(() => checkPartFormat('18.16.1', '18.16.1.2'))
  t.throws(() => checkPartFormat('19.3.4', '18.16.1'), { code: 'TM_ERR_CLICKHOUSE_ATTACH', message: /logical backup/ })
  t.throws(() => checkPartFormat('18.16.2', '18.16.1'), { code: 'TM_ERR_CLICKHOUSE_ATTACH' })
})

t.test('names as ClickHouse escapes them on disk', async (t) => {
  t.equal(escapeForFileName('.inner.mv_x'), '%2Einner%2Emv_x')
  t.equal(escapeForFileName('t-1 é'), 't%2D1%20%C3%A9')
  t.equal(escapeForFileName('20261128T123227Z-ch-0cb4'), '20261128T123227Z%2Dch%2D0cb4')
})

t.test('part keys and partition ids', async (t) => {
  t.equal(partitionOfPart('20240301_1_5_2_7'), '20240301')
  t.equal(partitionOfPart('all_1_1_0'), 'all')
  t.equal(partKey('ls', '.inner.mv', '202401_1_1_0', 'ab'.repeat(32)), 'data/clickhouse/parts/ls/%2Einner%2Emv/202401_1_1_0-abababababababab.part')
})
