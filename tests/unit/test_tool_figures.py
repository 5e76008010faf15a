"""How a tool's interval aggregates fold into its figures per step (pure: rows as the warehouse gives them)."""

from __future__ import annotations

from warehouse.read.records import ToolInterval, ToolStepAggregate
from warehouse.report.tool_figures import figures_of
from warehouse.tools.locust.figures import HOW


def row(step: str, status: str, source: str, intervals: list[dict[str, float]], journey: str = ""
        ) -> ToolStepAggregate:
    """A TOOL_STEP_FIGURES row folded from the given intervals (oldest first)."""
    keys = {k for f in intervals for k in f}
    return ToolStepAggregate.of({
        "journey": journey, "step": step, "status": status, "source": source, "intervals": len(intervals),
        "sums": {k: sum(f.get(k, 0) for f in intervals) for k in keys},
        "lows": {k: min(f[k] for f in intervals if k in f) for k in keys},
        "highs": {k: max(f[k] for f in intervals if k in f) for k in keys},
        "last": intervals[-1],
        "weighted_avg": sum(f["avg"] * f["count"] for f in intervals if "avg" in f and "count" in f),
        "avg_weight": sum(f["count"] for f in intervals if "avg" in f and "count" in f),
    })


def test_locusts_end_of_test_statistics_win_over_its_history() -> None:
    stats = {"count": 40, "failures": 2, "avg": 9.5, "min": 2.0, "max": 80.0, "rps": 13.3, "pct50": 8, "pct95": 30,
             "pct99.9": 80}
    history = [{"count": 10, "failures": 0, "avg": 8.0, "median": 7, "pct95": 12},
               {"count": 35, "failures": 1, "avg": 9.0, "median": 8, "pct95": 60}]
    figures = figures_of("locust", [row("GET /a", "all", "stats", [stats]),
                                    row("GET /a", "all", "stats_history", history)], [])
    [step] = figures.steps
    assert (step.count, step.failures, step.avg_ms, step.rps) == (40, 2, 9.5, 13.3)
    assert step.percentiles == {50.0: 8.0, 95.0: 30.0, 99.9: 80.0} and step.failure_rate == 0.05
    assert figures.how == HOW["stats"]


def test_locusts_history_alone_gives_running_totals_and_only_the_median() -> None:
    """The history's percentiles cover a window of the last seconds, not the run: only the running median stands."""
    history = [{"count": 10, "failures": 0, "avg": 8.0, "min": 3.0, "max": 20.0, "median": 7, "pct95": 12},
               {"count": 35, "failures": 1, "avg": 9.0, "min": 2.0, "max": 44.0, "median": 8, "pct95": 60}]
    figures = figures_of("locust", [row("GET /a", "all", "stats_history", history)], [])
    [step] = figures.steps
    assert (step.count, step.failures, step.avg_ms, step.min_ms, step.max_ms) == (35, 1, 9.0, 2.0, 44.0)
    assert step.percentiles == {50.0: 8.0} and step.rps is None
    assert figures.how == HOW["history"]


def test_jmeter_intervals_sum_counts_weight_averages_and_keep_the_worst_percentile() -> None:
    all_lines = [{"count": 10, "avg": 10.0, "min": 4.0, "max": 30.0, "pct95.0": 25.0},
                 {"count": 30, "avg": 20.0, "min": 5.0, "max": 90.0, "pct95.0": 70.0}]
    ko = [{"count": 3, "avg": 60.0, "min": 50.0, "max": 90.0}]
    overall = [{"count": 12, "countError": 0, "avg": 11.0}, {"count": 33, "countError": 3, "avg": 21.0}]
    timeline = [ToolInterval("2026-01-01 10:00:05.000000", "", {"count": 12.0, "countError": 0.0}),
                ToolInterval("2026-01-01 10:00:10.000000", "", {"count": 33.0, "countError": 3.0, "pct95.0": 66.0})]
    figures = figures_of("jmeter", [row("list", "all", "", all_lines, "shop"), row("list", "ko", "", ko, "shop"),
                                    row("all", "all", "", overall, "shop")], timeline)
    [step] = figures.steps
    assert (step.count, step.failures, step.min_ms, step.max_ms) == (40, 3, 4.0, 90.0)
    assert step.avg_ms == (10 * 10.0 + 30 * 20.0) / 40 and step.percentiles == {95.0: 70.0}
    assert figures.overall is not None and (figures.overall.count, figures.overall.failures) == (45, 3)
    assert [(p.rps, p.failures_per_s, p.p95_ms) for p in figures.timeline] == [(2.4, 0.0, None), (6.6, 0.6, 66.0)]


def test_jmeter_without_an_all_line_adds_its_ok_and_ko_lines() -> None:
    ok = [{"count": 8, "avg": 10.0, "min": 4.0, "max": 20.0, "pct95.0": 18.0}]
    ko = [{"count": 2, "avg": 40.0, "min": 30.0, "max": 50.0, "pct95.0": 50.0}]
    [step] = figures_of("jmeter", [row("login", "ok", "", ok), row("login", "ko", "", ko)], []).steps
    assert (step.count, step.failures, step.min_ms, step.max_ms) == (10, 2, 4.0, 50.0)
    assert step.avg_ms == (8 * 10.0 + 2 * 40.0) / 10
    assert step.percentiles == {}  # the ok and ko samples' percentiles do not combine into all samples'


def test_a_tool_without_a_folding_shows_no_figures_of_its_own() -> None:
    """A tool the warehouse has no folding for is not read as another tool's statistics."""
    lines = [row("GET /a", "all", "stats", [{"count": 4, "failures": 0, "avg": 9.0}])]
    assert figures_of("gatling", lines, []) is None
    assert figures_of("k6", lines, []) is None
