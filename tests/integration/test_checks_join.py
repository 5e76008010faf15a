"""k6's checks land on the requests they checked (JSON, CSV and InfluxDB line protocol), and migration 10
gives JMeter rows stored before it the same meaning of `ok`."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from orchestrator.generators import GenerationOptions
from orchestrator.spec import load_spec
from orchestrator.tools import generate
from tests.conftest import need
from tests.integration.test_error_semantics import REQUESTS, SPEC, serve
from tests.integration.test_influx import k6_json_to_line_protocol
from warehouse.engine.schema import migrate
from warehouse.store import RunInfo, Warehouse

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def k6_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, int]]:
    """One run of the generated script writing JSON and CSV; k6's own count of passed and failed checks."""
    k6 = need("k6")
    tmp = tmp_path_factory.mktemp("k6checks")
    (tmp / "errsem.yaml").write_text(SPEC, encoding="utf-8")
    server, url = serve()
    try:
        script = generate(load_spec(tmp / "errsem.yaml"), "k6", GenerationOptions("fixed", {"api": url}))
        (tmp / script.filename).write_text(script.content, encoding="utf-8")
        subprocess.run([k6, "run", "--quiet", "--out", f"json={tmp / 'k6.json'}", "--out", f"csv={tmp / 'k6.csv'}",
                        "--summary-export", str(tmp / "summary.json"), script.filename],
                       cwd=tmp, check=True, capture_output=True, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    checks = json.loads((tmp / "summary.json").read_text())["metrics"]["checks"]
    return tmp / "k6.json", tmp / "k6.csv", {"passes": checks["passes"], "fails": checks["fails"]}


def per_request(wh: Warehouse, run_id: str) -> Counter[tuple[object, ...]]:
    rows = wh.backend.query(
        "SELECT step, vu, ok, checks, failed_checks, failed_check FROM requests WHERE run_id = {r:String}",
        {"r": run_id})
    return Counter(tuple(r.values()) for r in rows)


def test_each_k6_check_lands_on_its_request_from_json_and_csv(
    any_warehouse_url: str, k6_run: tuple[Path, Path, dict[str, int]]
) -> None:
    json_out, csv_out, k6_checks = k6_run
    wh = Warehouse.open(any_warehouse_url)
    runs = [wh.ingest(json_out).run_id, wh.ingest(csv_out).run_id]
    for run_id in runs:
        totals = wh.totals(run_id)
        # every check point k6 counted is on a request, and each request carries exactly its step's checks
        assert (totals["checks_total"], totals["checks_failed"]) == (
            k6_checks["passes"] + k6_checks["fails"], k6_checks["fails"]) == (3 * REQUESTS, REQUESTS // 4)
        rows = per_request(wh, run_id)
        assert {(step, checks) for step, _, _, checks, _, _ in rows} == {("status", 2), ("gone", 1), ("flaky", 0)}
        assert {vu for _, vu, *_ in rows} == {"1", "2"}  # vu from k6's metadata (the script asks for it)
        assert sum(n for (step, _, _, _, failed, name), n in rows.items()
                   if failed and step == "status" and name == 'body contains "ok"') == REQUESTS // 4
    assert per_request(wh, runs[0]) == per_request(wh, runs[1])


def test_a_k6_json_without_checks_lands_the_same_requests_with_none(
    any_warehouse_url: str, k6_run: tuple[Path, Path, dict[str, int]], tmp_path: Path
) -> None:
    """A file with no checks points derives its requests without joining checks to them: the same requests as
    the file with its checks, every figure equal but the checks, which are none."""
    json_out, _, _ = k6_run
    bare = tmp_path / "no-checks.json"
    bare.write_text("".join(line for line in json_out.read_text().splitlines(keepends=True)
                            if json.loads(line).get("metric") != "checks"), encoding="utf-8")
    wh = Warehouse.open(any_warehouse_url)
    with_checks, without = wh.ingest(json_out).run_id, wh.ingest(bare).run_id

    def requests(run_id: str, columns: str) -> list[tuple[object, ...]]:
        rows = wh.backend.query(f"SELECT {columns} FROM requests WHERE run_id = {{r:String}} ORDER BY ALL",
                                {"r": run_id})
        return [tuple(r.values()) for r in rows]

    figures = ("toString(ts), journey, step, service, method, url, status, ok, duration_ms, waiting_ms, connect_ms, "
               "error, vu, trace_id")
    assert len(requests(with_checks, figures)) == 3 * REQUESTS
    assert requests(with_checks, figures) == requests(without, figures)
    assert set(requests(without, "checks, failed_checks, failed_check")) == {(0, 0, "")}
    assert set(requests(with_checks, "checks")) == {(0,), (1,), (2,)}


def test_k6_influx_output_without_vu_keeps_each_steps_checks(
    any_warehouse_url: str, k6_run: tuple[Path, Path, dict[str, int]], tmp_path: Path
) -> None:
    """k6's InfluxDB output writes no metadata, so no VU or iteration: checks still go to their step."""
    json_out, _, _ = k6_run
    lp = tmp_path / "k6.lp"
    k6_json_to_line_protocol(json_out, lp)
    wh = Warehouse.open(any_warehouse_url)
    from_json, from_influx = wh.ingest(json_out).run_id, wh.ingest(lp).run_id
    figures = ("step", "count", "errors", "check_failures", "checks_total", "checks_failed")

    def steps(run_id: str) -> list[tuple[object, ...]]:
        return [tuple(getattr(s, k) for k in figures) for s in wh.step_stats(run_id)]

    assert steps(from_influx) == steps(from_json)


def test_migration_10_reads_stored_jmeter_rows_with_the_new_meaning(any_warehouse_url: str) -> None:
    """A JMeter sample failed with a 2xx/3xx code was failed by an assertion: no request error, a failed check;
    a failed response code assertion and a 5xx stay request errors; k6 rows are left as they are."""
    wh = Warehouse.open(any_warehouse_url)
    wh.save_run(RunInfo("old-run", "jmeter"))
    rows = [
        ("jmeter", 200, 0, "Test failed: text expected to contain /ok/"),
        ("jmeter", 200, 0, "Test failed: code expected to equal /201/"),
        ("jmeter", 503, 0, "Service Unavailable"),
        ("jmeter", 200, 1, ""),
        ("k6", 200, 0, ""),
    ]
    for tool, status, ok, error in rows:
        wh.backend.command(
            "INSERT INTO requests (run_id, batch, ts, tool, step, status, ok, error) VALUES ('old-run', 'b', "
            "now64(6), {tool:String}, 's', {status:UInt16}, {ok:UInt8}, {error:String})",
            {"tool": tool, "status": status, "ok": ok, "error": error})
    wh.backend.command("DELETE FROM schema_migrations WHERE version >= 10")  # 10 and the ones after it run again
    with wh.backend.session():
        migrate(wh.backend)
    got = wh.backend.query(
        "SELECT tool, status, ok, checks, failed_checks, failed_check, error FROM requests "
        "WHERE run_id = 'old-run' ORDER BY tool, status, error, failed_check")
    assert [tuple(r.values()) for r in got] == [
        ("jmeter", 200, 1, 0, 0, "", ""),
        ("jmeter", 200, 1, 1, 1, "Test failed: text expected to contain /ok/", ""),
        ("jmeter", 200, 0, 0, 0, "", "Test failed: code expected to equal /201/"),
        ("jmeter", 503, 0, 0, 0, "", "Service Unavailable"),
        ("k6", 200, 0, 0, 0, "", ""),
    ]


def _k6_point(metric: str, at: dt.datetime, value: float, vu: int, it: int, step: str = "") -> str:
    tags = {"journey": "shop", "step": step, "scenario": "default", "group": ""} if step else {"scenario": "default"}
    if metric == "checks":
        tags["check"] = "status is 200"
    return json.dumps({"metric": metric, "type": "Point", "data": {
        "time": at.strftime("%Y-%m-%dT%H:%M:%S.%f000Z"), "value": value, "tags": tags,
        "metadata": {"vu": str(vu), "iter": str(it)}}}) + "\n"


def _iterations_file(path: Path) -> int:
    """Five VUs' iterations of 100 ms for two minutes (a request, its check 10 ms later, the iteration's end),
    a whole iteration of 41 s whose check comes 40 s after its request, and an iteration cut short (no
    iteration_duration point) whose check comes 60 s after its request: longer than any whole iteration."""
    t0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    ms = dt.timedelta(milliseconds=1)
    lines = []

    def iteration(vu: int, it: int, start: dt.datetime, check_after_ms: int, end_ms: int | None) -> None:
        lines.append(_k6_point("http_reqs", start, 1, vu, it, "list"))
        lines.append(_k6_point("http_req_duration", start, 5.0, vu, it, "list"))
        lines.append(_k6_point("checks", start + check_after_ms * ms, 1, vu, it, "list"))
        if end_ms is not None:
            lines.append(_k6_point("iteration_duration", start + end_ms * ms, end_ms, vu, it))

    for vu in range(1, 6):
        for it in range(1200):
            iteration(vu, it, t0 + (100 * it + vu) * ms, 10, 20)
    iteration(9, 0, t0 + 20_000 * ms, 40_000, 41_000)
    iteration(8, 0, t0 + 30_000 * ms, 60_000, None)
    lines.sort(key=lambda line: json.loads(line)["data"]["time"])
    path.write_text("".join(lines), encoding="utf-8")
    return 5 * 1200 + 2


def test_each_check_lands_on_its_request_across_slices_however_long_its_iteration(
    any_warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deriving a run's requests a slice at a time reads its checks past each slice only as far as an iteration
    can reach (the longest iteration that ended; from the first iteration cut short, minutes): a check 40 s after
    its request in a long iteration, and 60 s after it in an iteration cut short, land on their requests as they
    do when the whole run is one slice."""
    from warehouse.tools.k6 import k6_json

    requests = _iterations_file(tmp_path / "iterations.json")
    wh = Warehouse.open(any_warehouse_url)

    def landed(per_slice: int, path: Path) -> Counter[tuple[object, ...]]:
        monkeypatch.setattr(k6_json, "REQUESTS_PER_SLICE", per_slice)
        run_id = wh.ingest(path).run_id
        rows = wh.backend.query("SELECT toString(ts) AS ts, vu, checks, failed_checks FROM requests "
                                "WHERE run_id = {r:String}", {"r": run_id})
        return Counter(tuple(r.values()) for r in rows)

    sliced = landed(100, tmp_path / "iterations.json")  # 60 slices of 2 s
    assert sum(sliced.values()) == requests
    assert {checks for _, _, checks, _ in sliced} == {1}
    assert [(ts, vu) for ts, vu, _, _ in sliced if vu in ("8", "9")] == [
        ("2025-06-01 00:00:20.000000", "9"), ("2025-06-01 00:00:30.000000", "8")]
    whole = tmp_path / "whole.json"  # the same points, with a Metric line: another file, not a duplicate
    whole.write_text('{"type":"Metric","data":{"name":"checks","type":"rate","contains":"default"},"metric":"checks"}\n'
                     + (tmp_path / "iterations.json").read_text(encoding="utf-8"), encoding="utf-8")
    assert landed(10**6, whole) == sliced
