"""Altair charts of a run's report (percentiles, throughput, infrastructure, capacity, bottlenecks) and their
static renderings (SVG for HTML, PNG for Markdown): pure functions from report rows to charts.

Reports and the dashboard both draw from here; nothing in this module reads the warehouse.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd

from warehouse.errors import WarehouseError
from warehouse.read.records import Bottleneck, InfraSeries, LoadStep, TimelinePoint
from warehouse.report.text import shorten
from warehouse.tools import ToolPoint

TIMELINE_PERCENTILES = ("p50", "p90", "p95", "p99")
_NICE_BUCKETS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
_WIDTH, _HEIGHT = 640, 220
_FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif"
_TIME = alt.X("t:T", title="time (UTC)", scale=alt.Scale(type="utc"),
              axis=alt.Axis(format="%H:%M:%S", labelOverlap="greedy", labelSeparation=6))


def bucket_seconds(span_s: float | None, max_points: int = 150) -> int:
    """The smallest round bucket width that keeps a run's time series to about `max_points` points."""
    if span_s is None or not math.isfinite(span_s) or span_s <= 0:
        return 1
    wanted = span_s / max_points
    return next((b for b in _NICE_BUCKETS_S if b >= wanted), _NICE_BUCKETS_S[-1])


def _row(point: TimelinePoint | ToolPoint) -> dict[str, Any]:
    row = point.to_dict()
    if isinstance(point, ToolPoint):  # a tool's own interval: its failures per second are the errors line
        row["errors_per_s"] = point.failures_per_s
    return row


def _frame(points: Sequence[TimelinePoint | ToolPoint], columns: Sequence[str]) -> pd.DataFrame:
    rows = [_row(p) for p in points]
    frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=list(columns))
    if "t" in frame:
        frame["t"] = pd.to_datetime(frame["t"], utc=True)
    return frame


def percentiles_chart(timeline: Sequence[TimelinePoint | ToolPoint]) -> alt.Chart:
    """P50/P90/P95/P99 of every request over time, one line per percentile."""
    frame = _frame(timeline, ["t", *(f"{p}_ms" for p in TIMELINE_PERCENTILES)])
    long = frame.melt(id_vars=["t"], var_name="percentile", value_name="latency_ms").dropna()
    long["percentile"] = long["percentile"].str.removesuffix("_ms")
    return (
        alt.Chart(long, title="Latency percentiles over time", width=_WIDTH, height=_HEIGHT)
        .mark_line(point=alt.OverlayMarkDef(size=12))
        .encode(
            x=_TIME,
            y=alt.Y("latency_ms:Q", title="latency (ms)"),
            color=alt.Color("percentile:N", sort=list(TIMELINE_PERCENTILES), scale=alt.Scale(scheme="tableau10")),
            tooltip=[alt.Tooltip("t:T", format="%H:%M:%S"), "percentile:N",
                     alt.Tooltip("latency_ms:Q", format=".2f")],
        )
    )


def throughput_chart(timeline: Sequence[TimelinePoint | ToolPoint]) -> alt.LayerChart:
    """Requests per second (area) and failed requests per second (red line) over time."""
    frame = _frame(timeline, ["t", "rps", "errors_per_s"])
    base = alt.Chart(frame, title="Throughput and errors over time", width=_WIDTH, height=_HEIGHT).encode(x=_TIME)
    area = base.mark_area(opacity=0.6, line=True, color="#4c78a8").encode(
        y=alt.Y("rps:Q", title="requests / s"),
        tooltip=[alt.Tooltip("t:T", format="%H:%M:%S"), alt.Tooltip("rps:Q", format=".1f"),
                 alt.Tooltip("errors_per_s:Q", format=".2f")],
    )
    errors = base.mark_line(color="#e45756", strokeWidth=2).encode(
        y=alt.Y("errors_per_s:Q", title="errors / s", axis=alt.Axis(titleColor="#e45756"))
    )
    return alt.layer(area, errors).resolve_scale(y="independent")


def infra_chart(timeline: Sequence[TimelinePoint], series: Sequence[InfraSeries], latency: str = "p95"
                ) -> alt.VConcatChart:
    """The latency percentile over time above the infrastructure series on the same time axis; each series
    as a share of its own peak, so CPU seconds and bytes share one axis (the tooltip has the raw value)."""
    lat = _frame(timeline, ["t", f"{latency}_ms"]).dropna()
    points = pd.DataFrame(
        [{"t": p.t, "series": s.name, "value": p.value, "share": (p.value / s.peak * 100) if s.peak else 0.0}
         for s in series for p in s.points],
        columns=["t", "series", "value", "share"],
    )
    points["t"] = pd.to_datetime(points["t"], utc=True)
    top = (
        alt.Chart(lat, title=f"Latency {latency.upper()} and infrastructure", width=_WIDTH, height=_HEIGHT // 2)
        .mark_line(color="#4c78a8", point=alt.OverlayMarkDef(size=12))
        .encode(x=_TIME, y=alt.Y(f"{latency}_ms:Q", title=f"{latency} (ms)"))
    )
    bottom = (
        alt.Chart(points, width=_WIDTH, height=_HEIGHT)
        .mark_line(point=alt.OverlayMarkDef(size=12))
        .encode(
            x=_TIME,
            y=alt.Y("share:Q", title="% of the series' peak"),
            color=alt.Color("series:N", title="series", scale=alt.Scale(scheme="tableau10"),
                            legend=alt.Legend(orient="bottom", columns=1, labelLimit=600)),
            tooltip=[alt.Tooltip("t:T", format="%H:%M:%S"), "series:N", alt.Tooltip("value:Q", format=".4g")],
        )
    )
    return alt.vconcat(top, bottom).resolve_scale(x="shared")


def capacity_chart(steps: Sequence[LoadStep], knee_level: float | None) -> alt.LayerChart | alt.FacetChart:
    """Throughput against latency (P95) per load step; the knee (highest step that met the SLOs) in green."""
    frame = pd.DataFrame(
        [{"level": s.level, "rps": s.rps, "p95_ms": s.p95_ms,
          "label": f"{s.level:g} VUs", "knee": "knee" if s.level == knee_level else
          ("met" if s.met else "missed")} for s in steps],
        columns=["level", "rps", "p95_ms", "label", "knee"],
    )
    base = alt.Chart(frame, title="Throughput against latency per load step", width=_WIDTH, height=_HEIGHT)
    line = base.mark_line(color="#9d9d9d").encode(
        x=alt.X("rps:Q", title="throughput (requests / s)"), y=alt.Y("p95_ms:Q", title="p95 (ms)"), order="level:Q"
    )
    dots = base.mark_point(size=120, filled=True).encode(
        x="rps:Q", y="p95_ms:Q",
        color=alt.Color("knee:N", title=None, scale=alt.Scale(domain=["knee", "met", "missed"],
                                                              range=["#2ca02c", "#4c78a8", "#e45756"])),
        tooltip=["label:N", alt.Tooltip("rps:Q", format=".1f"), alt.Tooltip("p95_ms:Q", format=".2f")],
    )
    labels = base.mark_text(dy=-12).encode(x="rps:Q", y="p95_ms:Q", text="label:N")
    return alt.layer(line, dots, labels)


def bottleneck_chart(bottlenecks: Sequence[Bottleneck]) -> alt.Chart:
    """Share of all time spent in requests per step, largest first; the bar's colour is its tail ratio."""
    frame = pd.DataFrame(
        [{"step": b.name, "time_share": b.time_share * 100, "error_share": b.error_share * 100,
          "tail_ratio": b.tail_ratio} for b in bottlenecks],
        columns=["step", "time_share", "error_share", "tail_ratio"],
    )
    return (
        alt.Chart(frame, title="Share of total request time per step", width=_WIDTH,
                  height=max(60, 22 * len(frame)))
        .mark_bar()
        .encode(
            y=alt.Y("step:N", sort="-x", title=None),
            x=alt.X("time_share:Q", title="% of total request time"),
            color=alt.Color("tail_ratio:Q", title="p99/p50", scale=alt.Scale(scheme="orangered")),
            tooltip=["step:N", alt.Tooltip("time_share:Q", format=".1f"),
                     alt.Tooltip("error_share:Q", format=".1f"), alt.Tooltip("tail_ratio:Q", format=".2f")],
        )
    )


# -- static renderings ---------------------------------------------------------------------------------

# How long one chart may take to draw: the renderer is a JavaScript engine that may never come back on input it
# chokes on; a report then goes on without that chart rather than waiting forever.
RENDER_TIMEOUT_S = 60.0


class ChartError(WarehouseError):
    """A chart that could not be drawn (the renderer failed or ran out of time)."""


def _safe_values(spec: dict[str, Any]) -> None:
    """Every text value of the chart's data shown as `text.shorten` shows it: no control character (a NUL makes
    the renderer panic), no label longer than LABEL_MAX (ten megabytes of label took it minutes and gigabytes)."""
    for rows in (spec.get("datasets") or {}).values():
        for row in rows:
            if isinstance(row, dict):
                for key, value in row.items():
                    if isinstance(value, str):
                        row[key] = shorten(value)


def _spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    spec: dict[str, Any] = chart.to_dict()
    _safe_values(spec)
    config = spec.setdefault("config", {})
    config.setdefault("background", "white")
    config.setdefault("font", _FONT)  # measured and drawn in the same face by vl-convert and by a browser
    return spec


def to_svg(chart: alt.TopLevelMixin, prefix: str) -> str:
    """The chart drawn as an SVG element (no scripts). Element ids become `prefix-1`, `prefix-2`... in the order
    they appear, so several SVGs share one HTML page without their clip paths and gradients colliding, and
    the same chart gives the same text however many the renderer drew before (it numbers gradients on)."""
    import vl_convert as vlc

    svg: str = _bounded(vlc.vegalite_to_svg, json.dumps(_spec(chart)))
    ids: dict[str, str] = {}
    for found in re.findall(r'\bid="([^"]+)"', svg):
        ids.setdefault(found, f"{prefix}-{len(ids) + 1}")
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{ids[m[1]]}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{ids.get(m[1], m[1])})", svg)
    svg = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{ids.get(m[1], m[1])}"', svg)
    return re.sub(r"^<\?xml[^>]*>\s*", "", svg)


def warm_up() -> threading.Thread:
    """Start the chart renderer (a JavaScript engine inside vl-convert, a second or two the first time) in a
    background thread, so it is ready when the report's queries are done."""
    import vl_convert as vlc

    spec = json.dumps({"data": {"values": [{"x": 1}]}, "mark": "point", "encoding": {"x": {"field": "x"}}})
    thread = threading.Thread(target=vlc.vegalite_to_svg, args=(spec,), daemon=True)
    thread.start()
    return thread


def to_png(chart: alt.TopLevelMixin, scale: float = 1.5) -> bytes:
    """The chart as a PNG image."""
    import vl_convert as vlc

    png: bytes = _bounded(vlc.vegalite_to_png, json.dumps(_spec(chart)), scale=scale)
    return png


def _bounded(render: Any, spec: str, **options: Any) -> Any:
    """`render(spec)` in a thread of its own, waited for at most RENDER_TIMEOUT_S; ChartError when it fails or is
    not done by then (the thread is left behind, a daemon: the process can still end)."""
    outcome: dict[str, Any] = {}

    def draw() -> None:
        try:
            outcome["value"] = render(spec, **options)
        except BaseException as exc:  # a panic in the renderer arrives as an exception of its own kind
            outcome["error"] = exc

    thread = threading.Thread(target=draw, name="perfhouse-chart", daemon=True)
    thread.start()
    thread.join(RENDER_TIMEOUT_S)
    if thread.is_alive():
        raise ChartError(f"the chart renderer did not finish within {RENDER_TIMEOUT_S:g} s")
    if "error" in outcome:
        raise ChartError(f"the chart renderer failed: {str(outcome['error'])[:200]}")
    return outcome["value"]
