"""Locust's results in the warehouse: the generated locustfile's request lines (a row per request) and Locust's
own CSV statistics from locustfiles perfhouse did not write (interval aggregates), on both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.demo_api import DemoAPI
from orchestrator.run import run_tool
from orchestrator.spec import load_spec
from tests.conftest import ROOT, need
from warehouse.ingest import StepFacts
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration


def line(step: str, ok: bool = True, duration: float = 12.5, ts: float = 1_790_000_000.25,
         checks_failed: tuple[str, ...] = ()) -> str:
    return json.dumps({"tool": "locust", "ts": ts, "journey": "browse", "step": step, "service": "api",
                       "method": "GET", "url": "http://127.0.0.1:8080/products", "status": 200 if ok else 500,
                       "ok": ok, "duration_ms": duration, "bytes_received": 692, "error": "",
                       "checks_failed": list(checks_failed), "vu": "1", "users": 2})


def test_request_lines_land_one_row_each_and_a_cut_last_line_is_counted(any_warehouse_url: str,
                                                                         tmp_path: Path) -> None:
    path = tmp_path / "locust.jsonl"
    lines = [line("list", duration=10), line("list", duration=30), line("view", ok=False), "{not json", ""]
    path.write_text("\n".join(lines[:-1]) + "\n" + line("view")[:40])  # the last line cut short
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(path)
    assert (result.format, result.tool, result.rows, result.rejected) == ("locust-jsonl", "locust", 3, 2)
    assert {r.reason for r in result.samples} == {"not valid JSON (a truncated or garbled line)"}
    steps = {s.step: s for s in wh.step_stats(result.run_id)}
    assert (steps["list"].count, steps["list"].errors, steps["list"].avg_ms) == (2, 0, 20)
    assert (steps["view"].count, steps["view"].errors) == (1, 1)
    assert wh.ingest(path).duplicate


def test_failed_checks_are_kept_apart_from_request_errors(any_warehouse_url: str, tmp_path: Path) -> None:
    """A line's failed checks are the request's; the spec's step facts say how many checks the step has."""
    path = tmp_path / "locust.jsonl"
    path.write_text("\n".join([
        line("list"),
        line("list", checks_failed=("body contains id",), ts=1_790_000_000.5),
        line("list", ok=False, checks_failed=("status is 200", "body contains id"), ts=1_790_000_000.75),
        line("view", checks_failed=("x exists",), ts=1_790_000_001.0),
    ]) + "\n")
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(path, steps={("browse", "list"): StepFacts("GET", 0, 2)})
    rows = wh.backend.query(
        "SELECT step, ok, checks, failed_checks, failed_check FROM requests WHERE run_id = {r:String} ORDER BY ts",
        {"r": result.run_id})
    assert [(r["step"], int(r["ok"]), int(r["checks"]), int(r["failed_checks"]), r["failed_check"])
            for r in rows] == [
        ("list", 1, 2, 0, ""),
        ("list", 1, 2, 1, "body contains id"),
        ("list", 0, 2, 2, "status is 200"),
        ("view", 1, 1, 1, "x exists"),  # a step the facts do not know has at least its failed checks
    ]


STATS = """\
Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,\
Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
GET,GET /products,128,2,9,12.9,2.5,92.6,692.0,12.7,0.2,9,13,17,19,23,27,59,67,93,93,93
POST,POST /login,0,0,0,0.0,0,0,0,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A
,Aggregated,128,2,9,12.9,2.5,92.6,692.0,12.7,0.2,9,13,17,19,23,27,59,67,93,93,93
"""

HISTORY = """\
Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,\
Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,\
Total Min Response Time,Total Max Response Time,Total Average Content Size
1790000000,4,GET,GET /products,3.5,0.0,9,10,11,12,13,14,15,16,17,17,17,13,0,13,15.6,6.2,34.3,692.0
1790000001,4,GET,GET /products,4.0,0.5,8,10,11,12,13,21,25,26,27,27,27,17,1,12,14.1,6.2,34.3,692.0
not-a-time,4,GET,GET /products,4.0,0.5,8,10,11,12,13,21,25,26,27,27,27,17,1,12,14.1,6.2,34.3,692.0
"""


def test_locust_csv_statistics_are_kept_as_the_tools_own_figures(any_warehouse_url: str, tmp_path: Path) -> None:
    (tmp_path / "run_stats.csv").write_text(STATS)
    (tmp_path / "run_stats_history.csv").write_text(HISTORY)
    wh = Warehouse.open(any_warehouse_url)
    stats = wh.ingest(tmp_path / "run_stats.csv")
    assert (stats.format, stats.tool, stats.rows, stats.rejected) == ("locust-stats", "locust", 0, 0)
    figures = {(a.step, a.metric): a.value for a in wh.aggregates(stats.run_id)}
    assert figures[("GET /products", "count")] == 128 and figures[("GET /products", "failures")] == 2
    assert figures[("GET /products", "pct95")] == 27 and figures[("Aggregated", "pct99.9")] == 93
    assert ("POST /login", "pct95") not in figures  # N/A: Locust had no request to rank
    assert figures[("POST /login", "count")] == 0
    history = wh.ingest(tmp_path / "run_stats_history.csv")
    assert (history.format, history.rejected) == ("locust-history", 1)
    assert history.samples[0].line == 4 and "Timestamp is not a number" in history.samples[0].reason
    p95 = [(a.ts[:19], a.value) for a in wh.aggregates(history.run_id, "pct95")]
    assert p95 == [("2026-09-21 14:13:20", 14), ("2026-09-21 14:13:21", 21)]


def test_a_locust_run_lands_every_request_locust_counted(tmp_path: Path) -> None:
    """Cross-check: the warehouse's rows per step equal Locust's own request counts (its --csv statistics)."""
    need("locust")
    spec = load_spec(ROOT / "examples" / "shop.yaml")
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    with DemoAPI() as api:
        outcome = run_tool(spec, "locust", wh, "smoke", {"api": api.url}, runs_dir=tmp_path / "runs")
    assert outcome.status == "completed", outcome.notes
    ours = {s.step: int(s.count) for s in wh.step_stats(outcome.run_id)}
    assert ours == {"list_products": 3, "view_product": 3, "login": 3, "add_to_cart": 3}
    theirs = wh.ingest(outcome.directory / "locust_stats.csv")
    counts = {a.step: a.value for a in wh.aggregates(theirs.run_id, "count")}
    assert counts.pop("Aggregated") == sum(ours.values()) == sum(counts.values())


def _csv_prefix_files(directory: Path, prefix: str = "shop") -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stats, history = directory / f"{prefix}_stats.csv", directory / f"{prefix}_stats_history.csv"
    stats.write_text(STATS)
    history.write_text(HISTORY)
    return stats, history


def test_the_statistics_and_history_of_one_csv_prefix_named_together_are_one_run(any_warehouse_url: str,
                                                                                  tmp_path: Path) -> None:
    stats, history = _csv_prefix_files(tmp_path / "out")
    wh = Warehouse.open(any_warehouse_url)
    outcomes = list(wh.import_files([stats, history]))
    assert [(o.path, o.status) for o in outcomes] == [(str(stats), "ingested"), (str(history), "ingested")]
    assert outcomes[0].run_id == outcomes[1].run_id
    run = wh.run(outcomes[0].run_id)
    assert (run.name, run.tool) == ("shop", "locust")
    assert run.started_at.startswith("2026-09-21 14:13:20")  # the history's times are the run's
    sources = {a.tags["source"] for a in wh.aggregates(run.run_id)}
    assert sources == {"stats", "stats_history"}
    assert [r.run_id for r in wh.runs()] == [run.run_id]
    again = list(wh.import_files([history, stats]))
    assert [o.status for o in again] == ["duplicate", "duplicate"] and {o.run_id for o in again} == {run.run_id}


def test_a_directory_of_two_csv_prefixes_gives_a_run_per_prefix(tmp_path: Path) -> None:
    directory = tmp_path / "results"
    _csv_prefix_files(directory, "monday")
    _csv_prefix_files(directory, "tuesday")
    (directory / "tuesday_stats.csv").write_text(STATS.replace("12.9", "13.1"))  # each file its own content
    (directory / "tuesday_stats_history.csv").write_text(HISTORY.replace("17900000", "17900864"))
    lone = directory / "wednesday_stats.csv"
    lone.write_text(STATS.replace("128", "64"))
    out = CliRunner().invoke(main, ["--warehouse", f"chdb://{tmp_path / 'wh'}", "ingest", str(directory), "--json"])
    assert out.exit_code == 7, out.output  # the history's non-numeric time is a rejected line
    outcomes = [json.loads(line) for line in out.output.splitlines() if line.startswith("{")]
    runs = {Path(o["path"]).name: o["run_id"] for o in outcomes}
    assert runs["monday_stats.csv"] == runs["monday_stats_history.csv"]
    assert runs["tuesday_stats.csv"] == runs["tuesday_stats_history.csv"] != runs["monday_stats.csv"]
    assert runs["wednesday_stats.csv"] not in (runs["monday_stats.csv"], runs["tuesday_stats.csv"])
    names = {r.name for r in Warehouse.open(f"chdb://{tmp_path / 'wh'}").runs()}
    assert names == {"monday", "tuesday", "wednesday_stats.csv"}


IN_FLIGHT_SPEC = """\
name: inflight
services:
  api: http://127.0.0.1:1
journeys:
  - name: browse
    steps:
      - name: list
        path: /products
      - name: view
        path: /products/1
profiles:
  short:
    executor: constant_vus
    vus: 4
    duration: 2s
"""


def test_a_stopping_locust_run_records_every_request_the_server_saw(tmp_path: Path, warehouse_url: str) -> None:
    """Four users always have a slow request in flight: when the test ends each finishes and records it (and
    starts no other), so the warehouse holds exactly what the server was sent."""
    need("locust")
    spec_path = tmp_path / "inflight.yaml"
    spec_path.write_text(IN_FLIGHT_SPEC, encoding="utf-8")
    wh = Warehouse.open(warehouse_url)
    with DemoAPI(record=True, delay_ms=(150.0, 200.0)) as api:
        outcome = run_tool(load_spec(spec_path), "locust", wh, "short", {"api": api.url}, runs_dir=tmp_path / "runs")
        seen = len(api.requests)
    assert outcome.status == "completed", outcome.notes
    assert wh.totals(outcome.run_id)["count"] == seen > 20
