"""A tool's own figures of a run kept as interval aggregates (table `aggregates`): Locust's `--csv` statistics and
JMeter's InfluxDB backend listener. They are what the tool computed, not perfhouse's exact figures over requests:
this module reads them per step, overall and over time, and says how each figure was obtained.

- Locust's end-of-test statistics (PREFIX_stats.csv) give each request name's count, failures, average, min, max,
  requests/s and percentiles over the whole run, as Locust computed them (response times rounded into buckets).
  Its history (PREFIX_stats_history.csv) gives running totals (count, failures, average, min, max, median) and
  percentiles of a window of the last seconds only: without the statistics file, a step's percentiles are the
  history's last running median alone.
- JMeter's backend listener sends per interval and per transaction a line for all samples, the ok and the ko
  ones. Counts are summed over the intervals, averages weighted by count, min and max taken over the intervals;
  percentiles of intervals cannot be combined exactly, so a step's percentile is the highest of its intervals'
  (never better than the run was). Failures are the ko samples (the `all` transaction's countError overall).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import pairwise
from typing import Any

from warehouse.read import queries
from warehouse.read.records import RunRecord
from warehouse.store import Warehouse

_PCT = re.compile(r"pct(\d+(?:\.\d+)?)")

HOW = {
    "locust": "Locust's own statistics (its --csv files), as Locust computed them: percentiles from response times "
              "Locust rounds into buckets, not perfhouse's exact percentiles over every request; failures are "
              "Locust's (a failed request or a response the locustfile marked failed).",
    "locust-history": "Locust's own statistics over time (its --csv history only), as Locust computed them: running "
                      "totals at the last interval; its percentiles cover a window of the last seconds, so of the "
                      "whole run only the running median is known; failures are Locust's.",
    "jmeter": "JMeter's backend-listener figures, as JMeter computed them per interval: counts summed, averages "
              "weighted by count, min and max over the intervals; a percentile is the highest of the intervals' "
              "(interval percentiles cannot be combined exactly), not perfhouse's exact percentiles over every "
              "request; failures are JMeter's failed samples (ko).",
}


@dataclass(frozen=True)
class ToolStep:
    """One step's (or the whole run's) figures as the tool gave them; None where it gave none."""

    journey: str
    step: str
    count: int | None = None
    failures: int | None = None
    avg_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    rps: float | None = None
    percentiles: dict[float, float] = field(default_factory=dict)  # level in percent → ms

    @property
    def failure_rate(self) -> float | None:
        return self.failures / self.count if self.count and self.failures is not None else None

    def percentile(self, level: float) -> float | None:
        return self.percentiles.get(float(level))

    def to_dict(self) -> dict[str, Any]:
        return {"journey": self.journey, "step": self.step, "count": self.count, "failures": self.failures,
                "failure_rate": self.failure_rate, "avg_ms": self.avg_ms, "min_ms": self.min_ms,
                "max_ms": self.max_ms, "rps": self.rps,
                "percentiles": {f"p{level:g}": value for level, value in sorted(self.percentiles.items())}}


@dataclass(frozen=True)
class ToolPoint:
    """The whole run's figures in one interval of the tool's, as it gave them."""

    t: str
    rps: float | None = None
    failures_per_s: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    users: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.t, "rps": self.rps, "failures_per_s": self.failures_per_s, "p50_ms": self.p50_ms,
                "p95_ms": self.p95_ms, "users": self.users}


@dataclass(frozen=True)
class ToolFigures:
    """What a tool computed for a run: per step, overall and over time, and how (`how`)."""

    tool: str
    how: str
    steps: list[ToolStep]
    overall: ToolStep | None = None
    timeline: list[ToolPoint] = field(default_factory=list)

    @property
    def tool_name(self) -> str:
        return display_name(self.tool)

    @property
    def title(self) -> str:
        return f"{self.tool_name}'s own figures"

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "how": self.how, "steps": [s.to_dict() for s in self.steps],
                "overall": self.overall.to_dict() if self.overall else None,
                "timeline": [p.to_dict() for p in self.timeline]}


def display_name(tool: str) -> str:
    """How a tool is named in a sentence: Locust, JMeter, k6."""
    return {"locust": "Locust", "jmeter": "JMeter"}.get(tool, tool)


def tool_figures(warehouse: Warehouse, run: RunRecord) -> ToolFigures | None:
    """The run's figures as its tool computed them, or None when it has no interval aggregates."""
    run_id, tool = run.run_id, run.tool
    rows = warehouse.backend.query(queries.TOOL_STEP_FIGURES, {"run": run_id})
    if not rows:
        return None
    timeline = warehouse.backend.query(queries.TOOL_TIMELINE, {"run": run_id, "overall": _folding(tool).overall})
    return figures_of(tool, rows, timeline)


def figures_only(warehouse: Warehouse, run: RunRecord) -> bool:
    """Does the run hold its tool's own figures (interval aggregates) and no requests?"""
    rows = warehouse.backend.query(queries.RUN_HOLDS, {"run": run.run_id})
    return bool(rows) and int(rows[0]["aggregates"]) > 0 and int(rows[0]["requests"]) == 0


def figures_of(tool: str, rows: list[dict[str, Any]], timeline: list[dict[str, Any]]) -> ToolFigures:
    """The figures from TOOL_STEP_FIGURES and TOOL_TIMELINE rows (pure: no warehouse)."""
    by_step: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by_step.setdefault((str(r["journey"]), str(r["step"])), []).append(r)
    folding = _folding(tool)
    folded = {key: folding.step(key, found) for key, found in by_step.items()}
    overall = next((s for (_, step), s in folded.items() if step == folding.overall), None)
    steps = [s for (_, step), s in sorted(folded.items()) if step != folding.overall]
    if folding.failures_from_steps and overall is not None and overall.failures is None:
        overall = replace(overall, failures=sum(s.failures or 0 for s in steps))
    return ToolFigures(tool, folding.how(rows), steps, overall, folding.timeline(timeline))


def _levels(figures: dict[str, float]) -> dict[float, float]:
    out = {}
    for metric, value in figures.items():
        m = _PCT.fullmatch(metric)
        if m:
            out[float(m[1])] = float(value)
    return out


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else round(float(value))


def _locust_step(key: tuple[str, str], rows: list[dict[str, Any]]) -> ToolStep:
    """The end-of-test statistics when there are; else the history's running totals at its last interval."""
    stats = next((r for r in rows if str(r["source"]) == "stats"), None)
    if stats is not None:
        f = stats["last"]
        return ToolStep(*key, _int(f.get("count")), _int(f.get("failures")), _float(f.get("avg")),
                        _float(f.get("min")), _float(f.get("max")), _float(f.get("rps")), _levels(f))
    f = rows[-1]["last"]
    median = f.get("median")
    return ToolStep(*key, _int(f.get("count")), _int(f.get("failures")), _float(f.get("avg")), _float(f.get("min")),
                    _float(f.get("max")), None, {50.0: float(median)} if median is not None and f.get("count") else {})


def _jmeter_step(key: tuple[str, str], rows: list[dict[str, Any]]) -> ToolStep:
    """All samples' line per interval when JMeter sent it, else the ok and ko lines together."""
    status = {str(r["status"]): r for r in rows}
    chosen = [status["all"]] if "all" in status else list(status.values())
    count = sum(float(r["sums"].get("count", 0)) for r in chosen)
    weight = sum(float(r["avg_weight"]) for r in chosen)
    lows = [float(r["lows"]["min"]) for r in chosen if "min" in r["lows"]]
    highs = [float(r["highs"]["max"]) for r in chosen if "max" in r["highs"]]
    failures: float | None = None
    if "ko" in status:
        failures = float(status["ko"]["sums"].get("count", 0))
    elif "countError" in status.get("all", {}).get("sums", {}):
        failures = float(status["all"]["sums"]["countError"])
    elif "ok" in status:
        failures = 0.0
    percentiles = _levels(chosen[0]["highs"]) if len(chosen) == 1 else {}
    return ToolStep(*key, _int(count), _int(failures),
                    sum(float(r["weighted_avg"]) for r in chosen) / weight if weight else None,
                    min(lows) if lows else None, max(highs) if highs else None, None, percentiles)


def _locust_timeline(rows: Iterable[dict[str, Any]]) -> list[ToolPoint]:
    """Locust's history of the whole run (its `Aggregated` rows: requests/s, failures/s, windowed percentiles,
    users)."""
    return [ToolPoint(str(r["t"]), _float(r["f"].get("rps")), _float(r["f"].get("fps")),
                      _float(r["f"].get("pct50")), _float(r["f"].get("pct95")), _float(r["f"].get("users")))
            for r in rows if str(r["source"]) == "stats_history"]


def _jmeter_timeline(rows: Iterable[dict[str, Any]]) -> list[ToolPoint]:
    """JMeter's `all` transaction per interval (counts over the interval's length)."""
    points = list(rows)
    times = [_seconds(str(r["t"])) for r in points]
    gaps = sorted(b - a for a, b in pairwise(times) if b > a)
    interval = gaps[0] if gaps else None
    out = []
    for r in points:
        f = r["f"]
        count, errors = f.get("count"), f.get("countError")
        out.append(ToolPoint(str(r["t"]),
                             float(count) / interval if interval and count is not None else None,
                             float(errors) / interval if interval and errors is not None else None,
                             _float(f.get("pct50.0")), _float(f.get("pct95.0"))))
    return out


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _locust_how(rows: list[dict[str, Any]]) -> str:
    return HOW["locust" if any(str(r["source"]) == "stats" for r in rows) else "locust-history"]


@dataclass(frozen=True)
class _Folding:
    """How one tool's interval aggregates fold into its figures."""

    overall: str  # the name under which the tool gives its figures for the whole run
    step: Callable[[tuple[str, str], list[dict[str, Any]]], ToolStep]
    timeline: Callable[[Iterable[dict[str, Any]]], list[ToolPoint]]
    how: Callable[[list[dict[str, Any]]], str]
    failures_from_steps: bool = False  # an overall line without failures counts those of the steps


FOLDINGS = {
    "locust": _Folding("Aggregated", _locust_step, _locust_timeline, _locust_how),
    "jmeter": _Folding("all", _jmeter_step, _jmeter_timeline, lambda rows: HOW["jmeter"], failures_from_steps=True),
}


def _folding(tool: str) -> _Folding:
    """The tool's folding; another tool's lines are read as Locust's statistics are, with no overall line."""
    return FOLDINGS.get(tool) or replace(FOLDINGS["locust"], overall="")
