"""Locust's own figures from its `--csv` files, kept as interval aggregates: how they fold per step and over time.

Locust's end-of-test statistics (PREFIX_stats.csv) give each request name's count, failures, average, min, max,
requests/s and percentiles over the whole run, as Locust computed them (response times rounded into buckets).
Its history (PREFIX_stats_history.csv) gives running totals (count, failures, average, min, max, median) and
percentiles of a window of the last seconds only: without the statistics file, a step's percentiles are the
history's last running median alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from warehouse.read.records import ToolInterval, ToolStepAggregate
from warehouse.tools import Folding, ToolPoint, ToolStep, as_float, as_int, levels

HOW = {
    "stats": "Locust's own statistics (its --csv files), as Locust computed them: percentiles from response times "
             "Locust rounds into buckets, not perfhouse's exact percentiles over every request; failures are "
             "Locust's (a failed request or a response the locustfile marked failed).",
    "history": "Locust's own statistics over time (its --csv history only), as Locust computed them: running "
               "totals at the last interval; its percentiles cover a window of the last seconds, so of the "
               "whole run only the running median is known; failures are Locust's.",
}


def step(key: tuple[str, str], rows: list[ToolStepAggregate]) -> ToolStep:
    """The end-of-test statistics when there are; else the history's running totals at its last interval."""
    stats = next((r for r in rows if r.source == "stats"), None)
    if stats is not None:
        f = stats.last
        return ToolStep(*key, as_int(f.get("count")), as_int(f.get("failures")), as_float(f.get("avg")),
                        as_float(f.get("min")), as_float(f.get("max")), as_float(f.get("rps")), levels(f))
    f = rows[-1].last
    median = f.get("median")
    return ToolStep(*key, as_int(f.get("count")), as_int(f.get("failures")), as_float(f.get("avg")),
                    as_float(f.get("min")), as_float(f.get("max")), None,
                    {50.0: float(median)} if median is not None and f.get("count") else {})


def timeline(rows: Iterable[ToolInterval]) -> list[ToolPoint]:
    """Locust's history of the whole run (its `Aggregated` rows: requests/s, failures/s, windowed percentiles,
    users)."""
    return [ToolPoint(r.t, as_float(r.f.get("rps")), as_float(r.f.get("fps")), as_float(r.f.get("pct50")),
                      as_float(r.f.get("pct95")), as_float(r.f.get("users")))
            for r in rows if r.source == "stats_history"]


def how(rows: list[ToolStepAggregate]) -> str:
    return HOW["stats" if any(r.source == "stats" for r in rows) else "history"]


FOLDING = Folding("Aggregated", step, timeline, how)
