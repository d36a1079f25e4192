/**
 * Configuration files for a throwaway clickhouse-server: everything under one
 * directory, loopback only, no ZooKeeper, small caches (the test machine is
 * shared), a `default` user without password and a second user with one (for
 * authentication tests), and a one-shard cluster pointing at the server itself
 * so tests can create Distributed tables.
 */

/** Ports and paths of one server instance. */
export interface ClickHouseLayout {
  dir: string
  httpPort: number
  tcpPort: number
  interserverPort: number
  user: string
  password: string
}

/** Cluster name (in `remote_servers`) that points at the server itself. */
export const LOCAL_CLUSTER = 'tidemark_local'

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** The server's main config.xml (the `<yandex>` root is still accepted by modern servers). */
export function serverConfigXml(l: ClickHouseLayout): string {
  const d = xmlEscape(l.dir)
  return `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>${d}/log/server.log</log>
    <errorlog>${d}/log/server.err.log</errorlog>
    <size>10M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${l.httpPort}</http_port>
  <tcp_port>${l.tcpPort}</tcp_port>
  <interserver_http_port>${l.interserverPort}</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <path>${d}/data/</path>
  <tmp_path>${d}/tmp/</tmp_path>
  <user_files_path>${d}/user_files/</user_files_path>
  <format_schema_path>${d}/format_schemas/</format_schema_path>
  <users_config>${d}/users.xml</users_config>
  <dictionaries_config>${d}/dictionaries/*.xml</dictionaries_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <keep_alive_timeout>3</keep_alive_timeout>
  <mlock_executable>false</mlock_executable>
  <shutdown_wait_unfinished>1</shutdown_wait_unfinished>
  <max_table_size_to_drop>0</max_table_size_to_drop>
  <max_partition_size_to_drop>0</max_partition_size_to_drop>
  <remote_servers>
    <${LOCAL_CLUSTER}>
      <shard><replica><host>127.0.0.1</host><port>${l.tcpPort}</port></replica></shard>
    </${LOCAL_CLUSTER}>
  </remote_servers>
</yandex>
`
}

/** users.xml: `default` (no password) and the test user (plain-text password), loopback only. */
export function usersConfigXml(l: ClickHouseLayout): string {
  const user = (name: string, password: string) => `
    <${name}>
      <password>${xmlEscape(password)}</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </${name}>`
  return `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>${user('default', '')}${user(l.user, l.password)}
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`
}
