"""k6's own end-of-test summary (`--summary-export` / handleSummary JSON): where it lies beside k6's results, and
its figures beside the warehouse's over the same requests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from warehouse.read.records import Figures, SummaryFigure

# The file that speaks for a run that keeps several summaries (a run split over generators keeps one per part).
PREFERRED = "k6-summary.json"

# (figure, k6 metric, k6 field, the report's totals' figure)
_FIGURES: tuple[tuple[str, str, str, Callable[[Figures], float | None]], ...] = (
    ("requests", "http_reqs", "count", lambda t: t.count),
    # k6 divides by the test's duration (its start-up and graceful stop included), the warehouse by the span of
    # the requests: the two rates differ by that much, which the report's headline says
    ("requests/s", "http_reqs", "rate", lambda t: t.throughput),
    ("request error rate", "http_req_failed", "value", lambda t: t.error_rate),
    ("avg ms", "http_req_duration", "avg", lambda t: t.avg_ms),
    ("p50 ms", "http_req_duration", "med", lambda t: t.p50_ms),
    ("p90 ms", "http_req_duration", "p(90)", lambda t: t.p90_ms),
    ("p95 ms", "http_req_duration", "p(95)", lambda t: t.p95_ms),
    ("p99 ms", "http_req_duration", "p(99)", lambda t: t.p99_ms),
    ("max ms", "http_req_duration", "max", lambda t: t.max_ms),
)


def beside(results: Path) -> list[Path]:
    """k6's name for the summary of a results file, as perfhouse's runs keep it: k6.json → k6-summary.json,
    k6-2.json → k6-summary-2.json (the part of a run split over generators)."""
    name = results.name.removesuffix(".gz").removesuffix(".json")
    if name.startswith("k6"):
        return [results.with_name("k6-summary" + name[2:] + ".json")]
    return []


def figures(summary: dict[str, Any] | None, totals: Figures) -> list[SummaryFigure]:
    """The figures k6's own summary gives for the run beside the warehouse's (k6 computes p99 only when its
    summaryTrendStats ask for it; a figure it lacks is left out)."""
    metrics = (summary or {}).get("metrics") or {}
    out = []
    for name, metric, key, ours in _FIGURES:
        values = metrics.get(metric) or {}
        theirs = values.get(key, values.get("rate") if key == "value" else None)
        value = ours(totals)
        if theirs is None or value is None:
            continue
        mine = float(value)
        out.append(SummaryFigure(name, mine, "k6", float(theirs), mine - float(theirs)))
    return out
