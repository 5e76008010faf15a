"""The same warehouse operations on both backends: embedded chdb and a ClickHouse server (chfront).

Each test runs once per backend; `test_both_backends_return_the_same_values` runs both side by side on
the same real k6 and JMeter files and compares every read API's answer value for value.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlglot

from tests.integration.conftest import make_warehouse_url
from warehouse.analysis.slo import Objective
from warehouse.engine.schema import CURRENT_VERSION, MIGRATIONS, migrate
from warehouse.read import queries
from warehouse.store import RunFilter, RunInfo, Warehouse

pytestmark = pytest.mark.integration

OBJECTIVES = [
    Objective("p95", 500.0),
    Objective("error_rate", 0.01),
    Objective("check_failure_rate", 0.05),  # no checks in these files: 0
    Objective("avg", 100.0, journey="default"),
    Objective("p99", 1.0, journey="no-such-journey"),
]


def gz_copy(src: Path, dst: Path) -> Path:
    with open(src, "rb") as fh, gzip.open(dst, "wb") as out:
        shutil.copyfileobj(fh, out)
    return dst


def fixed_run(run_id: str, tool: str) -> RunInfo:
    return RunInfo(run_id, tool, status="completed", name=run_id, labels={"team": "it's \"q\"", "b\\s": "x"},
                   started_at="2024-01-02 03:04:05.678", ended_at="2024-01-02 03:05:05.000")


def snapshot(wh: Warehouse, run_id: str) -> dict[str, Any]:
    """Every read API's answer for one run."""
    return {
        "runs": wh.runs(),
        "resolve": wh.resolve(run_id[:6]),
        "latest": wh.resolve("latest"),
        "run": wh.run(run_id),
        "step_stats": wh.step_stats(run_id),
        "totals": wh.totals(run_id),
        "latency_over_time": wh.latency_over_time(run_id),
        "latency_over_time_5s": wh.latency_over_time(run_id, 5),
        "errors": wh.errors(run_id),
        "slo_verdicts": wh.slo_verdicts(run_id),
        "run_list": wh.run_list(),
        "run_list_k6_since_2024": wh.run_list(RunFilter(tool="k6", since="2024-01-01")),
        "run_facets": wh.run_facets(),
        "run_choices": wh.run_choices(),
        "read_only_sql": wh.read_only_sql("SELECT step, count() AS n FROM requests GROUP BY step ORDER BY step").rows,
    }


def test_migrate_creates_the_schema_once(any_warehouse_url: str) -> None:
    wh = Warehouse.open(any_warehouse_url)
    assert migrate(wh.backend) == CURRENT_VERSION
    assert Warehouse.open(any_warehouse_url).backend.query("SELECT count() AS n FROM schema_migrations")[0][
        "n"
    ] == len(MIGRATIONS)  # one row per migration (numbers are reserved per change, so they may have gaps)
    tables = {r["name"] for r in wh.backend.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase()")}
    assert {"runs", "requests", "k6_points", "infra_samples", "slo_results", "ingested_files"} <= tables


@pytest.mark.parametrize("interrupted", [False, True])
def test_migration_5_turns_stored_k6_tag_maps_into_json_text(
    any_warehouse_url: str, monkeypatch: pytest.MonkeyPatch, interrupted: bool
) -> None:
    """A warehouse written before migration 5 keeps every point, its tags now as sorted JSON text;
    a migration stopped half-way (a copy column added, the Map not yet dropped) completes on the next open."""
    from warehouse.engine import schema

    monkeypatch.setattr(schema, "MIGRATIONS", [m for m in schema.MIGRATIONS if m[0] < 5])
    wh = Warehouse.open(any_warehouse_url)
    wh.backend.command(
        "INSERT INTO k6_points (run_id, batch, ts, metric, value, tags) VALUES "
        "('r1', 'b', '2024-01-02 03:04:05.000001', 'http_reqs', 1, {'url': 'http://x/?a=\\'1\\'', 'method': 'GET'}), "
        "('r1', 'b', '2024-01-02 03:04:05.000001', 'vus', 3, {})"
    )
    if interrupted:
        wh.backend.command(
            "ALTER TABLE k6_points ADD COLUMN tags_text LowCardinality(String) DEFAULT toJSONString(mapSort(tags))"
        )
    monkeypatch.undo()
    wh = Warehouse.open(any_warehouse_url)
    rows = wh.backend.query("SELECT metric, tags, toTypeName(tags) AS type FROM k6_points ORDER BY metric")
    assert [(r["metric"], r["tags"]) for r in rows] == [
        ("http_reqs", '{"method":"GET","url":"http:\\/\\/x\\/?a=\'1\'"}'), ("vus", "{}")]
    assert {r["type"] for r in rows} == {"LowCardinality(String)"}
    assert [json.loads(r["tags"]) for r in rows] == [{"method": "GET", "url": "http://x/?a='1'"}, {}]
    columns = wh.backend.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'k6_points'")
    assert "tags_text" not in {c["name"] for c in columns}


def test_k6_json_plain_and_gzip_give_the_same_rows(any_warehouse_url: str, k6_output: Path,
                                                   tmp_path: Path) -> None:
    """The gzip is the same file as the plain one; with that record taken away it ingests as a run of its own."""
    wh = Warehouse.open(any_warehouse_url)
    plain = wh.ingest(k6_output)
    packed = wh.ingest(gz_copy(k6_output, tmp_path / "k6.json.gz"))
    assert packed.duplicate and packed.run_id == plain.run_id
    wh.backend.command("DELETE FROM ingested_files WHERE run_id = {r:String}", {"r": plain.run_id})
    packed = wh.ingest(gz_copy(k6_output, tmp_path / "k6.json.gz"))
    assert plain.rejected == packed.rejected == 0
    assert plain.rows == packed.rows > 10 and plain.points == packed.points > plain.rows
    a, b = wh.totals(plain.run_id), wh.totals(packed.run_id)
    assert a == b and a["count"] == plain.rows
    assert wh.step_stats(plain.run_id) == wh.step_stats(packed.run_id)


def test_jtl_ingest_and_duplicate_adds_nothing(any_warehouse_url: str, jtl_output: Path, k6_output: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    first = wh.ingest(jtl_output)
    assert first.tool == "jmeter" and first.rows == 12 and first.rejected == 0
    k6 = wh.ingest(k6_output, run=fixed_run("k6run", "k6"))
    before = wh.backend.query("SELECT count() AS n FROM requests")[0]["n"]
    again, again_k6 = wh.ingest(jtl_output), wh.ingest(k6_output, run=fixed_run("other", "k6"))
    assert again.duplicate and again.run_id == first.run_id
    assert again_k6.duplicate and again_k6.run_id == k6.run_id == "k6run"
    assert wh.backend.query("SELECT count() AS n FROM requests")[0]["n"] == before == first.rows + k6.rows
    assert len(wh.runs()) == 1  # runs passed in by the caller are the caller's to save; one import


def test_runs_resolve_and_slos(any_warehouse_url: str, k6_output: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    info = fixed_run("20240102-030405-k6-abcd", "k6")
    wh.save_run(info)
    wh.ingest(k6_output, run=info)
    wh.finish_run(info, "completed", notes="done")
    assert wh.resolve("20240102") == wh.resolve("latest") == info.run_id
    row = wh.run(info.run_id)
    assert row.labels == info.labels and row.status == "completed" and row.notes == "done"
    verdicts = wh.evaluate_slos(info.run_id, OBJECTIVES)
    assert [v.passed for v in verdicts] == [True, False, True, True, False]
    assert verdicts[2].observed == 0 and verdicts[4].observed is None
    assert wh.slo_verdicts(info.run_id) == sorted(verdicts, key=lambda v: v.slo)
    assert wh.evaluate_slos(info.run_id, OBJECTIVES) == verdicts  # re-evaluating replaces, never adds
    assert len(wh.slo_verdicts(info.run_id)) == len(OBJECTIVES)


@pytest.mark.parametrize("name", sorted(queries.ALL))
def test_query_round_trips_through_sqlglot_and_runs(any_warehouse_url: str, name: str) -> None:
    sql = queries.ALL[name]
    tree = queries.check(sql)
    generated = tree.sql(dialect="clickhouse")
    assert sqlglot.parse_one(generated, read="clickhouse") == tree
    params = {
        key: {"String": "", "UInt32": 1, "Float64": 0.5, "Array(UInt32)": [], "Array(String)": ["runs"]}[kind]
        for key, kind in queries.parameters(sql).items()
    }
    wh = Warehouse.open(any_warehouse_url)
    assert wh.backend.query(sql, params) == wh.backend.query(generated, params)


def test_both_backends_return_the_same_values(tmp_path: Path, request: pytest.FixtureRequest,
                                              k6_output: Path, jtl_output: Path) -> None:
    seen = []
    for kind in ("chdb", "server"):
        wh = Warehouse.open(make_warehouse_url(kind, tmp_path / kind, request))
        k6, jm = fixed_run("k6-run", "k6"), fixed_run("jmeter-run", "jmeter")
        jm.started_at = "2023-01-01 00:00:00.000"
        for info, path in ((k6, k6_output), (jm, jtl_output)):
            wh.save_run(info)
            wh.ingest(path, run=info)
            wh.evaluate_slos(info.run_id, OBJECTIVES)
        seen.append({run: snapshot(wh, run) for run in ("k6-run", "jmeter-run")})
    embedded, server = seen
    for run in embedded:
        for key, value in embedded[run].items():
            assert server[run][key] == value, (run, key)
    assert embedded["k6-run"]["totals"]["count"] > 10 and embedded["jmeter-run"]["totals"]["count"] == 12


def test_infra_samples_are_stored_with_their_labels(any_warehouse_url: str) -> None:
    wh = Warehouse.open(any_warehouse_url)
    rows = [
        ("2024-01-02T03:04:05.123Z", "http://127.0.0.1:9/metrics", "cpu", {"pod": "a'b", "x": "\\n"}, 0.5),
        ("2024-01-02 03:04:06.000", "http://127.0.0.1:9/metrics", "up", {}, float("nan")),
    ]
    assert wh.add_infra_samples("r1", rows, chunk=1) == 2
    got = wh.backend.query(
        "SELECT toString(ts) AS ts, metric, labels, value FROM infra_samples WHERE run_id = 'r1' ORDER BY ts")
    assert got == [
        {"ts": "2024-01-02 03:04:05.123", "metric": "cpu", "labels": {"pod": "a'b", "x": "\\n"}, "value": 0.5},
        {"ts": "2024-01-02 03:04:06.000", "metric": "up", "labels": {}, "value": None},
    ]


@pytest.mark.parametrize("text", ['body contains \\"items\\"', "a\\b\\\\c", "two\nlines", "tab\there", "nul\0", "\\N"])
def test_string_parameters_arrive_as_given(any_warehouse_url: str, text: str) -> None:
    """A parameter's text is read by ClickHouse in its escaped form: backslashes, tabs and newlines must be
    escaped on the way, or a stored JSON document (a k6 summary with a quoted check name) comes back broken."""
    wh = Warehouse.open(any_warehouse_url)
    assert wh.backend.query("SELECT {v:String} AS v", {"v": text}) == [{"v": text}]


def test_opening_a_settled_warehouse_costs_one_query(any_warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing to migrate, recover or abort: the open is the one query that says so; anything to do is done."""
    import socket
    import subprocess
    import sys

    import warehouse.store as store

    statements: list[str] = []
    opened = store.open_backend

    def counting(url: str | None = None, lock_timeout_s: float = 60.0) -> Any:
        backend = opened(url, lock_timeout_s)
        for name in ("query", "command"):
            method = getattr(backend, name)
            setattr(backend, name,
                    lambda sql, params=None, method=method: (statements.append(sql), method(sql, params))[1])
        return backend

    first = Warehouse.open(any_warehouse_url)
    elsewhere = RunInfo("elsewhere", "k6", status="running", labels={"perfhouse.owner": "another-host:1:1"})
    first.save_run(elsewhere)  # its owner cannot be checked from here: nothing to do
    getattr(first.backend, "release", lambda: None)()
    monkeypatch.setattr(store, "open_backend", counting)
    Warehouse.open(any_warehouse_url)
    assert statements == [queries.OPEN_CHECK]

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    wh = Warehouse.open(any_warehouse_url)
    dead = RunInfo("dead-owner", "k6", status="running",
                   labels={"perfhouse.owner": f"{socket.gethostname()}:{int(gone.stdout)}:1"})
    wh.save_run(dead)
    getattr(wh.backend, "release", lambda: None)()
    statements.clear()
    again = Warehouse.open(any_warehouse_url)  # a run whose owner died: the open aborts it
    assert len(statements) > 1 and again.orphans_aborted == ["dead-owner"]
    assert again.run("dead-owner").status == "aborted" and again.run("elsewhere").status == "running"
