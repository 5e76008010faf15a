"""The SQL page's gate: what it admits runs as regenerated SQL over perfhouse's tables; everything else is
refused with a one-line reason, one test per kind of refusal."""

from __future__ import annotations

import pytest
import sqlglot

from dashboard.pages import _EXAMPLE_SQL
from tests.support.grafana import expand, grafana_targets
from tests.support.sql_attacks import ESCAPES, SYSTEM_TABLES, TABLE_FUNCTIONS, all_attacks
from tests.support.sql_attacks import FUNCTIONS as ESCAPING_FUNCTIONS
from warehouse.read.sqlgate import (
    AGGREGATES,
    FUNCTIONS,
    Refused,
    admit,
    allowed_function,
    limited,
    warehouse_tables,
)

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


def test_a_table_function_sqlglot_reads_as_a_table_name_is_still_refused() -> None:
    assert "no table 'dictionary'" in refused("SELECT * FROM dictionary('users')")


def test_a_table_function_inside_a_subquery_is_refused() -> None:
    assert "table functions are not allowed (url)" in refused(
        "SELECT * FROM requests WHERE run_id IN (SELECT run_id FROM url('http://127.0.0.1:1/', 'CSV', 'run_id String'))")


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


def test_at_least_75_escape_attempts_are_each_refused_with_their_reason() -> None:
    attacks = all_attacks()
    assert len(attacks) >= 75 and len({sql for sql, _ in attacks}) == len(attacks)
    for sql, reason in attacks:
        message = refused(sql)
        assert reason in message, (sql, message)


@pytest.mark.parametrize(("sql", "expected"), [
    ("WITH recent AS (SELECT run_id FROM runs FINAL ORDER BY started_at DESC LIMIT 3) "
     "SELECT step, avg(duration_ms) FROM requests WHERE run_id IN (SELECT run_id FROM recent) GROUP BY step",
     "WITH recent__cte1 AS (SELECT run_id FROM runs FINAL ORDER BY started_at DESC LIMIT 3) "
     "SELECT step, avg(duration_ms) FROM requests WHERE run_id IN (SELECT run_id FROM recent__cte1 AS recent) "
     "GROUP BY step"),
    ("WITH r AS (SELECT run_id FROM runs) SELECT r.run_id FROM r WHERE run_id IN r",
     "WITH r__cte1 AS (SELECT run_id FROM runs) SELECT r.run_id FROM r__cte1 AS r WHERE run_id IN r__cte1"),
    ("WITH runs AS (SELECT run_id FROM runs FINAL) SELECT * FROM runs AS x",
     "WITH runs__cte1 AS (SELECT run_id FROM runs FINAL) SELECT * FROM runs__cte1 AS x"),
    ("SELECT * FROM (WITH a AS (SELECT 1 AS n) SELECT n FROM a) AS s, (WITH a AS (SELECT 2 AS n) SELECT n FROM a) AS t",
     "SELECT * FROM (WITH a__cte1 AS (SELECT 1 AS n) SELECT n FROM a__cte1 AS a) AS s CROSS JOIN "
     "(WITH a__cte2 AS (SELECT 2 AS n) SELECT n FROM a__cte2 AS a) AS t"),
    ("WITH RECURSIVE c AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM c WHERE n < 3) SELECT n FROM c",
     "WITH RECURSIVE c__cte1 AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM c__cte1 AS c WHERE n < 3) "
     "SELECT n FROM c__cte1 AS c"),
])
def test_a_cte_runs_under_a_name_of_its_own_where_it_is_visible(sql: str, expected: str) -> None:
    """A CTE counts only in the query defining it; renamed, it cannot stand for a real table should
    ClickHouse scope it otherwise."""
    assert admit(sql, TABLES, "perfhouse").sql == expected


def test_a_table_under_array_join_read_as_a_column_by_sqlglot_is_still_a_table() -> None:
    assert "only perfhouse's own tables" in refused(
        "SELECT t FROM runs ARRAY JOIN (SELECT groupArray(name) FROM system.tables) AS t")
    admitted = admit("SELECT t FROM runs ARRAY JOIN (SELECT groupArray(run_id) FROM runs) AS t", TABLES)
    assert admitted.tables == ("runs",)


def test_in_a_perfhouse_table_or_a_list_is_admitted() -> None:
    assert admit("SELECT run_id FROM requests WHERE run_id IN runs", TABLES, "perfhouse").tables == ("requests", "runs")
    assert admit("SELECT 1 IN perfhouse.runs", TABLES, "perfhouse").tables == ("runs",)
    assert admit("SELECT step FROM requests WHERE step IN ('a', 'b') AND status IN (200)", TABLES).tables == (
        "requests",)


@pytest.mark.parametrize("sql", [
    _EXAMPLE_SQL,
    *[expand(t["rawSql"]) for _, t in grafana_targets()],
    "SELECT CASE WHEN ok THEN 'ok' ELSE 'error' END AS outcome, CAST(status AS String), toDate(ts), if(ok, 1, 0), "
    "has([1], 1), dateTrunc('day', ts), (1, 2), ts + INTERVAL 1 DAY, step || '!', status::Int32, "
    "EXTRACT(DAY FROM ts), map('a', 1), [1, 2][1], coalesce(error, ''), -duration_ms, NOT ok, status % 100, "
    "duration_ms BETWEEN 1 AND 2, url LIKE '%/api/%', url ILIKE '%x%', error IS NULL, ok ? 1 : 0, "
    "toStartOfInterval(ts, INTERVAL 5 SECOND), arrayMap(x -> x + 1, [1]), formatDateTime(ts, '%F'), "
    "JSONExtractString('{\"a\": \"b\"}', 'a'), domain(url), cityHash64(url), round(duration_ms, 1) FROM requests",
    "SELECT stddevPop(duration_ms), quantilesExactInclusive(0.5, 0.9)(duration_ms), countIfOrNull(ok = 0), "
    "sumArray([1]), uniqExactIf(step, ok = 1), avgState(duration_ms), groupArrayIf(10)(status, ok = 0), "
    "mannWhitneyUTest(duration_ms, ok), topK(5)(step), argMax(step, duration_ms) FROM requests",
    "SELECT run_id, ts, row_number() OVER (PARTITION BY run_id ORDER BY ts) AS n, "
    "lagInFrame(duration_ms) OVER (ORDER BY ts) AS previous FROM requests",
    "SELECT k, count() FROM runs ARRAY JOIN mapKeys(labels) AS k GROUP BY k",
    "SELECT run_id FROM runs WHERE EXISTS (SELECT 1 FROM requests WHERE requests.run_id = runs.run_id)",
], ids=lambda v: v[:40])
def test_what_users_write_and_the_dashboard_offers_is_admitted(sql: str) -> None:
    admitted = admit(sql, TABLES, "perfhouse")
    assert admitted.tables and set(admitted.tables) <= TABLES
    # what runs parses back to a query the gate admits, reading the same tables
    assert admit(admitted.sql, TABLES, "perfhouse").tables == admitted.tables


_NESTED = [
    "SELECT * FROM runs WHERE run_id IN ({})",
    "SELECT ({}) AS x FROM runs",
    "WITH x AS ({}) SELECT * FROM x",
    "SELECT run_id FROM runs UNION ALL {}",
    "SELECT * FROM (SELECT * FROM ({})) AS deep",
    "SELECT * FROM runs WHERE EXISTS ({})",
]
_SELECTS = [sql for sql, _ in ESCAPES if sql.startswith("SELECT ") and ";" not in sql] + \
    [f"SELECT {f}" for f in ESCAPING_FUNCTIONS] + [f"SELECT * FROM {f}" for f in TABLE_FUNCTIONS] + \
    [f"SELECT * FROM system.{t}" for t in SYSTEM_TABLES]


@pytest.mark.parametrize("outer", _NESTED)
def test_an_escape_stays_refused_wherever_it_is_nested(outer: str) -> None:
    for inner in _SELECTS:
        with pytest.raises(Refused):
            admit(outer.format(inner), TABLES, "perfhouse")


@pytest.mark.parametrize("name", ["countIf", "quantilesExactInclusiveIf", "sumArrayIf", "uniqMerge", "avgOrNull",
                                  "maxMap", "groupArrayDistinct", "countResample", "COUNT", "toStartOfHour"])
def test_aggregates_take_their_combinators(name: str) -> None:
    assert allowed_function(name)


@pytest.mark.parametrize("name", ["dictGetIf", "joinGetState", "fileIf", "hasColumnInTableIf", "in",
                                  "currentDatabase", "getSettingArray"])
def test_combinators_cannot_carry_a_function_past_the_allow_list(name: str) -> None:
    assert not allowed_function(name)


def test_the_allow_list_names_no_function_that_reads_outside_the_rows() -> None:
    dangerous = {"file", "url", "dictget", "joinget", "hascolumnintable", "getsetting", "currentdatabase",
                 "currentuser", "version", "hostname", "sleep", "sleepeachrow", "in", "notin", "globalin",
                 "remote", "s3", "input", "executable", "getmacro", "getserversetting", "catboostevaluate"}
    assert not (FUNCTIONS | AGGREGATES) & dangerous


def test_limited_wraps_the_query_under_the_row_cap_with_the_engine_guard() -> None:
    sql = limited(admit("SELECT * FROM requests", TABLES), row_limit=1000, timeout_s=5)
    assert sql.startswith("SELECT * FROM (SELECT * FROM requests) LIMIT 1000 SETTINGS readonly = 1, "
                          "max_execution_time = 5")
    for setting in ("max_result_rows = 1000", "max_result_bytes = ", "result_overflow_mode = 'break'",
                    "max_block_size = 8192", "max_memory_usage = "):
        assert setting in sql
    tree = sqlglot.parse_one(sql, read="clickhouse")
    assert len(tree.args["settings"]) == 8


@pytest.mark.parametrize("sql", [
    "SELECT * FROM requests LIMIT 5",
    "SELECT * FROM requests LIMIT 5000000",  # a LIMIT larger than the cap is capped too
    "SELECT step FROM requests LIMIT 1 BY step",
    "SELECT run_id FROM runs UNION ALL SELECT run_id FROM runs",  # ClickHouse's LIMIT would bind to the last SELECT
    "SELECT arrayJoin(range(10000000)) AS n UNION ALL SELECT 1",
])
def test_every_query_runs_under_the_row_cap(sql: str) -> None:
    admitted = admit(sql, TABLES)
    assert limited(admitted, row_limit=100).startswith(f"SELECT * FROM ({admitted.sql}) LIMIT 100 SETTINGS")


def test_what_sqlglot_would_have_to_change_to_write_is_refused() -> None:
    """TO_CHAR's format has no ClickHouse counterpart sqlglot knows: it would run as a plain CAST."""
    assert "not a query perfhouse can check" in refused("SELECT TO_CHAR(started_at, 'YYYY') FROM runs")


def test_bare_time_names_clickhouse_calls_are_admitted() -> None:
    assert admit("SELECT now, today, CURRENT_TIMESTAMP, CURRENT_DATE, run_id FROM runs", TABLES).tables == ("runs",)
