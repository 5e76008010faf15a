"""Escape attempts against the SQL page's gate: each query with a fragment of the reason it must be refused
for. `secret` stands for a table of the warehouse's database that is not perfhouse's (the tests plant one
holding the row 'real'); the warehouse's database is `perfhouse` in the unit tests."""

from __future__ import annotations

NOT_OURS = "only perfhouse's own tables"
NO_SECRET = "no table 'secret'"
NOT_AVAILABLE = "is not available on the SQL page"
TABLE_FUNCTION = "table functions are not allowed"

# The escapes of issue 22 and their variants: IN, CTE scoping, subqueries, aliases, case, quoting, look-alikes.
ESCAPES: list[tuple[str, str]] = [
    ("SELECT 'UTC' IN system.time_zones, 0 IN system.one", "IN system.time_zones reads a table"),
    ("SELECT * FROM (WITH secret AS (SELECT 'decoy' AS s) SELECT s FROM secret) a CROSS JOIN secret b", NO_SECRET),
    ("SELECT 'real' IN secret_tbl", "IN secret_tbl reads a table"),
    ("SELECT (SELECT any(s) FROM secret) AS leak", NO_SECRET),
    ("SELECT hasColumnInTable('system', 'one', 'dummy')", "hasColumnInTable() " + NOT_AVAILABLE),
    ("SELECT 'real' IN (secret)", "IN secret reads a table"),
    ("SELECT 'real' IN ((secret))", "IN secret reads a table"),
    ("SELECT 'real' NOT IN secret", "IN secret reads a table"),
    ("SELECT 'real' GLOBAL IN secret", "IN secret reads a table"),
    ("SELECT 0 GLOBAL NOT IN system.one", "IN system.one reads a table"),
    ("SELECT run_id FROM runs WHERE 'real' IN default.secret", "IN default.secret"),
    ("SELECT 'real' IN `secret`", "reads a table: no table 'secret'"),
    ('SELECT 0 IN "system"."one"', "reads a table: \"system\".\"one\": " + NOT_OURS),
    ("SELECT 0 IN system.one AS leak FROM runs", "IN system.one reads a table"),
    ("SELECT notIn(0, system.one)", "notIn() " + NOT_AVAILABLE),
    ("SELECT globalIn('real', secret)", "globalIn() " + NOT_AVAILABLE),
    ("SELECT `in`('real', secret)", "in() " + NOT_AVAILABLE),
    ("SELECT nullIn('real', secret)", "nullIn() " + NOT_AVAILABLE),
    ("SELECT run_id FROM runs WHERE 0 IN (SELECT dummy FROM system.one)", NOT_OURS),
    ("SELECT (SELECT count() FROM secret), s FROM (WITH secret AS (SELECT 1 AS s) SELECT s FROM secret)", NO_SECRET),
    ("SELECT run_id FROM runs WHERE run_id IN (WITH secret AS (SELECT 'a' AS r) SELECT r FROM secret) "
     "AND 'real' IN secret", "IN secret reads a table"),
    ("WITH 1 AS secret SELECT * FROM secret", NO_SECRET),
    ("WITH (SELECT 'x') AS secret SELECT * FROM secret", NO_SECRET),
    ("WITH Secret AS (SELECT 'decoy' AS s) SELECT s FROM secret", NO_SECRET),
    ("WITH secret AS (SELECT * FROM secret) SELECT * FROM secret", NO_SECRET),
    ("WITH a AS (SELECT * FROM secret), secret AS (SELECT 'decoy' AS s) SELECT * FROM a", NO_SECRET),
    ("WITH \u0455ecret AS (SELECT 'decoy' AS s) SELECT s FROM secret", NO_SECRET),  # Cyrillic dze
    ("WITH runs AS (SELECT * FROM secret) SELECT * FROM runs", NO_SECRET),
    ("SELECT * FROM runs AS r JOIN (SELECT * FROM system.one) AS o ON 1", NOT_OURS),
    ("SELECT * FROM runs WHERE EXISTS (SELECT 1 FROM system.users)", NOT_OURS),
    ("SELECT * FROM secret AS runs", NO_SECRET),
    ("SELECT * FROM (SELECT * FROM (SELECT * FROM system.processes))", NOT_OURS),
    ("SELECT * FROM runs LIMIT (SELECT count() FROM secret)", NO_SECRET),
    ("SELECT t FROM runs ARRAY JOIN (SELECT groupArray(name) FROM system.tables) AS t", NOT_OURS),
    ("SELECT * FROM runs WHERE run_id = ANY (SELECT name FROM system.databases)", NOT_OURS),
    ("SELECT * FROM runs ORDER BY (SELECT count() FROM system.parts)", NOT_OURS),
    ("SELECT * FROM SYSTEM.ONE", NOT_OURS),
    ("SELECT * FROM `system`.`one`", NOT_OURS),
    ('SELECT * FROM "system"."one"', NOT_OURS),
    ("SELECT * FROM `system.one`", "no table 'system.one'"),
    ("SELECT * FROM Runs", "no table 'Runs'"),
    ("SELECT * FROM r\u057dns", "no table"),  # Armenian u
    ("SELECT * FROM \uff53\uff59\uff53\uff54\uff45\uff4d.one", NOT_OURS),  # full-width letters
    ("SELECT * FROM INFORMATION_SCHEMA.TABLES", NOT_OURS),
    ("SELECT * FROM information_schema.columns", NOT_OURS),
    ("SELECT * FROM other.runs", NOT_OURS),
    ("SELECT * FROM PERFHOUSE.runs", NOT_OURS),
    ("SELECT * FROM perfhouse.secret", NO_SECRET),
    ("SELECT * FROM elsewhere.perfhouse.runs", NOT_OURS),
    ("SELECT * FROM runs AS r, secret AS s", NO_SECRET),
    ("SELECT * FROM runs UNION ALL SELECT * FROM secret", NO_SECRET),
    ("SELECT * FROM runs INTERSECT SELECT * FROM system.one", NOT_OURS),
    ("SELECT * FROM runs LEFT JOIN secret USING (run_id)", NO_SECRET),
    ("SELECT * FROM runs PASTE JOIN secret", NO_SECRET),
]

# Functions reading outside the rows: dictionaries, Join tables, files, settings, the server, the caller.
FUNCTIONS: list[str] = [
    "dictGet('users', 'name', toUInt64(1))", "dictGetString('users', 'name', toUInt64(1))",
    "dictGetOrDefault('users', 'name', toUInt64(1), '')", "dictHas('users', toUInt64(1))",
    "dictGetHierarchy('users', toUInt64(1))", "dictIsIn('users', toUInt64(1), toUInt64(2))",
    "DICTGET('users', 'name', toUInt64(1))", "`dictGet`('users', 'name', toUInt64(1))",
    "dictGetIf('users', 'name', toUInt64(1))", "joinGet('j', 'v', 1)", "joinGetOrNull('j', 'v', 1)",
    "file('/etc/passwd')", "getSetting('readonly')", "getSettingOrDefault('readonly', 0)",
    "getServerSetting('path')", "getMacro('shard')", "currentDatabase()", "currentUser()", "user()",
    "currentRoles()", "currentProfiles()", "version()", "uptime()", "hostName()", "fqdn()", "tcpPort()",
    "serverUUID()", "getServerPort('tcp_port')", "shardNum()", "filesystemAvailable()", "buildId()",
    "catboostEvaluate('/tmp/model.bin', 1)", "naiveBayesClassifier('m', 'x')", "sleep(3)", "sleepEachRow(1)",
    "addressToSymbol(toUInt64(1))", "getClientHTTPHeader('Authorization')", "queryID()", "timezone()",
    "throwIf(1)", "arrayMap(x -> dictGet('users', 'name', x), [toUInt64(1)])",
    # bare names ClickHouse calls as functions
    "currentDatabase", "`currentUser`", "SESSION_USER", "DATABASE", "user", "currentRequestURL",
]

# Every table function ClickHouse has that reads something: files, the network, other servers, other tables.
TABLE_FUNCTIONS: list[str] = [
    "file('/etc/passwd', 'LineAsString', 'line String')", "url('http://127.0.0.1:1/x.csv', 'CSV', 'a String')",
    "urlCluster('c', 'http://127.0.0.1:1/x.csv')", "s3('https://bucket.s3.amazonaws.com/x.csv')",
    "s3Cluster('c', 'https://bucket.s3.amazonaws.com/x.csv')", "gcs('https://storage.googleapis.com/b/x.csv')",
    "azureBlobStorage('DefaultEndpointsProtocol=https', 'c', 'x.csv')", "hdfs('hdfs://x/y', 'CSV', 'a String')",
    "remote('127.0.0.1:9000', system.one)", "remoteSecure('127.0.0.1:9440', default.runs)",
    "cluster('c', default.runs)", "clusterAllReplicas('c', default.runs)", "merge('default', '.*')",
    "numbers(1000000000000)", "numbers_mt(10)", "zeros(10)", "generateRandom('a String')",
    "generate_series(1, 10)", "mysql('127.0.0.1:3306', 'db', 'users', 'root', 'pw')",
    "postgresql('127.0.0.1:5432', 'db', 'users', 'postgres', 'pw')", "sqlite('/tmp/x.db', 't')",
    "mongodb('127.0.0.1:27017', 'db', 'c', 'u', 'p', 'a String')", "redis('127.0.0.1:6379', 'k', 'k String')",
    "jdbc('jdbc:x', 'db', 't')", "odbc('dsn', 'db', 't')", "executable('evil.sh', 'TSV', 'a String')",
    "input('a String')", "format(JSONEachRow, '{\"a\": 1}')", "view(SELECT * FROM runs)",
    "null('a String')",
    "loop(system.one)", "iceberg('s3://b/t')", "deltaLake('s3://b/t')", "hudi('s3://b/t')",
    "fuzzJSON('{}', 1)", "mergeTreeIndex(default, runs)", "icebergS3('s3://b/t')",
]

SYSTEM_TABLES: list[str] = [
    "one", "numbers", "numbers_mt", "zeros", "tables", "columns", "databases", "users", "roles", "grants",
    "role_grants", "settings", "server_settings", "processes", "query_log", "query_thread_log", "parts",
    "parts_columns", "clusters", "macros", "disks", "storage_policies", "functions", "dictionaries",
    "mutations", "replicas", "zookeeper", "metrics", "events", "asynchronous_metrics", "errors", "text_log",
    "trace_log", "crash_log", "filesystem_cache", "contributors", "licenses", "time_zones", "quotas",
    "quota_usage", "row_policies", "settings_profiles", "user_directories", "build_options",
    "named_collections", "backups", "certificates", "stack_trace", "detached_parts", "session_log",
]

# Settings tricks, other statements, several statements, comments, output redirection, parameters.
STATEMENTS: list[tuple[str, str]] = [
    ("SELECT * FROM runs SETTINGS readonly = 0", "SETTINGS are not allowed"),
    ("SELECT * FROM (SELECT * FROM requests SETTINGS max_execution_time = 0)", "SETTINGS are not allowed"),
    ("WITH r AS (SELECT * FROM runs SETTINGS max_result_rows = 0) SELECT * FROM r", "SETTINGS are not allowed"),
    ("SELECT * FROM runs WHERE run_id IN (SELECT run_id FROM requests SETTINGS readonly = 0)",
     "SETTINGS are not allowed"),
    ("SET readonly = 0", "only SELECT is allowed, found SET"),
    ("SELECT 1; SELECT * FROM system.one", "one statement only"),
    ("SELECT 1 /* ; */; DROP TABLE runs", "one statement only"),
    ("SELECT * FROM runs -- a note\n; SELECT * FROM system.one", "one statement only"),
    ("SELECT * FROM runs FORMAT TSV", "FORMAT is not allowed"),
    ("SELECT * FROM runs INTO OUTFILE '/tmp/x.csv'", "not a query perfhouse can check"),
    ("SELECT * FROM {t:Identifier}", "query parameters"),
    ("SELECT {secret:String}", "query parameters"),
    ("DESCRIBE TABLE system.one", "only SELECT is allowed"),
    ("SHOW CREATE TABLE runs", "only SELECT is allowed"),
    ("EXISTS TABLE system.one", "not a query perfhouse can check"),
    ("SELECT * FROM viewIfPermitted(SELECT * FROM secret ELSE null('a String'))", "not a query perfhouse can check"),
    ("EXPLAIN SELECT * FROM system.one", "only SELECT is allowed"),
    ("INSERT INTO runs SELECT * FROM runs", "only SELECT is allowed, found INSERT"),
    ("SELECT " + "(" * 5000 + "1" + ")" * 5000, "not a query perfhouse can check"),
    ("SELECT " + "abs(" * 3000 + "1" + ")" * 3000, "it nests too deeply"),
    ("SELECT formatRow('Protobuf', run_id) FROM runs", "formatRow() is not available"),
]


def all_attacks() -> list[tuple[str, str]]:
    """Every escape attempt with its reason fragment."""
    return [*ESCAPES,
            *[(f"SELECT {f} AS leak", NOT_AVAILABLE) for f in FUNCTIONS],
            *[(f"SELECT * FROM {f}", TABLE_FUNCTION) for f in TABLE_FUNCTIONS],
            *[(f"SELECT * FROM system.{t}", NOT_OURS) for t in SYSTEM_TABLES],
            *STATEMENTS]
