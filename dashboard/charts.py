"""Altair charts of one run (latency percentiles, throughput, errors), of two runs' latency distributions and of
a history's trends: pure functions from rows to charts."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import altair as alt
import pandas as pd

from warehouse.read.queries import CHECK_FAILURE
from warehouse.read.records import ErrorCause, Figures, InfraBucket, LatencyBucket, LatencyDistribution
from warehouse.report.text import shorten
from warehouse.report.tool_figures import ToolPoint

if TYPE_CHECKING:
    from warehouse.analysis.trends import Series

OverTime: TypeAlias = Sequence[LatencyBucket] | pd.DataFrame  # a run over time, or a frame series_frame made of it
Infra: TypeAlias = Sequence[InfraBucket] | pd.DataFrame  # infrastructure series, or a frame infra_frame made

PERCENTILES = ("p50_ms", "p95_ms", "p99_ms")
_NICE_BUCKETS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
_SERIES_COLUMNS = ("t", "journey", "step", "rps", "errors", *PERCENTILES)
_TIME = alt.X("t:T", title="time (UTC)", scale=alt.Scale(type="utc"),
              axis=alt.Axis(format="%H:%M:%S", labelOverlap=True, tickMinStep=1000))  # no sub-second ticks
_STEP_COLOUR = alt.Color("series:N", title="step", scale=alt.Scale(scheme="tableau10"))


def bucket_seconds(span_s: float | None, max_points: int = 150) -> int:
    """The smallest round bucket width that keeps a run's time series to about `max_points` per step."""
    if span_s is None or not math.isfinite(span_s) or span_s <= 0:
        return 1
    wanted = span_s / max_points
    return next((b for b in _NICE_BUCKETS_S if b >= wanted), _NICE_BUCKETS_S[-1])


def step_label(journey: str, step: str) -> str:
    """How a step is named in legends and tables: `journey / step`, or the step alone; control characters escaped
    and a long name cut (`warehouse.report.text.shorten`)."""
    return shorten(f"{journey} / {step}" if journey else step or "(unnamed)")


def error_cause(status: int, error: str) -> str:
    """A failed request's cause in a few words: the HTTP status and the tool's error text."""
    head = f"HTTP {status}" if status else "no response"
    return f"{head}: {error}" if error else head


def series_frame(rows: OverTime) -> pd.DataFrame:
    """Latency-over-time rows as a frame with `t` parsed as UTC and a `series` (step) label."""
    frame = (rows.copy() if isinstance(rows, pd.DataFrame)
             else pd.DataFrame([r.to_dict() for r in rows], columns=list(_SERIES_COLUMNS)))
    frame["t"] = pd.to_datetime(frame["t"], utc=True)
    frame["series"] = [step_label(j, s) for j, s in zip(frame["journey"], frame["step"], strict=True)]
    frame["time"] = frame["t"].dt.strftime("%H:%M:%S")
    return frame


def latency_chart(rows: OverTime, percentiles: Sequence[str] = PERCENTILES) -> alt.Chart:
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


def rps_chart(rows: OverTime) -> alt.Chart:
    """Requests per second over time, stacked by step so the top edge is the run's throughput."""
    frame = series_frame(rows)
    return (
        alt.Chart(frame, title="Requests per second")
        .mark_area(opacity=0.85, line=True, point=alt.OverlayMarkDef(size=14))  # a first bucket shows too
        .encode(
            x=_TIME,
            y=alt.Y("rps:Q", title="requests / s", stack="zero"),
            color=_STEP_COLOUR,
            tooltip=[alt.Tooltip("time:N", title="time (UTC)"), alt.Tooltip("series:N", title="step"),
                     alt.Tooltip("rps:Q", title="req/s", format=".1f"), alt.Tooltip("errors:Q")],
        )
    )


def errors_frame(causes: Sequence[ErrorCause]) -> pd.DataFrame:
    """Errors by cause with a `cause` and a step `series` label, largest count first."""
    columns = ["kind", "journey", "step", "status", "error", "count"]
    frame = pd.DataFrame([c.to_dict() for c in causes], columns=columns)
    frame["series"] = [step_label(j, s) for j, s in zip(frame["journey"], frame["step"], strict=True)]
    # a request error by its status and text; a failed check by the check (its kind says which is which)
    frame["cause"] = [
        f"failed check: {e}" if k == CHECK_FAILURE.kind else error_cause(int(st), str(e))
        for k, st, e in zip(frame["kind"], frame["status"], frame["error"], strict=True)
    ]
    return frame.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)


def errors_chart(causes: Sequence[ErrorCause]) -> alt.Chart:
    """Failed requests by cause, one bar per cause split by the step it happened in."""
    frame = errors_frame(causes)
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


def infra_frame(rows: Infra) -> pd.DataFrame:
    """Infrastructure samples in time buckets as one value per series and bucket: a counter (a metric named
    `*_total`) as its rate per second between buckets, a gauge as its mean; `series` names source and labels."""
    columns = ["t", "source", "metric", "labels", "mean", "last"]
    frame = (rows.copy() if isinstance(rows, pd.DataFrame)
             else pd.DataFrame([r.to_dict() for r in rows], columns=columns))
    frame["t"] = pd.to_datetime(frame["t"], utc=True)
    frame["series"] = [_infra_series(m, lb) for m, lb in zip(frame["metric"], frame["labels"], strict=True)]
    frame = frame.sort_values(["series", "t"], kind="stable").reset_index(drop=True)
    counter = frame["metric"].str.endswith("_total")
    seconds = frame.groupby("series")["t"].diff().dt.total_seconds()
    rate = frame.groupby("series")["last"].diff() / seconds.where(seconds > 0)
    frame["value"] = frame["mean"].where(~counter, rate.clip(lower=0))  # a counter reset is not a negative rate
    frame["unit"] = ["per second" if c else "" for c in counter]
    frame["time"] = frame["t"].dt.strftime("%H:%M:%S")
    return frame.dropna(subset=["value"]).reset_index(drop=True)


def _axis_title(frame: pd.DataFrame) -> str:
    """A series' name with its unit (`per second` for a counter's rate)."""
    if not len(frame):
        return ""
    unit = str(frame["unit"].iloc[0])
    return f"{frame['series'].iloc[0]} ({unit})" if unit else str(frame["series"].iloc[0])


def _infra_series(metric: str, labels: str) -> str:
    shown = str(labels).strip("{}")
    return f"{metric} {{{shown}}}" if shown else str(metric)


def infra_overlay_chart(series: OverTime, infra: Infra, steps: Sequence[str] | None = None,
                        width: int = 680) -> alt.VConcatChart:
    """Latency (p95 per step) with infrastructure series on its time axis: the first infrastructure series
    overlaid on the latency on a right-hand axis, every series below it (each on its own range, so bytes
    and ratios share one panel), and a time window brushed on either panel highlighted on both.
    A concatenation does not stretch to its container, so both panels are `width` pixels wide."""
    latency = series_frame(series)
    if steps is not None:
        latency = latency[latency["series"].isin(steps)]
    machines = infra_frame(infra)
    brush = alt.selection_interval(encodings=["x"], name="window")
    highlight = alt.when(brush).then(alt.value(1.0)).otherwise(alt.value(0.25))
    first = machines[machines["series"] == machines["series"].iloc[0]] if len(machines) else machines
    p95 = (
        alt.Chart(latency)
        .mark_line(point=alt.OverlayMarkDef(size=10))
        .encode(x=_TIME, y=alt.Y("p95_ms:Q", title="p95 latency (ms)"),
                color=alt.Color("series:N", title="step", scale=alt.Scale(scheme="tableau10"),
                                legend=alt.Legend(orient="bottom", columns=3, labelLimit=300)),
                opacity=highlight,
                tooltip=[alt.Tooltip("time:N", title="time (UTC)"), alt.Tooltip("series:N", title="step"),
                         alt.Tooltip("p95_ms:Q", title="p95 ms", format=".2f")])
        .add_params(brush)
    )
    overlay = (
        alt.Chart(first)
        .mark_line(strokeDash=[4, 3], color="#555555")
        .encode(x=_TIME, y=alt.Y("value:Q", title=_axis_title(first),
                                 axis=alt.Axis(orient="right", titleColor="#555555")),
                tooltip=[alt.Tooltip("time:N", title="time (UTC)"), alt.Tooltip("series:N"),
                         alt.Tooltip("value:Q", format=".4g"), alt.Tooltip("unit:N")])
    )
    top = alt.layer(p95, overlay, title="p95 latency with infrastructure").resolve_scale(y="independent")
    span = machines.groupby("series")["value"].transform(lambda v: (v.max() - v.min()) or 1.0)
    machines = machines.assign(relative=(machines["value"] - machines.groupby("series")["value"].transform("min")) / span)
    below = (
        alt.Chart(machines, title="Infrastructure series (drag on either chart to pick a time window)")
        .mark_line()
        .encode(x=_TIME, y=alt.Y("relative:Q", title="share of each series' range", axis=alt.Axis(format="%")),
                color=alt.Color("series:N", title="series", scale=alt.Scale(scheme="dark2"),
                                legend=alt.Legend(orient="bottom", columns=2, labelLimit=400)),
                opacity=highlight,
                tooltip=[alt.Tooltip("time:N", title="time (UTC)"), alt.Tooltip("series:N"),
                         alt.Tooltip("value:Q", format=".4g"), alt.Tooltip("unit:N")])
        .add_params(brush)
        .properties(width=width, height=150)
    )
    with warnings.catch_warnings():  # one brush shared by both panels is what is meant here
        warnings.filterwarnings("ignore", message="Automatically deduplicated selection parameter")
        return alt.vconcat(top.properties(width=width, height=240), below).resolve_scale(color="independent")


def top_steps(steps: Sequence[Figures], n: int = 8) -> list[str]:
    """The `n` steps that cost the most time (requests × mean latency), errors breaking ties: the steps a
    chart shows by default when a run has many."""

    def impact(s: Figures) -> tuple[float, int]:
        count, avg = float(s.count or 0), float(s.avg_ms or 0)
        return (count * (avg if math.isfinite(avg) else 0), int(s.errors or 0))

    ranked = sorted(steps, key=impact, reverse=True)
    return [step_label(s.journey, s.step) for s in ranked[:n]]


# -- compare and trends ---------------------------------------------------------------------------------------

_RUN_COLOUR = alt.Color("run:N", title=None, scale=alt.Scale(range=["#4c78a8", "#e45756"]),
                        legend=alt.Legend(labelLimit=400))


def distribution_frame(distributions: Sequence[LatencyDistribution], names: Mapping[str, str]) -> pd.DataFrame:
    """Each run's quantile points (Warehouse.latency_distribution) as rows of run name, ms and fraction."""
    rows = [{"run": names.get(d.run_id, d.run_id), "ms": p.ms, "fraction": p.fraction, "requests": d.count}
            for d in distributions for p in d.points]
    return pd.DataFrame(rows, columns=["run", "ms", "fraction", "requests"])


def distribution_chart(frame: pd.DataFrame, log_scale: bool = True) -> alt.Chart:
    """The runs' latency distributions overlaid: the share of requests at or below each duration (ECDF)."""
    scale = alt.Scale(type="log") if log_scale and bool((frame["ms"] > 0).all()) else alt.Scale(zero=False)
    return (
        alt.Chart(frame, title="Latency distribution (share of requests at or below)")
        .mark_line(interpolate="step-after", strokeWidth=2.5, point=alt.OverlayMarkDef(size=12))
        .encode(
            x=alt.X("ms:Q", title="latency (ms)" + (", log scale" if scale.type == "log" else ""), scale=scale),
            y=alt.Y("fraction:Q", title="share of requests", axis=alt.Axis(format="%"),
                    scale=alt.Scale(domain=[0, 1])),
            color=_RUN_COLOUR,
            tooltip=[alt.Tooltip("run:N"), alt.Tooltip("fraction:Q", title="percentile", format=".1%"),
                     alt.Tooltip("ms:Q", title="ms", format=".2f"), alt.Tooltip("requests:Q")],
        )
    )


def trend_frame(series: Sequence[Series]) -> pd.DataFrame:
    """Trend points (warehouse.analysis.trends.Series) as rows of step, run, start time and value."""
    rows = [{"step": s.label, "run_id": p.run_id, "started_at": p.started_at, "value": p.value, "requests": p.count}
            for s in series for p in s.points]
    frame = pd.DataFrame(rows, columns=["step", "run_id", "started_at", "value", "requests"])
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
    return frame


def change_frame(series: Sequence[Series]) -> pd.DataFrame:
    """The change points of trend series: where (the first run of the new level), which way, how much."""
    rows = [{"step": s.label, "run_id": c.run_id, "started_at": c.started_at, "before": c.before, "after": c.after,
             "change": c.change, "worse": c.worse, "kind": "worse" if c.worse else "better", "pvalue": c.pvalue}
            for s in series for c in s.changes]
    frame = pd.DataFrame(rows, columns=["step", "run_id", "started_at", "before", "after", "change", "worse",
                                        "kind", "pvalue"])
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
    return frame


@dataclass(frozen=True)
class BaselineMark:
    """A baseline run as a trend chart marks it: its id, how it was chosen and when it started (UTC text)."""

    run_id: str
    how: str
    started_at: str


_TREND_UNITS = {"p50": "ms", "p95": "ms", "p99": "ms", "error_rate": "share of requests", "rps": "requests / s"}


def trend_chart(points: pd.DataFrame, changes: pd.DataFrame, metric: str,
                baseline: BaselineMark | None) -> alt.LayerChart:
    """A metric per step run after run; change points as rules (red: worse, green: better) on the run where the
    new level starts, the baseline run as a dashed grey rule."""
    time = alt.X("started_at:T", title="run started (UTC)", scale=alt.Scale(type="utc"),
                 axis=alt.Axis(format="%m-%d %H:%M", labelOverlap=True))
    value_format = ".2%" if metric == "error_rate" else ".2f"
    lines = (
        alt.Chart(points)
        .mark_line(point=alt.OverlayMarkDef(size=30))
        .encode(x=time, y=alt.Y("value:Q", title=f"{metric} ({_TREND_UNITS.get(metric, '')})",
                                axis=alt.Axis(format="%") if metric == "error_rate" else alt.Axis()),
                color=alt.Color("step:N", title="step", scale=alt.Scale(scheme="tableau10")),
                tooltip=[alt.Tooltip("step:N"), alt.Tooltip("run_id:N", title="run"),
                         alt.Tooltip("started_at:T", title="started (UTC)", format="%Y-%m-%d %H:%M:%S"),
                         alt.Tooltip("value:Q", title=metric, format=value_format), alt.Tooltip("requests:Q")])
    )
    rules = (
        alt.Chart(changes)
        .mark_rule(strokeWidth=2)
        .encode(x=time, color=alt.Color("kind:N", title="change point",
                                        scale=alt.Scale(domain=["worse", "better"], range=["#c92a2a", "#2b8a3e"])),
                tooltip=[alt.Tooltip("step:N"), alt.Tooltip("run_id:N", title="first run of the new level"),
                         alt.Tooltip("before:Q", format=value_format), alt.Tooltip("after:Q", format=value_format),
                         alt.Tooltip("pvalue:Q", format=".2g")])
    )
    marked = pd.DataFrame([{"started_at": pd.to_datetime(baseline.started_at, utc=True),
                            "run_id": baseline.run_id, "label": f"baseline ({baseline.how})"}]
                          if baseline else [], columns=["started_at", "run_id", "label"])
    base = alt.Chart(marked).mark_rule(strokeDash=[6, 4], color="#555", strokeWidth=2).encode(
        x=time, tooltip=[alt.Tooltip("label:N", title="baseline"), alt.Tooltip("run_id:N", title="run")])
    label = alt.Chart(marked).mark_text(align="left", dx=4, dy=-6, color="#555", baseline="top").encode(
        x=time, y=alt.value(0), text="label:N")
    return alt.layer(lines, rules, base, label, title=f"{metric} per step over the history").resolve_scale(
        color="independent")


def tool_timeline_chart(points: Sequence[ToolPoint], tool: str) -> alt.Chart:
    """A tool's own figures of the whole run per interval (tool_figures.ToolPoint): its p50 and p95."""
    rows = [{"t": p.t, "figure": name, "ms": value} for p in points
            for name, value in (("p50", p.p50_ms), ("p95", p.p95_ms)) if value is not None]
    frame = pd.DataFrame(rows, columns=["t", "figure", "ms"])
    frame["t"] = pd.to_datetime(frame["t"], utc=True)
    return (
        alt.Chart(frame, title=f"{tool}'s percentiles over time")
        .mark_line(point=alt.OverlayMarkDef(size=14))
        .encode(x=_TIME, y=alt.Y("ms:Q", title="latency (ms), as the tool computed it"),
                strokeDash=alt.StrokeDash("figure:N", title="percentile"),
                tooltip=[alt.Tooltip("t:T", title="time (UTC)", format="%H:%M:%S"), alt.Tooltip("figure:N"),
                         alt.Tooltip("ms:Q", format=".2f")])
    )
