"""The SQL page's gate: what it admits runs as regenerated SQL over perfhouse's tables; everything else is
refused with a one-line reason, one test per kind of refusal."""

from __future__ import annotations

import pytest
import sqlglot

from warehouse.sqlgate import Refused, admit, limited, warehouse_tables

TABLES = warehouse_tables()


def refused(sql: str, database: str = "perfhouse") -> str:
    with pytest.raises(Refused) as caught:
        admit(sql, TABLES, database)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_tables_are_those_the_migrations_create() -> None:
    assert {"runs", "requests", "k6_points", "infra_samples", "slo_results", "ingested_files", "aggregates",
            "tool_summaries", "schema_migrations"} <= TABLES
    assert not any(t.startswith("stage_") for t in TABLES)


@pytest.mark.parametrize("sql", [
    "SELECT * FROM runs",
    "select run_id, count() from requests group by run_id order by 2 desc limit 5;",
    "SELECT quantileExactInclusive(0.95)(duration_ms) FROM requests WHERE run_id = 'x'",
    "WITH recent AS (SELECT run_id FROM runs FINAL ORDER BY started_at DESC LIMIT 3) "
    "SELECT step, avg(duration_ms) FROM requests WHERE run_id IN (SELECT run_id FROM recent) GROUP BY step",
    "SELECT r.run_id, s.slo FROM runs AS r JOIN slo_results AS s ON s.run_id = r.run_id",
    "SELECT run_id FROM runs UNION ALL SELECT run_id FROM slo_results",
    "SELECT * FROM perfhouse.runs",
    "SELECT * FROM requests LIMIT 1 BY step",
    "SELECT k, count() FROM runs ARRAY JOIN mapKeys(labels) AS k GROUP BY k",
])
def test_one_select_over_perfhouse_tables_is_admitted(sql: str) -> None:
    admitted = admit(sql, TABLES, "perfhouse")
    assert admitted.tables and set(admitted.tables) <= TABLES
    # what runs is what was checked: it parses back to the same tree
    assert sqlglot.parse_one(admitted.sql, read="clickhouse") == sqlglot.parse_one(sql.rstrip(";"), read="clickhouse")


def test_a_comment_cannot_hide_anything_from_the_gate() -> None:
    admitted = admit("SELECT run_id FROM runs -- ; DROP TABLE runs\n", TABLES)
    assert admitted.sql == "SELECT run_id FROM runs"


@pytest.mark.parametrize(("sql", "reason"), [
    ("DROP TABLE runs", "only SELECT is allowed, found DROP"),
    ("INSERT INTO runs SELECT * FROM runs", "only SELECT is allowed, found INSERT"),
    ("INSERT INTO runs (run_id) VALUES ('x')", "only SELECT is allowed, found INSERT"),
    ("ALTER TABLE runs DELETE WHERE 1", "only SELECT is allowed, found ALTER"),
    ("ALTER TABLE requests UPDATE ok = 1 WHERE 1", "only SELECT is allowed, found ALTER"),
    ("DELETE FROM runs WHERE 1", "only SELECT is allowed, found DELETE"),
    ("TRUNCATE TABLE requests", "only SELECT is allowed"),
    ("CREATE TABLE x (a UInt8) ENGINE = Memory", "only SELECT is allowed, found CREATE"),
    ("SET readonly = 0", "only SELECT is allowed, found SET"),
    ("SYSTEM DROP MARK CACHE", "only SELECT is allowed"),
    ("KILL QUERY WHERE 1", "not a query perfhouse can check"),
    ("OPTIMIZE TABLE runs FINAL", "only SELECT is allowed"),
    ("EXPLAIN SELECT 1", "only SELECT is allowed, found EXPLAIN"),
    ("SHOW TABLES", "only SELECT is allowed, found SHOW"),
], ids=lambda v: v.split()[0] if " " in v else v)
def test_statements_other_than_select_are_refused(sql: str, reason: str) -> None:
    assert reason in refused(sql)


@pytest.mark.parametrize("sql", [
    "SELECT 1; DROP TABLE runs",
    "SELECT 1; SELECT 2",
    "SELECT * FROM runs;\nINSERT INTO runs SELECT * FROM runs",
])
def test_several_statements_are_refused(sql: str) -> None:
    assert "one statement only" in refused(sql)


@pytest.mark.parametrize("sql", [
    "SELECT * FROM runs SETTINGS readonly = 0",
    "SELECT * FROM runs SETTINGS max_execution_time = 100000, max_result_rows = 0",
    "SELECT * FROM (SELECT * FROM requests SETTINGS max_execution_time = 0)",
    "SELECT * FROM runs WHERE run_id IN (SELECT run_id FROM requests SETTINGS readonly = 0)",
])
def test_settings_tricks_are_refused(sql: str) -> None:
    assert "SETTINGS are not allowed" in refused(sql)


@pytest.mark.parametrize("function", [
    "file('/etc/passwd', 'LineAsString', 'line String')",
    "url('http://127.0.0.1:1/x.csv', 'CSV', 'a String')",
    "s3('https://bucket.s3.amazonaws.com/x.csv')",
    "remote('127.0.0.1:9000', system.one)",
    "remoteSecure('127.0.0.1:9440', default.runs)",
    "cluster('c', default.runs)",
    "clusterAllReplicas('c', default.runs)",
    "mysql('127.0.0.1:3306', 'db', 'users', 'root', 'pw')",
    "postgresql('127.0.0.1:5432', 'db', 'users', 'postgres', 'pw')",
    "executable('evil.sh', 'TSV', 'a String')",
    "input('a String')",
    "hdfs('hdfs://x/y', 'CSV', 'a String')",
    "jdbc('jdbc:x', 'db', 't')",
    "odbc('dsn', 'db', 't')",
    "mongodb('127.0.0.1:27017', 'db', 'c', 'u', 'p', 'a String')",
    "sqlite('/tmp/x.db', 't')",
    "merge('default', '.*')",
    "numbers(1000000000000)",
    "generateRandom('a String')",
    "view(SELECT * FROM runs)",
])
def test_table_functions_are_refused(function: str) -> None:
    name = function.split("(")[0]
    message = refused(f"SELECT * FROM {function}")
    assert "table functions are not allowed" in message and name in message


def test_a_table_function_sqlglot_reads_as_a_table_name_is_still_refused() -> None:
    assert "no table 'dictionary'" in refused("SELECT * FROM dictionary('users')")


def test_a_table_function_inside_a_subquery_is_refused() -> None:
    assert "table functions are not allowed (url)" in refused(
        "SELECT * FROM requests WHERE run_id IN (SELECT run_id FROM url('http://127.0.0.1:1/', 'CSV', 'run_id String'))")


@pytest.mark.parametrize("sql", [
    "SELECT file('/etc/passwd')",
    "SELECT dictGet('users', 'name', toUInt64(1))",
    "SELECT dictGetString('users', 'name', toUInt64(1))",
    "SELECT joinGet('j', 'v', 1)",
    "SELECT getSetting('max_memory_usage')",
    "SELECT catboostEvaluate('/tmp/model.bin', 1)",
])
def test_functions_reading_outside_the_tables_are_refused(sql: str) -> None:
    assert "reads outside perfhouse's tables" in refused(sql)


@pytest.mark.parametrize("sql", [
    "SELECT * FROM system.tables",
    "SELECT * FROM system.users",
    "SELECT * FROM `system`.`processes`",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM other.runs",
    "SELECT * FROM runs AS r JOIN system.parts AS p ON p.table = 'runs'",
])
def test_tables_of_other_databases_are_refused(sql: str) -> None:
    assert "only perfhouse's own tables" in refused(sql)


def test_unknown_tables_are_refused_naming_the_known_ones() -> None:
    message = refused("SELECT * FROM stage_0123456789abcdef0123456789abcdef")
    assert "no table 'stage_0123456789abcdef0123456789abcdef'" in message and "requests" in message


@pytest.mark.parametrize(("sql", "reason"), [
    ("SELECT * FROM runs FORMAT CSV", "FORMAT is not allowed"),
    ("SELECT * FROM runs INTO OUTFILE '/tmp/x.csv'", "not a query perfhouse can check"),
    ("SELECT {run:String}", "query parameters"),
    ("", "no query"),
    ("  ;  ", "no query"),
    ("SELEC * FROM runs", "not a query perfhouse can check"),
])
def test_other_clauses_and_malformed_text_are_refused(sql: str, reason: str) -> None:
    assert reason in refused(sql)


def test_limited_adds_readonly_and_the_limits_as_the_statement_settings() -> None:
    sql = limited(admit("SELECT * FROM requests", TABLES), row_limit=1000, timeout_s=5)
    assert sql.startswith("SELECT * FROM requests LIMIT 1000 SETTINGS readonly = 1, max_execution_time = 5")
    assert "max_result_rows = 1000" in sql and "result_overflow_mode = 'break'" in sql
    tree = sqlglot.parse_one(sql, read="clickhouse")
    assert len(tree.args["settings"]) == 6


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT * FROM requests LIMIT 5", "SELECT * FROM requests LIMIT 5 SETTINGS"),  # the user's own limit stays
    ("SELECT * FROM requests LIMIT 5 OFFSET 10", "SELECT * FROM requests LIMIT 5 OFFSET 10 SETTINGS"),
    ("SELECT step FROM requests LIMIT 1 BY step", "SELECT step FROM requests LIMIT 1 BY step SETTINGS"),
    ("SELECT run_id FROM runs UNION ALL SELECT run_id FROM runs", "SELECT run_id FROM runs UNION ALL SELECT run_id FROM runs SETTINGS"),
    ("SELECT step FROM requests ORDER BY ts DESC", "SELECT step FROM requests ORDER BY ts DESC LIMIT 100 SETTINGS"),
])
def test_a_select_without_a_limit_gets_the_row_limit(sql: str, expected: str) -> None:
    assert limited(admit(sql, TABLES), row_limit=100).startswith(expected)
