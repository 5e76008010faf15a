"""What a report reads out of a run's figures: APDEX, bottlenecks, load steps and their knee, infrastructure
series against latency. Pure functions over plain rows; the queries that feed them live in read.queries."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from warehouse.read.records import Bottleneck, Climb, Figures

CORRELATED = 0.6  # a series whose Pearson r with latency reaches this is named as correlated
CLIMB = 1.5  # latency "climbed" when P95 exceeds this multiple of its early level
SATURATED = 0.8  # a series at this share of its own peak when latency climbed is named as saturated


def apdex(satisfied: int, tolerating: int, count: int) -> float | None:
    """APDEX: (satisfied + tolerating / 2) / all requests; failed requests count as frustrated."""
    return (satisfied + tolerating / 2) / count if count else None


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's r of two equally long series; None with fewer than 4 points or a constant series."""
    n = len(xs)
    if n < 4 or n != len(ys):
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / math.sqrt(sxx * syy)


def bottlenecks(steps: Sequence[Figures]) -> list[Bottleneck]:
    """Steps ranked by impact: the share of all request time spent in the step plus its share of all failed
    requests; the tail ratio p99/p50 says how uneven the step is. Largest impact first."""
    total_ms = sum(float(s.total_ms) for s in steps) or 1.0
    total_errors = sum(int(s.errors) for s in steps)
    ranked = []
    for s in steps:
        time_share = float(s.total_ms) / total_ms
        error_share = int(s.errors) / total_errors if total_errors else 0.0
        p50, p99 = s.p50_ms, s.p99_ms
        tail = float(p99) / float(p50) if p50 and p99 is not None and float(p50) > 0 else None
        ranked.append(Bottleneck(step_name(s.journey, s.step), s.journey, s.step, time_share, error_share,
                                 tail, time_share + error_share))
    ranked.sort(key=lambda b: (-b.impact, -(b.tail_ratio or 0), b.name))
    return ranked


def step_name(journey: str, step: str) -> str:
    return f"{journey} / {step}" if journey else step or "(unnamed)"


# -- load steps --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plateau:
    """A stretch of the run at one load level: buckets `start` to `last` (UTC text, both included)."""

    level: float
    start: str
    last: str
    buckets: int


def plateaus(levels: Sequence[tuple[str, float]], bucket_s: int = 1) -> list[Plateau]:
    """The load steps of a run from its load level per bucket: stretches at one level that last at least half
    as long as the longest one (ramps between steps pass through levels for a bucket or two)."""
    runs: list[Plateau] = []
    previous: dt.datetime | None = None
    for t, level in levels:
        now = parse_time(t)
        adjacent = previous is not None and (now - previous).total_seconds() <= bucket_s
        if runs and adjacent and runs[-1].level == level:
            runs[-1] = replace(runs[-1], last=t, buckets=runs[-1].buckets + 1)
        else:
            runs.append(Plateau(float(level), t, t, 1))
        previous = now
    if not runs:
        return []
    longest = max(r.buckets for r in runs)
    keep = max(2, math.ceil(longest / 2))
    return [r for r in runs if r.buckets >= keep and r.level > 0]


def is_stepped(steps: Sequence[Plateau]) -> bool:
    """A stepped (capacity, stress) profile: at least three steps at different levels."""
    return len({p.level for p in steps}) >= 3


def window(p: Plateau, bucket_s: int = 1) -> tuple[str, str]:
    """The requests of a step: from its second bucket (the first may still be ramping) to its end."""
    start, last = parse_time(p.start), parse_time(p.last)
    if p.buckets >= 3:
        start += dt.timedelta(seconds=bucket_s)
    return _text(start), _text(last + dt.timedelta(seconds=bucket_s))


def bucket_parts(windows: Sequence[tuple[str, str]], bucket_s: int) -> dict[str, Any]:
    """Windows made of whole buckets as the first bucket's Unix second (`origin`) and, per bucket from there,
    the 1-based window it belongs to or 0 (`parts`)."""
    if not windows:
        return {"origin": 0, "parts": []}
    spans = [(_unix(a), _unix(b)) for a, b in windows]
    origin = spans[0][0]
    parts = []
    for k in range((max(b for _, b in spans) - origin) // bucket_s):
        at = origin + k * bucket_s
        parts.append(next((i for i, (a, b) in enumerate(spans, start=1) if a <= at < b), 0))
    return {"origin": origin, "parts": parts}


def _unix(text: str) -> int:
    return int(parse_time(text).replace(tzinfo=dt.UTC).timestamp())


def knee(steps: Sequence[tuple[float, bool]]) -> float | None:
    """The highest load level that met its objectives with every lower level meeting them too; `steps` is
    (level, met) per step."""
    best = None
    for level, met in sorted(steps, key=lambda s: s[0]):
        if not met:
            break
        best = level
    return best


# -- infrastructure ------------------------------------------------------------------------------------

def series_name(source: str, metric: str, labels_json: str, several_sources: bool) -> str:
    labels = json.loads(labels_json) if labels_json else {}
    text = metric + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
    return f"{text} @ {source}" if several_sources else text


def is_counter(metric: str) -> bool:
    """Prometheus counters (`_total`) are shown as their rate per second, which is what moves with load."""
    return metric.endswith("_total")


def as_rate(points: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """A counter's per-second rate between consecutive points (a reset gives no point)."""
    out = []
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        seconds = (parse_time(t1) - parse_time(t0)).total_seconds()
        if seconds > 0 and v1 >= v0:
            out.append((t1, (v1 - v0) / seconds))
    return out


def climb(timeline: Sequence[tuple[str, float | None]]) -> Climb | None:
    """When latency climbed: the first bucket whose P95 is past CLIMB times the early level (the median of
    the first quarter of the run) and halfway from it to the run's highest P95; None when it never did or
    the run is too short to tell. `timeline` is (time, P95) per bucket."""
    values = [(t, float(v)) for t, v in timeline if v is not None]
    if len(values) < 4:
        return None
    early = sorted(v for _, v in values[: max(1, len(values) // 4)])
    base = early[len(early) // 2]
    bar = max(CLIMB * base, (base + max(v for _, v in values)) / 2)
    for t, v in values:
        if base > 0 and v > bar:
            return Climb(t, v, base, v / base)
    return None


def value_at(points: Sequence[tuple[str, float]], t: str) -> float | None:
    """A series' value at time `t`: the last point at or before it."""
    at = parse_time(t)
    found = None
    for pt, v in points:
        if parse_time(pt) <= at:
            found = v
        else:
            break
    return found


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(str(text).replace(" ", "T")).replace(tzinfo=None)


def _text(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
