"""Step summaries (engine/summaries.py) give exactly the figures the raw requests give, on both backends:
for runs of one batch and of several (a live run grows by batches), after a batch is rolled back, and for runs
ingested before summaries existed; trends and compare's noise read them instead of every request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration.conftest import make_warehouse_url
from tests.support.synthetic import fill
from warehouse.analysis.compare import compare
from warehouse.analysis.trends import METRICS, trends
from warehouse.ingest import batch
from warehouse.read import queries
from warehouse.store import RunInfo, Warehouse

pytestmark = pytest.mark.integration

LABELS = ("home", "search", "product", "cart")


def write_jtl(path: Path, rows: int, seed: int, start_ms: int, slower: float = 1.0) -> Path:
    """A JMeter 2.13 JTL (12 columns, no header): four labels, log-normal elapsed times, about 2 % failed."""
    rng = np.random.default_rng(seed)
    elapsed = np.maximum(1, np.round(40 * slower * np.exp(0.5 * rng.standard_normal(rows)))).astype(int)
    failed = rng.random(rows) < 0.02
    with open(path, "w") as out:
        out.write("".join(
            f"{start_ms + i * 7},{elapsed[i]},{LABELS[i % 4]},{500 if failed[i] else 200},OK,Users 1-{i % 4 + 1},"
            f"text,{'false' if failed[i] else 'true'},{100 + i % 13},1,4,{max(1, elapsed[i] - 3)}\n"
            for i in range(rows)))
    return path


def release(wh: Warehouse) -> None:
    getattr(wh.backend, "release", lambda: None)()


def history(wh: Warehouse, tmp: Path, runs: int = 6) -> list[str]:
    """`runs` imported runs of one fingerprint, a day apart, the last two 30 % slower; the third run gets a
    second batch (as a live run grows)."""
    ids = []
    day_ms = 86_400_000
    for i in range(runs):
        path = write_jtl(tmp / f"run{i}.jtl", 2_000 + 137 * i, seed=i, start_ms=1_767_225_600_000 + i * day_ms,
                         slower=1.3 if i >= runs - 2 else 1.0)
        ids.append(wh.ingest(path).run_id)
    more = write_jtl(tmp / "more.jtl", 900, seed=99, start_ms=1_767_225_600_000 + 2 * day_ms + 60_000)
    wh.ingest(more, RunInfo(ids[2], "jmeter"))
    return ids


def summarised_runs(wh: Warehouse) -> set[str]:
    """The runs whose summary is current (covers exactly their done batches)."""
    rows = wh.backend.query(
        "WITH history AS (SELECT DISTINCT run_id FROM runs) "
        f"SELECT DISTINCT run_id FROM ({queries._CURRENT_SUMMARIES})"  # the readers' own rule
    )
    return {str(r["run_id"]) for r in rows}


def figures(wh: Warehouse, ids: list[str]) -> dict[str, Any]:
    """What trends and compare show, and the rows of the reads that summaries serve."""
    params = {"fingerprint": "", "spec": "", "journey": "", "step": "", "before": "", "exclude": "", "runs": 200}
    return {
        **{f"trends {m}": trends(wh.backend, m).to_dict() for m in METRICS},
        "trends one step": trends(wh.backend, "p95", journey="", step="search").to_dict(),
        "step history": wh.backend.query(queries.STEP_HISTORY, params),
        "step history (journey)": wh.backend.query(queries.STEP_HISTORY, {**params, "journey": "Users"}),
        "noise history": wh.backend.query(queries.NOISE_HISTORY, {**params, "runs": 30}),
        "compare": compare(wh, ids[0], ids[-1]).to_dict(),
    }


def raw_figures(wh: Warehouse, ids: list[str]) -> dict[str, Any]:
    """The same from the raw requests alone (every summary removed)."""
    wh.backend.command("TRUNCATE TABLE step_summaries")
    assert summarised_runs(wh) == set()
    return figures(wh, ids)


@pytest.mark.parametrize("load", ["direct", "staged"])
def test_summaries_give_the_raw_figures_bit_for_bit(load: str, any_warehouse_url: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs ingested from JTL files (whole milliseconds) and synthetic runs with sub-millisecond durations; small
    files load straight into the warehouse tables, larger ones are staged and summarised from the histogram their
    staging table kept while it loaded (here every file is staged)."""
    if load == "staged":
        monkeypatch.setattr(batch, "DIRECT_MAX_BYTES", 0)
    wh = Warehouse.open(any_warehouse_url)
    ids = history(wh, tmp_path)
    fill(wh.backend, runs=6, requests=60_000, seconds=60)
    assert summarised_runs(wh) == {*ids, *(f"bench-{i:04d}" for i in range(6))}
    summed = figures(wh, ids)
    assert summed["trends p95"]["series"] and summed["noise history"] and summed["step history (journey)"]
    assert summed["trends one step"]["series"][0]["points"]
    assert summed == raw_figures(wh, ids)


def test_trends_and_noise_read_the_summaries_not_the_requests(any_warehouse_url: str, tmp_path: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    ids = history(wh, tmp_path, runs=3)
    wh.backend.command("ALTER TABLE step_summaries UPDATE p95 = 12345 WHERE overall = 1 SETTINGS mutations_sync = 2")
    overall = next(s for s in trends(wh.backend, "p95").series if s.label == "overall")
    assert [p.value for p in overall.points] == [12345.0] * 3
    noise = wh.backend.query(queries.NOISE_HISTORY, {"fingerprint": "", "spec": "", "before": "", "exclude": "",
                                                     "runs": 30})
    assert {r["run_id"] for r in noise if r["p95"] == 12345} == set(ids)


def test_a_run_growing_by_batches_keeps_a_current_summary(any_warehouse_url: str, tmp_path: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    run = RunInfo("live-run", "jmeter", status="running", name="live")
    wh.save_run(run)
    for chunk in range(4):
        wh.ingest(write_jtl(tmp_path / f"chunk{chunk}.jtl", 700, seed=chunk, start_ms=1_767_225_600_000 + chunk * 5_000),
                  run)
        summary = wh.backend.query(
            "SELECT requests, p95 FROM step_summaries FINAL WHERE run_id = 'live-run' AND overall = 1 "
            "AND batches = {n:UInt32}", {"n": chunk + 1})
        raw = wh.backend.query("SELECT count() AS requests, quantileExactInclusive(0.95)(duration_ms) AS p95 "
                               "FROM requests WHERE run_id = 'live-run'")
        assert summary == raw
    assert summarised_runs(wh) == {"live-run"}


@pytest.mark.parametrize("load", ["direct", "staged"])
def test_a_commit_adds_its_batch_to_the_kept_histograms_and_never_reads_the_runs_earlier_requests(
        load: str, any_warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The summary of a growing run comes from the histograms its batches kept: with an earlier batch's requests
    taken away behind the warehouse's back, the next commit's summary still counts them, so it did not read them."""
    if load == "staged":
        monkeypatch.setattr(batch, "DIRECT_MAX_BYTES", 0)
    wh = Warehouse.open(any_warehouse_url)
    run = RunInfo("live-run", "jmeter", status="running", name="live")
    wh.save_run(run)
    first = wh.ingest(write_jtl(tmp_path / "first.jtl", 800, seed=1, start_ms=1_767_225_600_000), run)
    raw_first = wh.backend.query("SELECT count() AS n, quantileExactInclusive(0.95)(duration_ms) AS p95, "
                                 "min(ts) AS first FROM requests WHERE run_id = 'live-run'")[0]
    kept = wh.backend.query("SELECT DISTINCT batch FROM step_histograms WHERE run_id = 'live-run'")
    assert len(kept) == 1
    wh.backend.command("ALTER TABLE requests DELETE WHERE run_id = 'live-run' SETTINGS mutations_sync = 2")
    second = wh.ingest(write_jtl(tmp_path / "second.jtl", 600, seed=2, start_ms=1_767_225_700_000), run)
    summary = wh.backend.query(
        "SELECT requests, first_ts FROM step_summaries FINAL WHERE run_id = 'live-run' AND overall = 1 "
        "AND batches = 2")
    assert summary == [{"requests": first.rows + second.rows, "first_ts": raw_first["first"]}]
    assert raw_first["n"] == first.rows
    assert len(wh.backend.query("SELECT DISTINCT batch FROM step_histograms WHERE run_id = 'live-run'")) == 2


@pytest.mark.parametrize("signal_name", ["INT", "KILL"])
def test_a_batch_rolled_back_after_its_summary_leaves_none_behind(signal_name: str, any_warehouse_url: str,
                                                                  tmp_path: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    ids = history(wh, tmp_path, runs=3)
    release(wh)
    extra = write_jtl(tmp_path / "extra.jtl", 1_500, seed=7, start_ms=1_767_225_600_000 + 3_600_000, slower=2.0)
    env = {**os.environ, "PERFHOUSE_TEST_KILL_AT": "summaries-written", "PERFHOUSE_TEST_KILL_SIGNAL": signal_name}
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", any_warehouse_url, "ingest",
                           "--run", ids[1], str(extra)], capture_output=True, env=env, timeout=300)
    assert proc.returncode == (130 if signal_name == "INT" else -signal.SIGKILL), proc.stderr
    wh = Warehouse.open(any_warehouse_url)  # recovery takes a killed batch back
    failed = wh.backend.query("SELECT batch FROM ingested_files FINAL WHERE state = 'failed'")
    assert len(failed) == 1
    for table in ("step_summaries", "step_histograms"):
        assert wh.backend.query(f"SELECT count() AS n FROM {table} WHERE batch = {{b:String}}",
                                {"b": failed[0]["batch"]}) == [{"n": 0}]
    assert wh.backend.query("SELECT count() AS n FROM requests WHERE batch = {b:String}",
                            {"b": failed[0]["batch"]}) == [{"n": 0}]
    assert summarised_runs(wh) >= {ids[0], ids[2]}
    assert figures(wh, ids) == raw_figures(wh, ids)


@pytest.mark.parametrize(("table", "emptied", "version"), [("step_summaries", "step_histograms", 13),
                                                          ("step_histograms", "step_summaries", 20)])
def test_runs_ingested_before_summaries_or_histograms_get_them_when_the_warehouse_opens(
        table: str, emptied: str, version: int, any_warehouse_url: str, tmp_path: Path) -> None:
    """A warehouse without the table of `version`, made by a build that did not have it yet (the other table
    emptied too), gets the table, and every run its histograms and summaries, at the next open."""
    wh = Warehouse.open(any_warehouse_url)
    ids = history(wh, tmp_path, runs=3)
    wh.backend.command(f"DROP TABLE {table} SYNC")
    wh.backend.command(f"TRUNCATE TABLE {emptied}")
    # a warehouse whose later migrations were applied before this one existed: it still gets this one
    wh.backend.command("DELETE FROM schema_migrations WHERE version = {v:UInt32}", {"v": version})
    release(wh)
    wh = Warehouse.open(any_warehouse_url)
    assert summarised_runs(wh) == set(ids)
    assert len(wh.backend.query("SELECT DISTINCT batch FROM step_histograms")) == 4  # the third run has two batches
    assert figures(wh, ids) == raw_figures(wh, ids)


def test_runs_without_a_recorded_batch_are_read_from_their_requests(any_warehouse_url: str, tmp_path: Path) -> None:
    """Rows written outside an ingest (no batch recorded done) have no summary: the raw rows speak for them."""
    wh = Warehouse.open(any_warehouse_url)
    ids = history(wh, tmp_path, runs=3)
    wh.backend.command("INSERT INTO requests (run_id, batch, ts, tool, journey, step, status, ok, duration_ms) "
                       "SELECT {r:String}, 'outside', toDateTime64('2026-01-03 00:10:00', 6, 'UTC') + number, "
                       "'jmeter', 'Users', 'home', 200, 1, 900 + number FROM numbers(500)", {"r": ids[2]})
    assert summarised_runs(wh) == set(ids)  # its summary covers its done batches only...
    step = [r for r in wh.backend.query(queries.STEP_HISTORY, {
        "fingerprint": "", "spec": "", "journey": "", "step": "home", "before": "", "exclude": "", "runs": 200})
        if r["run_id"] == ids[2]]
    assert step[0]["count"] < wh.backend.query(
        "SELECT count() AS n FROM requests WHERE run_id = {r:String} AND step = 'home'", {"r": ids[2]})[0]["n"]
    wh.backend.command("DELETE FROM ingested_files WHERE run_id = {r:String}", {"r": ids[2]})
    assert summarised_runs(wh) == {ids[0], ids[1]}  # ...and a run without done batches is read raw
    assert figures(wh, ids) == raw_figures(wh, ids)


def test_both_backends_summarise_alike(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    seen = []
    for kind in ("chdb", "server"):
        (tmp_path / kind).mkdir()
        wh = Warehouse.open(make_warehouse_url(kind, tmp_path / kind, request))
        ids = history(wh, tmp_path / kind, runs=3)
        rows = wh.backend.query(
            "SELECT run_id, batches, overall, journey, step, requests, errors, p50, p95, p99, toString(first_ts) AS a, "
            "toString(last_ts) AS b FROM step_summaries FINAL ORDER BY run_id, overall, journey, step")
        names = {run_id: f"run{i}" for i, run_id in enumerate(ids)}  # run ids are new on each backend
        named = sorted(({**r, "run_id": names[r["run_id"]]} for r in rows),
                       key=lambda r: (r["run_id"], r["overall"], r["journey"], r["step"]))
        seen.append((named,
                     {k: v for k, v in figures(wh, ids).items() if k.startswith("trends")}))
        release(wh)
    assert seen[0][0] and seen[0] != ([], {})
    assert seen[0][0] == seen[1][0]
    assert _without_ids(seen[0][1]) == _without_ids(seen[1][1])


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in ("run_id", "fingerprint")}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def test_a_staged_k6_run_is_summarised_exactly(k6_output: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real k6 run (sub-millisecond durations) staged: its summary, kept while it loaded, equals the raw reads."""
    monkeypatch.setattr(batch, "DIRECT_MAX_BYTES", 0)
    wh = Warehouse.open(f"chdb://{tmp_path / 'warehouse'}")
    run = wh.ingest(k6_output).run_id
    summary = wh.backend.query(
        "SELECT overall, journey, step, requests, errors, p50, p95, p99, toString(first_ts) AS a, toString(last_ts) AS b "
        "FROM step_summaries FINAL WHERE run_id = {r:String} ORDER BY overall, journey, step", {"r": run})
    raw = wh.backend.query(
        "SELECT grouping(journey, step) != 0 AS overall, journey, step, count() AS requests, countIf(ok = 0) AS errors, "
        "quantileExactInclusive(0.5)(duration_ms) AS p50, quantileExactInclusive(0.95)(duration_ms) AS p95, "
        "quantileExactInclusive(0.99)(duration_ms) AS p99, toString(min(ts)) AS a, toString(max(ts)) AS b "
        "FROM requests WHERE run_id = {r:String} GROUP BY GROUPING SETS ((journey, step), ()) "
        "ORDER BY overall, journey, step", {"r": run})
    assert len(summary) > 1 and summary == raw
    assert any(r["p95"] != int(r["p95"]) for r in summary)  # durations with fractions of a millisecond
    assert wh.backend.query("SELECT count() AS n FROM system.tables WHERE name LIKE 'stage\\_%'") == [{"n": 0}]
