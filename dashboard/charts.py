"""Altair charts of one run (latency percentiles, throughput, errors): pure functions from rows to charts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import altair as alt
import pandas as pd

from warehouse.queries import CHECK_FAILURE

Rows: TypeAlias = Sequence[Mapping[str, Any]] | pd.DataFrame

PERCENTILES = ("p50_ms", "p95_ms", "p99_ms")
_NICE_BUCKETS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
_SERIES_COLUMNS = ("t", "journey", "step", "rps", "errors", *PERCENTILES)
_TIME = alt.X("t:T", title="time (UTC)", scale=alt.Scale(type="utc"),
              axis=alt.Axis(format="%H:%M:%S", labelOverlap=True))
_STEP_COLOUR = alt.Color("series:N", title="step", scale=alt.Scale(scheme="tableau10"))


def bucket_seconds(span_s: float | None, max_points: int = 150) -> int:
    """The smallest round bucket width that keeps a run's time series to about `max_points` per step."""
    if span_s is None or not math.isfinite(span_s) or span_s <= 0:
        return 1
    wanted = span_s / max_points
    return next((b for b in _NICE_BUCKETS_S if b >= wanted), _NICE_BUCKETS_S[-1])


def step_label(journey: str, step: str) -> str:
    """How a step is named in legends and tables: `journey / step`, or the step alone."""
    return f"{journey} / {step}" if journey else step or "(unnamed)"


def error_cause(status: int, error: str) -> str:
    """A failed request's cause in a few words: the HTTP status and the tool's error text."""
    head = f"HTTP {status}" if status else "no response"
    return f"{head}: {error}" if error else head


def series_frame(rows: Rows) -> pd.DataFrame:
    """Latency-over-time rows as a frame with `t` parsed as UTC and a `series` (step) label."""
    frame = pd.DataFrame(rows, columns=list(_SERIES_COLUMNS)) if not isinstance(rows, pd.DataFrame) else rows.copy()
    frame["t"] = pd.to_datetime(frame["t"], utc=True)
    frame["series"] = [step_label(j, s) for j, s in zip(frame["journey"], frame["step"], strict=True)]
    frame["time"] = frame["t"].dt.strftime("%H:%M:%S")
    return frame


def latency_chart(rows: Rows, percentiles: Sequence[str] = PERCENTILES) -> alt.Chart:
    """Latency percentiles over time: one colour per step, one dash pattern per percentile."""
    frame = series_frame(rows)
    chosen = [p for p in PERCENTILES if p in percentiles]
    long = frame.melt(id_vars=["t", "time", "series"], value_vars=chosen, var_name="percentile",
                      value_name="latency_ms")
    long["percentile"] = long["percentile"].str.removesuffix("_ms")
    focus = alt.selection_point(fields=["series"], bind="legend")
    return (
        alt.Chart(long, title="Latency percentiles over time")
        .mark_line(point=alt.OverlayMarkDef(size=14))
        .encode(
            x=_TIME,
            y=alt.Y("latency_ms:Q", title="latency (ms)"),
            color=_STEP_COLOUR,
            strokeDash=alt.StrokeDash("percentile:N", title="percentile",
                                      sort=[p.removesuffix("_ms") for p in PERCENTILES]),
            opacity=alt.when(focus).then(alt.value(1.0)).otherwise(alt.value(0.15)),
            tooltip=[alt.Tooltip("time:N", title="time (UTC)"), alt.Tooltip("series:N", title="step"),
                     alt.Tooltip("percentile:N"), alt.Tooltip("latency_ms:Q", title="ms", format=".2f")],
        )
        .add_params(focus)
    )


def rps_chart(rows: Rows) -> alt.Chart:
    """Requests per second over time, stacked by step so the top edge is the run's throughput."""
    frame = series_frame(rows)
    return (
        alt.Chart(frame, title="Requests per second")
        .mark_area(opacity=0.85, line=True)
        .encode(
            x=_TIME,
            y=alt.Y("rps:Q", title="requests / s", stack="zero"),
            color=_STEP_COLOUR,
            tooltip=[alt.Tooltip("time:N", title="time (UTC)"), alt.Tooltip("series:N", title="step"),
                     alt.Tooltip("rps:Q", title="req/s", format=".1f"), alt.Tooltip("errors:Q")],
        )
    )


def errors_frame(rows: Rows) -> pd.DataFrame:
    """Errors-by-cause rows with a `cause` and a step `series` label, largest count first."""
    columns = ["kind", "journey", "step", "status", "error", "count"]
    frame = pd.DataFrame(rows, columns=columns) if not isinstance(rows, pd.DataFrame) else rows.copy()
    frame["series"] = [step_label(j, s) for j, s in zip(frame["journey"], frame["step"], strict=True)]
    # a request error by its status and text; a failed check by the check (its kind says which is which)
    frame["cause"] = [
        f"failed check: {e}" if k == CHECK_FAILURE.kind else error_cause(int(st), str(e))
        for k, st, e in zip(frame["kind"], frame["status"], frame["error"], strict=True)
    ]
    return frame.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)


def errors_chart(rows: Rows) -> alt.Chart:
    """Failed requests by cause, one bar per cause split by the step it happened in."""
    frame = errors_frame(rows)
    return (
        alt.Chart(frame, title="Errors by cause")
        .mark_bar()
        .encode(
            y=alt.Y("cause:N", title=None, sort="-x"),
            x=alt.X("sum(count):Q", title="failed requests"),
            color=_STEP_COLOUR,
            tooltip=[alt.Tooltip("cause:N"), alt.Tooltip("series:N", title="step"), alt.Tooltip("count:Q")],
        )
    )
