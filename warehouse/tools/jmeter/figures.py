"""JMeter's own figures from its InfluxDB backend listener, kept as interval aggregates: how they fold per step
and over time.

The listener sends per interval and per transaction a line for all samples, the ok and the ko ones. Counts are
summed over the intervals, averages weighted by count, min and max taken over the intervals; percentiles of
intervals cannot be combined exactly, so a step's percentile is the highest of its intervals' (never better than
the run was). Failures are the ko samples (the `all` transaction's countError overall).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import pairwise

from warehouse.read.records import ToolInterval, ToolStepAggregate
from warehouse.tools import Folding, ToolPoint, ToolStep, as_float, as_int, levels

HOW = ("JMeter's backend-listener figures, as JMeter computed them per interval: counts summed, averages "
       "weighted by count, min and max over the intervals; a percentile is the highest of the intervals' "
       "(interval percentiles cannot be combined exactly), not perfhouse's exact percentiles over every "
       "request; failures are JMeter's failed samples (ko).")


def step(key: tuple[str, str], rows: list[ToolStepAggregate]) -> ToolStep:
    """All samples' line per interval when JMeter sent it, else the ok and ko lines together."""
    status = {r.status: r for r in rows}
    chosen = [status["all"]] if "all" in status else list(status.values())
    count = sum(float(r.sums.get("count", 0)) for r in chosen)
    weight = sum(float(r.avg_weight) for r in chosen)
    lows = [float(r.lows["min"]) for r in chosen if "min" in r.lows]
    highs = [float(r.highs["max"]) for r in chosen if "max" in r.highs]
    failures: float | None = None
    if "ko" in status:
        failures = float(status["ko"].sums.get("count", 0))
    elif "all" in status and "countError" in status["all"].sums:
        failures = float(status["all"].sums["countError"])
    elif "ok" in status:
        failures = 0.0
    percentiles = levels(chosen[0].highs) if len(chosen) == 1 else {}
    return ToolStep(*key, as_int(count), as_int(failures),
                    sum(float(r.weighted_avg) for r in chosen) / weight if weight else None,
                    min(lows) if lows else None, max(highs) if highs else None, None, percentiles)


def timeline(rows: Iterable[ToolInterval]) -> list[ToolPoint]:
    """JMeter's `all` transaction per interval (counts over the interval's length)."""
    points = list(rows)
    times = [_seconds(r.t) for r in points]
    gaps = sorted(b - a for a, b in pairwise(times) if b > a)
    interval = gaps[0] if gaps else None
    out = []
    for r in points:
        f = r.f
        count, errors = f.get("count"), f.get("countError")
        out.append(ToolPoint(r.t,
                             float(count) / interval if interval and count is not None else None,
                             float(errors) / interval if interval and errors is not None else None,
                             as_float(f.get("pct50.0")), as_float(f.get("pct95.0"))))
    return out


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


FOLDING = Folding("all", step, timeline, lambda rows: HOW, failures_from_steps=True)
