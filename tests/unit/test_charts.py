"""Dashboard charts and the tables beside them, built from plain rows without Streamlit or a warehouse."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from dashboard import charts
from dashboard.tables import ALL, Headline, choices, filter_runs, ms, runs_frame, slo_frame, steps_frame
from tests.support.figures import figures
from warehouse.analysis.slo import Verdict
from warehouse.read.queries import REQUEST_ERROR
from warehouse.read.records import (
    DistributionPoint,
    ErrorCause,
    InfraBucket,
    LatencyBucket,
    LatencyDistribution,
    RunListRow,
    RunRecord,
)

SERIES = [
    LatencyBucket("2026-01-02 10:00:00", "browse", "list", rps=10, errors=0, check_failures=0,
                  p50_ms=1.0, p95_ms=2.0, p99_ms=3.0),
    LatencyBucket("2026-01-02 10:00:00", "checkout", "pay", rps=5, errors=1, check_failures=0,
                  p50_ms=4.0, p95_ms=8.0, p99_ms=9.0),
    LatencyBucket("2026-01-02 10:00:01", "browse", "list", rps=12, errors=0, check_failures=0,
                  p50_ms=1.5, p95_ms=2.5, p99_ms=3.5),
]
ERRORS = [
    ErrorCause(REQUEST_ERROR.kind, "checkout", "pay", 503, "", 4),
    ErrorCause(REQUEST_ERROR.kind, "checkout", "pay", 0, "dial: connection refused", 9),
]


def spec(chart: Any) -> dict[str, Any]:
    result: dict[str, Any] = chart.to_dict()
    return result


def rows(chart: Any) -> list[dict[str, Any]]:
    data = spec(chart)["datasets"]
    assert len(data) == 1
    return list(next(iter(data.values())))


@pytest.mark.parametrize(("span_s", "bucket"), [(None, 1), (float("nan"), 1), (0, 1), (2, 1), (150, 1),
                                                (151, 2), (600, 5), (3600, 30), (86_400, 600), (1e9, 3600)])
def test_bucket_width_keeps_a_series_near_150_points_in_round_seconds(span_s: float | None, bucket: int) -> None:
    assert charts.bucket_seconds(span_s) == bucket


def test_steps_are_labelled_journey_slash_step() -> None:
    assert charts.step_label("browse", "list") == "browse / list"
    assert charts.step_label("", "list") == "list"
    assert charts.step_label("", "") == "(unnamed)"


def test_error_cause_names_the_status_or_the_missing_response() -> None:
    assert charts.error_cause(503, "") == "HTTP 503"
    assert charts.error_cause(0, "dial: connection refused") == "no response: dial: connection refused"
    assert charts.error_cause(500, "boom") == "HTTP 500: boom"


def test_latency_chart_is_a_line_per_step_and_percentile_over_utc_time() -> None:
    chart = spec(charts.latency_chart(SERIES))
    assert chart["mark"]["type"] == "line"
    enc = chart["encoding"]
    assert (enc["x"]["field"], enc["x"]["type"], enc["x"]["scale"]["type"]) == ("t", "temporal", "utc")
    assert (enc["y"]["field"], enc["y"]["type"]) == ("latency_ms", "quantitative")
    assert (enc["color"]["field"], enc["strokeDash"]["field"]) == ("series", "percentile")
    assert enc["strokeDash"]["sort"] == ["p50", "p95", "p99"]
    drawn = rows(charts.latency_chart(SERIES))
    assert len(drawn) == len(SERIES) * 3
    assert {(r["series"], r["percentile"], r["latency_ms"]) for r in drawn} >= {
        ("checkout / pay", "p95", 8.0), ("browse / list", "p99", 3.5)}


def test_latency_chart_draws_only_the_chosen_percentiles_in_canonical_order() -> None:
    drawn = rows(charts.latency_chart(SERIES, percentiles=["p99_ms", "p50_ms"]))
    assert [r["percentile"] for r in drawn[:3]] == ["p50"] * 3
    assert {r["percentile"] for r in drawn} == {"p50", "p99"}


def test_latency_chart_legend_picks_out_a_step() -> None:
    chart = spec(charts.latency_chart(SERIES))
    (param,) = chart["params"]
    assert param["bind"] == "legend" and param["select"]["fields"] == ["series"]
    assert [c["param"] for c in chart["encoding"]["opacity"]["condition"]] == [param["name"]]


def test_rps_chart_stacks_requests_per_second_by_step() -> None:
    chart = spec(charts.rps_chart(SERIES))
    assert chart["mark"]["type"] == "area"
    assert (chart["encoding"]["y"]["field"], chart["encoding"]["y"]["stack"]) == ("rps", "zero")
    assert chart["encoding"]["color"]["field"] == "series"
    assert sum(r["rps"] for r in rows(charts.rps_chart(SERIES))) == 27


def test_errors_chart_sorts_causes_by_count() -> None:
    chart = spec(charts.errors_chart(ERRORS))
    assert chart["mark"]["type"] == "bar"
    assert (chart["encoding"]["y"]["field"], chart["encoding"]["y"]["sort"]) == ("cause", "-x")
    assert [r["cause"] for r in rows(charts.errors_chart(ERRORS))] == [
        "no response: dial: connection refused", "HTTP 503"]


@pytest.mark.parametrize("build", [charts.latency_chart, charts.rps_chart, charts.errors_chart])
def test_charts_of_no_rows_are_empty_not_errors(build: Any) -> None:
    assert rows(build([])) == []


# -- the tables and headline figures beside the charts ------------------------------------------


def verdict(passed: bool, slo: str = "overall p95 < 100 ms") -> Verdict:
    return Verdict(slo, "overall", "p95", 100.0, 50.0 if passed else 150.0, passed)


def test_headline_passes_only_when_every_slo_passes() -> None:
    totals = figures(count=200, errors=5, p95_ms=12.5, span_s=4.0)
    head = Headline.of(totals, [verdict(True), verdict(False, "checkout/pay error_rate < 1%")])
    assert (head.requests, head.rps, head.errors, head.error_rate, head.p95_ms) == (200, 50.0, 5, 0.025, 12.5)
    assert (head.slo_status, head.slo_summary) == ("FAILED", "1 of 2 failed")
    assert "checkout/pay error_rate < 1%" in head.slo_detail
    assert Headline.of(totals, [verdict(True)]).slo_status == "PASSED"
    assert Headline.of(totals, []).slo_status == "NO SLOS"


def test_headline_of_an_aborted_or_incomplete_run_is_never_passed() -> None:
    totals = figures(count=200, errors=0, p95_ms=12.5, span_s=4.0)
    assert Headline.of(totals, [verdict(True)], "aborted").slo_status == "ABORTED"
    assert Headline.of(totals, [verdict(True)], "failed").slo_status == "INCOMPLETE"
    assert Headline.of(totals, [], "running").slo_status == "INCOMPLETE"


def test_headline_of_a_run_without_requests_has_no_rates_or_latency() -> None:
    head = Headline.of(figures(count=0, errors=0, p95_ms=math.nan, span_s=1.0), [])
    assert (head.requests, head.rps, head.error_rate, head.p95_ms) == (0, None, None, None)
    assert ms(head.p95_ms) == "–" and ms(1234.5) == "1,234.50"


RUNS = [
    RunListRow("b", tool="k6", spec_name="shop", status="completed", started_at="2026-01-02 10:00:00",
               ended_at="2026-01-02 10:01:30.500", git_sha="0123456789abcdef", requests=10),
    RunListRow("a", tool="jmeter", spec_name="", status="failed", started_at="2026-01-01 09:00:00",
               ended_at=None, git_sha="", requests=0),
]


def test_runs_filters_offer_every_value_present_and_all() -> None:
    assert choices(RUNS, "tool") == [ALL, "jmeter", "k6"]
    assert choices(RUNS, "spec_name") == [ALL, "shop"]
    assert [r.run_id for r in filter_runs(RUNS, status=ALL, tool="")] == ["b", "a"]
    assert [r.run_id for r in filter_runs(RUNS, status="failed")] == ["a"]


def test_runs_frame_keeps_order_and_adds_duration_and_a_short_sha() -> None:
    frame = runs_frame(RUNS)
    assert list(frame["run_id"]) == ["b", "a"]
    assert frame["duration_s"].iloc[0] == 90.5 and math.isnan(frame["duration_s"].iloc[1])
    assert list(frame["git_sha"]) == ["0123456789", ""]


def test_steps_frame_labels_steps_and_guards_the_error_percentage() -> None:
    steps = [figures(journey="browse", step="list", service="api", count=8, errors=2, avg_ms=1.0, min_ms=0.5,
                     max_ms=3.0, p50_ms=1.0, p90_ms=2.0, p95_ms=2.5, p99_ms=3.0),
             figures(journey="browse", step="idle", service="api", count=0, errors=0, avg_ms=None, min_ms=None,
                     max_ms=None, p50_ms=None, p90_ms=None, p95_ms=None, p99_ms=None)]
    frame = steps_frame(steps)
    assert list(frame.columns[:5]) == ["step", "service", "count", "errors", "error_pct"]
    assert frame["error_pct"].iloc[0] == 25.0 and math.isnan(frame["error_pct"].iloc[1])


def test_slo_frame_marks_each_verdict() -> None:
    frame = slo_frame([verdict(True), verdict(False)])
    assert list(frame["verdict"]) == ["PASS", "FAIL"]
    assert slo_frame([]).empty


@pytest.mark.parametrize(("status", "slos", "failed", "verdict"), [
    ("completed", 3, 1, "FAILED"), ("completed", 3, 0, "PASSED"), ("imported", 0, 0, "NO SLOS"),
    ("aborted", 3, 0, "ABORTED"),  # partial data is never a pass
    ("aborted", 0, 0, "ABORTED"), ("failed", 2, 0, "INCOMPLETE"), ("running", 2, 0, "INCOMPLETE"),
])
def test_a_run_verdict_comes_from_its_status_and_its_slos(status: str, slos: int, failed: int, verdict: str) -> None:
    from dashboard.tables import VERDICTS, verdict_of, verdict_style

    assert verdict_of(status, slos, failed) == verdict and verdict in VERDICTS
    assert "background-color" in verdict_style(verdict) and verdict_style("running") == ""


def test_runs_frame_adds_a_verdict_per_run() -> None:
    rows = [replace(RUNS[0], slos=2, slos_failed=1, status="completed"), replace(RUNS[1], status="aborted")]
    assert list(runs_frame(rows)["verdict"]) == ["FAILED", "ABORTED"]


INFRA = [
    InfraBucket("2026-01-02 10:00:00", "s", "cpu_seconds_total", "{}", mean=1.0, last=2.0),
    InfraBucket("2026-01-02 10:00:05", "s", "cpu_seconds_total", "{}", mean=3.0, last=4.5),
    InfraBucket("2026-01-02 10:00:10", "s", "cpu_seconds_total", "{}", mean=0.1, last=0.2),
    InfraBucket("2026-01-02 10:00:00", "s", "load1", "{'host':'a'}", mean=0.5, last=0.6),
    InfraBucket("2026-01-02 10:00:05", "s", "load1", "{'host':'a'}", mean=0.7, last=0.9),
]


def test_infra_frame_turns_counters_into_rates_and_keeps_gauges_as_means() -> None:
    frame = charts.infra_frame(INFRA)
    cpu = frame[frame["series"] == "cpu_seconds_total"]
    assert list(cpu["value"]) == [0.5, 0.0]  # (4.5 - 2) / 5 s, then a counter reset (not negative)
    load = frame[frame["series"] == "load1 {'host':'a'}"]
    assert list(load["value"]) == [0.5, 0.7] and set(load["unit"]) == {""}


def test_the_infrastructure_overlay_shares_one_time_brush_between_its_panels() -> None:
    chart = spec(charts.infra_overlay_chart(SERIES, INFRA, steps=["browse / list"]))
    (brush,) = chart["params"]
    assert brush["select"]["encodings"] == ["x"] and len(brush["views"]) == 2
    top, below = chart["vconcat"]
    latency, overlay = top["layer"]
    assert overlay["encoding"]["y"]["axis"]["orient"] == "right"
    for panel in (latency, below):
        assert [c["param"] for c in panel["encoding"]["opacity"]["condition"]] == ["window"]
    drawn = chart["datasets"][latency["data"]["name"]]
    assert {r["series"] for r in drawn} == {"browse / list"}


def test_top_steps_ranks_by_time_spent_then_errors() -> None:
    steps = [figures(journey="a", step="fast", count=1000, avg_ms=1.0, errors=0),
             figures(journey="a", step="slow", count=10, avg_ms=500.0, errors=0),
             figures(journey="b", step="broken", count=1000, avg_ms=1.0, errors=9),
             figures(journey="b", step="idle", count=0, avg_ms=math.nan, errors=0)]
    assert charts.top_steps(steps, 3) == ["a / slow", "b / broken", "a / fast"]


def test_run_files_lists_scripts_first_and_guards_large_files(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard import rundir

    monkeypatch.setattr(rundir, "DOWNLOAD_LIMIT_BYTES", 100)
    run = tmp_path / "20260101-k6-ab12"
    run.mkdir()
    for name, size in (("k6-console.log", 10), ("k6.json", 101), ("shop.k6.js", 5),
                       ("effective.json", 3), ("shop.yaml", 4)):
        (run / name).write_bytes(b"x" * size)
    files = rundir.run_files(tmp_path, run.name)
    assert files is not None
    assert [(f.name, f.kind) for f in files] == [("shop.k6.js", "script"), ("shop.yaml", "spec"),
                                                 ("effective.json", "run"), ("k6-console.log", "log"),
                                                 ("k6.json", "results")]
    assert [f.downloadable for f in files] == [True, True, True, True, False]
    assert rundir.run_files(tmp_path, "missing") is None and rundir.run_files(tmp_path, "../etc") is None


@pytest.mark.parametrize(("run_status", "passed", "verdict"), [
    ("completed", [True, False], "FAILED"), ("completed", [True], "PASSED"), ("completed", [], "NO SLOS"),
    ("running", [True], "INCOMPLETE"), ("aborted", [True], "ABORTED"),
])
def test_the_headline_verdict_weighs_the_run_status(run_status: str, passed: list[bool], verdict: str) -> None:
    verdicts = [Verdict("s", "overall", "p95", 1.0, 0.5, p) for p in passed]
    assert Headline.of(figures(count=1, errors=0, span_s=1.0), verdicts, run_status).verdict == verdict


def test_the_dashboard_has_no_sql_of_its_own() -> None:
    """Pages read through the warehouse API: no string in dashboard/ is SQL, except the SQL page's example,
    which the user runs through the SQL gate."""
    import ast
    import re
    from pathlib import Path

    import dashboard
    from dashboard.pages import _EXAMPLE_SQL

    sql = re.compile(r"^\s*(SELECT|WITH|INSERT|ALTER|CREATE|DROP|SET)\b", re.I)
    found = []
    for path in Path(dashboard.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [(path.name, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and sql.match(node.value)
                  and node.value != _EXAMPLE_SQL]
        found += [(path.name, ast.unparse(node)) for node in ast.walk(tree)
                  if isinstance(node, ast.Attribute) and node.attr in ("query", "command") and
                  isinstance(node.value, ast.Attribute) and node.value.attr == "backend"]
    assert not found


def test_distribution_frame_names_each_run_and_keeps_its_quantile_points() -> None:
    dist = [LatencyDistribution("a", 10, [DistributionPoint(1.0, 0.0), DistributionPoint(5.0, 1.0)]),
            LatencyDistribution("b", 12, [DistributionPoint(2.0, 0.0), DistributionPoint(9.0, 1.0)])]
    frame = charts.distribution_frame(dist, {"a": "A a (k6)", "b": "B b (jmeter)"})
    assert frame.to_dict("records") == [
        {"run": "A a (k6)", "ms": 1.0, "fraction": 0.0, "requests": 10},
        {"run": "A a (k6)", "ms": 5.0, "fraction": 1.0, "requests": 10},
        {"run": "B b (jmeter)", "ms": 2.0, "fraction": 0.0, "requests": 12},
        {"run": "B b (jmeter)", "ms": 9.0, "fraction": 1.0, "requests": 12}]
    drawn = spec(charts.distribution_chart(frame))
    assert drawn["encoding"]["x"]["scale"]["type"] == "log"
    zero = frame.assign(ms=[0.0, 5.0, 2.0, 9.0])  # a 0 ms request has no place on a log axis
    assert "type" not in spec(charts.distribution_chart(zero))["encoding"]["x"]["scale"]


def test_trend_chart_layers_the_series_its_change_points_and_the_baseline() -> None:
    from warehouse.analysis.trends import Point, Series, TrendChange

    series = Series("fp", "shop", "k6", "ci", "", "", "", "p95",
                    [Point(f"r{i}", f"2026-01-01 1{i}:00:00.000", v, 100) for i, v in enumerate((10, 10, 20, 20))],
                    [TrendChange("r2", "2026-01-01 12:00:00.000", 2, "up", 10, 20, 1.0, 0.001, True)])
    points, changes = charts.trend_frame([series]), charts.change_frame([series])
    assert list(points["step"]) == ["overall"] * 4 and list(points["value"]) == [10, 10, 20, 20]
    assert changes[["run_id", "kind"]].to_dict("records") == [{"run_id": "r2", "kind": "worse"}]
    baseline = charts.BaselineMark("r1", "pinned", "2026-01-01 11:00:00.000")
    drawn = spec(charts.trend_chart(points, changes, "p95", baseline))
    assert drawn["title"] == "p95 per step over the history" and len(drawn["layer"]) == 4
    marked = [d for d in drawn["datasets"].values() if d and "label" in d[0]]
    assert marked == [[{"started_at": "2026-01-01T11:00:00+00:00", "run_id": "r1", "label": "baseline (pinned)"}]]
    assert len(spec(charts.trend_chart(points, changes, "p95", None))["layer"]) == 4  # no baseline: nothing marked


def test_compare_frame_holds_both_runs_figures_the_change_and_the_verdict() -> None:
    from dashboard.tables import compare_frame
    from warehouse.analysis.compare import CompareVerdict, Comparison, Side, StepComparison

    a, b = Side(1000, 0, 10.0, 20.0, 30.0, rps=50.0), Side(1000, 10, 12.0, 30.0, 33.0, rps=50.0)
    step = StepComparison("shop", "pay", a, b, CompareVerdict.WORSE, "slower")
    frame = compare_frame(Comparison(RunRecord("A"), RunRecord("B"), [step],
                                     StepComparison("", "", a, b, CompareVerdict.WORSE, "slower")))
    first = frame.iloc[0]
    assert list(frame["step"]) == ["shop/pay", "overall"] and list(frame.columns[:2]) == ["step", "verdict"]
    assert (first["p95_a_ms"], first["p95_b_ms"], first["change_p95"]) == (20.0, 30.0, pytest.approx(50.0))
    assert (first["errors_a"], first["errors_b"], first["verdict"], first["reason"]) == (0.0, 0.01, "WORSE", "slower")
