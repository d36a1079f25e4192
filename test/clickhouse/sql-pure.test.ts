import t from 'tap'
import { bindParams, literal, quoteIdent, quoteString } from '../../src/engine/clickhouse/names.ts'
import { clickhouseSettingsFromEnv, clickhouseUrl, endpointOf } from '../../src/engine/clickhouse/connection.ts'
import { trailingException } from '../../src/engine/clickhouse/stream-guard.ts'
import { serverCode, toClickHouseError } from '../../src/engine/clickhouse/driver-errors.ts'
import { digestSql, exportSql, hashArgs, insertNativeSql, partitionPredicate } from '../../src/engine/clickhouse/export-sql.ts'
import type { ColumnInfo } from '../../src/engine/clickhouse/catalog.ts'

t.test('quoting and client-side parameters', async (t) => {
  t.equal(quoteIdent('we`ird.na me\\'), '`we\\`ird.na me\\\\`')
  t.equal(quoteString("a'b\\c\n"), "'a\\'b\\\\c\n'")
  t.equal(literal(['x', 1, 2n, true]), "['x', 1, 2, 1]")
  t.throws(() => literal(Number.NaN), { code: 'TM_ERR_INTERNAL' })
  t.equal(bindParams('SELECT {a:String}, {b:Array(UInt8)}, {a:String}', { a: "o'k", b: [1, 2] }), "SELECT 'o\\'k', [1, 2], 'o\\'k'")
  t.throws(() => bindParams('SELECT {missing:String}', {}), { code: 'TM_ERR_INTERNAL' })
  t.equal(bindParams('SELECT {a:String}', undefined), 'SELECT {a:String}', 'no params: text untouched')
})

t.test('LangSmith environment names', async (t) => {
  t.same(clickhouseSettingsFromEnv({}), {})
  t.same(
    clickhouseSettingsFromEnv({ CLICKHOUSE_HOST: ' ch.svc ', CLICKHOUSE_PORT: '8443', CLICKHOUSE_USER: 'u', CLICKHOUSE_PASSWORD: ' p w ', CLICKHOUSE_DB: 'default', CLICKHOUSE_TLS: 'true' }),
    { host: 'ch.svc', port: 8443, user: 'u', password: ' p w ', database: 'default', tls: true },
  )
  t.same(clickhouseSettingsFromEnv({ CLICKHOUSE_TLS: '0', CLICKHOUSE_PORT: '' }), { tls: false })
  t.throws(() => clickhouseSettingsFromEnv({ CLICKHOUSE_PORT: '80a' }), { code: 'TM_ERR_CONFIG_INVALID', message: /CLICKHOUSE_PORT/ })
  t.throws(() => clickhouseSettingsFromEnv({ CLICKHOUSE_PORT: '70000' }), { code: 'TM_ERR_CONFIG_INVALID' })
  t.throws(() => clickhouseSettingsFromEnv({ CLICKHOUSE_TLS: 'maybe' }), { code: 'TM_ERR_CONFIG_INVALID', message: /CLICKHOUSE_TLS/ })
  t.equal(clickhouseUrl('ch', 8123, false), 'http://ch:8123')
  t.equal(clickhouseUrl('::1', 8443, true), 'https://[::1]:8443')
  t.equal(endpointOf('https://user:secret@ch.example:8443/x'), 'ch.example:8443')
  t.equal(endpointOf('http://ch'), 'ch:80')
})

t.test('exceptions at the end of a streamed body', async (t) => {
  const body = (s: string) => Buffer.concat([Buffer.from([0, 1, 2, 255]), Buffer.from(s)])
  t.match(trailingException(body('Code: 395, e.displayText() = DB::Exception: Value passed to \'throwIf\' function is non zero, e.what() = DB::Exception\n'), undefined), /^Code: 395/)
  t.match(trailingException(body('Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED) (version 24.3.1.1)\n'), undefined), /MEMORY_LIMIT_EXCEEDED/)
  t.equal(trailingException(body('plain data ending normally'), undefined), undefined)
  t.equal(trailingException(body('Code: 12 is not an exception'), undefined), undefined)
  t.equal(trailingException(body('Code: 1, e.displayText() = DB::Exception: x\0more binary'), undefined), undefined, 'binary after the text: not a trailing message')
  const tagged = body('\r\n__exception__\r\nTAG123\r\nCode: 60. DB::Exception: boom (UNKNOWN_TABLE)\n44 TAG123\r\n__exception__\r\n')
  t.match(trailingException(tagged, 'TAG123'), /boom/)
  t.equal(trailingException(body('Code: 60. DB::Exception: boom'), 'TAG123'), undefined, 'with a tag, only the tagged frame counts')
})

t.test('error mapping', async (t) => {
  const ctx = { endpoint: 'h:1', user: 'u', sql: 'SELECT 1' }
  t.equal(serverCode('Code: 193, e.displayText() = …'), 193)
  t.equal(serverCode('Code: 516. DB::Exception: …'), 516)
  t.equal(toClickHouseError(new Error('Code: 516. DB::Exception: u: Authentication failed (AUTHENTICATION_FAILED)'), ctx).code, 'TM_ERR_CLICKHOUSE_AUTH')
  t.equal(toClickHouseError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), ctx).code, 'TM_ERR_CLICKHOUSE_UNREACHABLE')
  t.equal(toClickHouseError(new Error('Timeout error.'), ctx).code, 'TM_ERR_CLICKHOUSE_UNREACHABLE')
  const q = toClickHouseError(new Error('Code: 62. DB::Exception: Syntax error'), ctx)
  t.equal(q.code, 'TM_ERR_CLICKHOUSE_QUERY')
  t.same(q.details, { endpoint: 'h:1', serverCode: 62, statement: 'SELECT 1' })
  t.equal(toClickHouseError(Object.assign(new Error('This operation was aborted'), { name: 'AbortError' }), ctx).code, 'TM_ERR_ABORTED')
})

t.test('export, insert and digest SQL', async (t) => {
  const columns: ColumnInfo[] = [
    { name: 'd', type: 'Date', defaultKind: '', defaultExpression: '' },
    { name: 'n', type: 'Nullable(String)', defaultKind: '', defaultExpression: '' },
    { name: 'u', type: 'UUID', defaultKind: 'DEFAULT', defaultExpression: 'generateUUIDv4()' },
    { name: 'm', type: 'UInt8', defaultKind: 'MATERIALIZED', defaultExpression: '1' },
  ]
  const table = { database: 'db', name: 't', columns }
  t.equal(partitionPredicate({ partitionId: "2024'01" }), "_partition_id = '2024\\'01'")
  t.equal(partitionPredicate({ partitionId: 'all', parts: ['all_1_1_0', 'all_2_2_0'] }), "_partition_id = 'all' AND _part IN ('all_1_1_0', 'all_2_2_0')")
  t.equal(exportSql(table, '1'), 'SELECT `d`, `n`, `u` FROM `db`.`t` WHERE 1', 'MATERIALIZED columns are recomputed on insert, not exported')
  t.equal(insertNativeSql(table, 'other'), 'INSERT INTO `other`.`t` (`d`, `n`, `u`) FORMAT Native')
  t.equal(hashArgs({ name: 'lc', type: 'LowCardinality(Nullable(String))' }), "isNull(`lc`), ifNull(toString(`lc`), '')")
  t.equal(hashArgs({ name: 'dt', type: "DateTime('UTC')" }), '`dt`')
  t.equal(digestSql(table), "SELECT count() AS rows, sum(cityHash64(`d`, isNull(`n`), ifNull(toString(`n`), ''), toString(`u`))) AS digest FROM `db`.`t`")
})
