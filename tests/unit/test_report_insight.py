"""The pure parts of reports: verdicts, percentile options, APDEX, bottlenecks, load steps and the knee,
correlation, SLO scopes read back, any-percentile SLOs in specs and k6 thresholds, and the JUnit writer."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from orchestrator.errors import SpecError
from orchestrator.generators import GenerationOptions
from orchestrator.spec import load_spec
from orchestrator.tools import generate
from tests.support.figures import figures
from warehouse.analysis import insight, junit
from warehouse.analysis.slo import Objective, Verdict, percentile_level
from warehouse.errors import WarehouseError
from warehouse.report.reports import (
    ABORTED,
    FAILED,
    INCOMPLETE,
    NO_SLOS,
    PASSED,
    ReportOptions,
    group_verdict,
    objective_of,
    parse_percentiles,
    run_verdict,
)


def verdict(passed: bool, scope: str = "overall", metric: str = "p95") -> Verdict:
    return Verdict(f"{scope} {metric}", scope, metric, 100.0, 50.0, passed)


@pytest.mark.parametrize(("status", "slos", "expected"), [
    ("completed", [verdict(True)], PASSED),
    ("imported", [verdict(True), verdict(False)], FAILED),
    ("completed", [], NO_SLOS),
    ("aborted", [verdict(True)], ABORTED),  # partial data is never a pass
    ("failed", [verdict(True)], INCOMPLETE),
    ("running", [], INCOMPLETE),
])
def test_the_run_verdict_says_what_happened(status: str, slos: list[Verdict], expected: str) -> None:
    assert run_verdict(status, slos) == expected


def test_a_group_takes_its_most_severe_verdict() -> None:
    assert group_verdict([PASSED, FAILED]) == FAILED
    assert group_verdict([FAILED, ABORTED, PASSED]) == ABORTED
    assert group_verdict([PASSED, PASSED]) == PASSED


def test_percentiles_option_accepts_any_level_below_100() -> None:
    assert parse_percentiles("50,75,95,99,99.9") == (50, 75, 95, 99, 99.9)
    assert parse_percentiles("p90, 99.99") == (90, 99.99)
    for bad, message in (("", "at least one"), ("100", "between 0 and 100"), ("x", "not a number"),
                         ("1,2,3,4,5,6,7,8,9", "at most 8")):
        with pytest.raises(WarehouseError, match=message):
            parse_percentiles(bad)
    levels = ReportOptions((75, 99.9)).levels()
    assert levels[:6] == [50, 75, 90, 95, 99, 99.9] and len(levels) == 12


def test_percentile_metrics_name_their_level() -> None:
    assert percentile_level("p75") == 0.75 and percentile_level("p99.9") == pytest.approx(0.999)
    assert percentile_level("avg") is None and percentile_level("p100") is None and percentile_level("p0") is None
    assert Objective("p99.9", 250).label == "overall p99.9 < 250 ms"


def test_apdex_counts_tolerating_as_half_and_failures_as_frustrated() -> None:
    assert insight.apdex(60, 30, 100) == 0.75
    assert insight.apdex(0, 0, 0) is None


def test_bottlenecks_rank_by_time_and_error_share() -> None:
    steps = [
        figures(journey="shop", step="list", total_ms=100.0, errors=0, p50_ms=1.0, p99_ms=2.0),
        figures(journey="shop", step="pay", total_ms=100.0, errors=9, p50_ms=2.0, p99_ms=20.0),
        figures(journey="shop", step="detail", total_ms=800.0, errors=1, p50_ms=0.0, p99_ms=5.0),
    ]
    ranked = insight.bottlenecks(steps)
    assert [b.step for b in ranked] == ["pay", "detail", "list"]  # 0.1 + 0.9 ahead of 0.8 + 0.1
    assert ranked[0].tail_ratio == 10 and ranked[1].tail_ratio is None  # no ratio over a p50 of 0
    assert math.isclose(sum(b.time_share for b in ranked), 1.0)


def seconds(levels: list[float], start: int = 0) -> list[tuple[str, float]]:
    return [(f"2026-01-01 10:{(start + i) // 60:02d}:{(start + i) % 60:02d}", v) for i, v in enumerate(levels)]


def test_load_steps_are_long_stretches_at_one_level_and_ramps_are_not() -> None:
    levels = seconds([1, 1, 1, 1, 2, 3, 3, 3, 3, 3, 4, 5, 6, 6, 6, 6, 7, 10, 10, 10, 10, 10])
    found = insight.plateaus(levels)
    assert [(p.level, p.buckets) for p in found] == [(1, 4), (3, 5), (6, 4), (10, 5)]
    assert insight.is_stepped(found)
    assert insight.window(found[1]) == ("2026-01-01 10:00:06.000000", "2026-01-01 10:00:10.000000")
    assert not insight.is_stepped(insight.plateaus(seconds([5] * 20)))
    gap = seconds([2, 2, 2], 0) + seconds([2, 2, 2], 10)  # no requests in between: two stretches
    assert len(insight.plateaus(gap)) == 2


def test_steps_map_to_whole_buckets() -> None:
    windows = [("2026-01-01 10:00:00", "2026-01-01 10:00:20"), ("2026-01-01 10:00:30", "2026-01-01 10:00:40")]
    parts = insight.bucket_parts(windows, 10)
    assert parts["parts"] == [1, 1, 0, 2] and parts["origin"] == 1767261600


def test_the_knee_is_the_last_step_before_the_first_miss() -> None:
    assert insight.knee([(10, True), (100, True), (50, False), (25, True)]) == 25
    assert insight.knee([(10, False)]) is None


def test_pearson_needs_four_points_and_variation() -> None:
    assert insight.pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert insight.pearson([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    assert insight.pearson([1, 2, 3], [1, 2, 3]) is None
    assert insight.pearson([1, 1, 1, 1], [1, 2, 3, 4]) is None


def test_counters_become_rates_and_latency_climbs_halfway_to_its_peak() -> None:
    points = [("2026-01-01 10:00:00", 10.0), ("2026-01-01 10:00:02", 14.0), ("2026-01-01 10:00:04", 1.0)]
    assert insight.as_rate(points) == [("2026-01-01 10:00:02", 2.0)]  # a reset gives no point
    timeline: list[tuple[str, float | None]] = list(seconds([10, 10, 12, 11, 30, 60, 100, 100]))
    climbed = insight.climb(timeline)
    assert climbed is not None and climbed.t == "2026-01-01 10:00:05" and climbed.early_p95_ms == 10
    assert insight.climb([(t, 10.0) for t, _ in seconds([0] * 8)]) is None


def test_an_slo_scope_reads_back_as_its_objective() -> None:
    journeys = {"shop"}
    assert objective_of(verdict(True, "overall"), journeys) == Objective("p95", 100.0)
    assert objective_of(verdict(True, "shop/pay"), journeys) == Objective("p95", 100.0, "shop", "pay")
    assert objective_of(verdict(True, "shop"), journeys) == Objective("p95", 100.0, journey="shop")
    assert objective_of(verdict(True, "pay"), journeys) == Objective("p95", 100.0, step="pay")
    assert objective_of(verdict(True, "service api"), journeys) == Objective("p95", 100.0, service="api")
    assert objective_of(verdict(True, "shop/pay @api"), journeys) == Objective("p95", 100.0, "shop", "pay",
                                                                              service="api")
    for o in (Objective("p95", 1, "shop", "pay", service="api"), Objective("p99.9", 1, step="pay")):
        assert objective_of(Verdict(o.label, o.scope, o.metric, 1, None, False), journeys) == o


SPEC = """
name: slo
services:
  api: http://127.0.0.1:9
journeys:
  - name: j
    steps:
      - name: s
        path: /
profiles:
  smoke:
    preset: smoke
slos:
  - metric: {metric}
    threshold: 250ms
"""


def test_specs_accept_any_percentile_slo_and_k6_thresholds_follow(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(metric="p99.9"))
    spec = load_spec(path)
    assert spec.slos[0].metric == "p99.9" and spec.slos[0].threshold == 250
    script = generate(spec, "k6", GenerationOptions("smoke", {})).content
    assert '"http_req_duration": ["p(99.9)<250"]' in script
    path.write_text(SPEC.format(metric="p75"))
    assert '"http_req_duration": ["p(75)<250"]' in generate(load_spec(path), "k6", GenerationOptions("smoke", {})).content
    for bad in ("p100", "p0", "q75", "p75x"):
        path.write_text(SPEC.format(metric=bad))
        with pytest.raises(SpecError, match=r"any percentile like p75 or p99\.9"):
            load_spec(path)


def test_junit_counts_and_escapes() -> None:
    suite = junit.Suite("run <1>", (
        junit.Case("a < b", "perfhouse.slo.overall", details="observed 1"),
        junit.Case("b", "c", failure='breached "x"', details="observed 2"),
        junit.Case("c", "c", error="aborted"),
        junit.Case("d", "c", skipped="none"),
    ), timestamp="2026-01-01T10:00:00", time_s=1.5)
    text = junit.write([suite])
    root = ET.fromstring(text.split("\n", 1)[1])
    assert root.get("tests") == "4" and root.get("failures") == "1" and root.get("errors") == "1"
    case = root.find("testsuite/testcase[@name='b']")
    assert case is not None and case.find("failure").get("message") == 'breached "x"'  # type: ignore[union-attr]
    assert root.find("testsuite").get("name") == "run <1>"  # type: ignore[union-attr]
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites')


def test_a_series_is_correlated_over_the_runs_whole_buckets_not_its_partial_first_and_last() -> None:
    """The last scrape of a run comes after the tool has closed its connections: in the run's last bucket (a
    second here), an idle sample stands beside the P95 of the last requests. That bucket (and the first) holds the
    run only in part, so it does not count: a series that rose with P95 through the run is correlated."""
    from warehouse.read.records import ReportInfraMean, TimelinePoint
    from warehouse.report.reports import _infra

    seconds = [f"2026-01-01 10:00:{s:02d}" for s in range(10)]
    timeline = [TimelinePoint(t, 10.0, 0, 0.0, 1.0, None, None, 20.0 * (i + 1), None) for i, t in enumerate(seconds)]
    load = [0.1 * (i + 1) for i in range(9)] + [0.0625]  # the last second: only the idle last scrape
    rows = [ReportInfraMean(t, "http://127.0.0.1:9100/metrics", "sut_cpu_ratio", "{}", v)
            for t, v in zip(seconds, load, strict=True)]
    assert insight.pearson(load, [p.p95_ms or 0 for p in timeline]) < insight.CORRELATED  # as it was counted
    cpu = _infra(rows, timeline).series[0]
    assert cpu.correlated and cpu.correlation == pytest.approx(1.0)
    assert cpu.points[-1].value == 0.0625  # the chart still shows every sample
