"""What the dashboard's tables and headline figures show: pure shaping of warehouse rows, no Streamlit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dashboard.charts import errors_frame, step_label
from warehouse.analysis.compare import Comparison
from warehouse.analysis.slo import Verdict
from warehouse.read.records import ErrorCause, Figures, RunChoice, RunListRow, SlowSample
from warehouse.report.reports import ABORTED, FAILED, INCOMPLETE, NO_SLOS, PASSED, verdict_of
from warehouse.report.tool_figures import ToolFigures

ALL = "(all)"

RUN_COLUMNS = ["run_id", "verdict", "name", "tool", "spec_name", "profile", "status", "requests", "errors",
               "started_at", "duration_s", "environment", "branch", "git_sha", "group_id", "fingerprint", "source",
               "notes"]

VERDICTS = (PASSED, FAILED, NO_SLOS, ABORTED, INCOMPLETE)
# Badge colours: background, text (words, not emoji: headless browsers may lack emoji fonts).
VERDICT_COLOURS: dict[str, tuple[str, str]] = {PASSED: ("#d3f0d8", "#14532d"), FAILED: ("#fbd5d5", "#7f1d1d"),
                   NO_SLOS: ("#e5e7eb", "#374151"), ABORTED: ("#fde8c8", "#7c2d12"),
                   INCOMPLETE: ("#fef3c7", "#713f12")}


def verdict_style(verdict: Any) -> str:
    """CSS for a verdict cell (pandas Styler), empty for anything else."""
    colours = VERDICT_COLOURS.get(str(verdict))
    return f"background-color: {colours[0]}; color: {colours[1]}; font-weight: 600" if colours else ""


def number(value: Any) -> float | None:
    """A finite float, or None for a missing or NaN figure (ClickHouse gives NaN on no rows)."""
    if value is None:
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def ms(value: Any) -> str:
    """Milliseconds for a headline: two decimals, or a dash when there is no figure."""
    figure = number(value)
    return "–" if figure is None else f"{figure:,.2f}"


def runs_frame(rows: Sequence[RunListRow]) -> pd.DataFrame:
    """The runs list: newest first as the warehouse gives it, times parsed, a duration, a short git sha."""
    frame = pd.DataFrame([r.to_dict() for r in rows], columns=[c for c in RUN_COLUMNS if c not in ("duration_s", "verdict")]
                         + ["ended_at", "slos", "slos_failed"])
    frame["verdict"] = [verdict_of(str(st), int(number(n) or 0), int(number(f) or 0))
                        for st, n, f in zip(frame["status"], frame["slos"], frame["slos_failed"], strict=True)]
    for column in ("requests", "errors"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0).astype("int64")
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True, errors="coerce")
    ended = pd.to_datetime(frame["ended_at"], utc=True, errors="coerce")
    frame["duration_s"] = (ended - frame["started_at"]).dt.total_seconds().round(1)
    frame["git_sha"] = frame["git_sha"].fillna("").astype(str).str[:10]
    return frame[RUN_COLUMNS]


def choices(rows: Sequence[RunListRow], column: str) -> list[str]:
    """Filter options for one runs column: `(all)` then every non-empty value present, sorted."""
    return [ALL, *sorted({str(value) for r in rows if (value := getattr(r, column))})]


def unless_all(value: Any) -> str:
    """A filter's value for the warehouse: empty for `(all)`."""
    return "" if value in (None, ALL) else str(value)


def filter_runs(rows: Sequence[RunListRow], **equal: str) -> list[RunListRow]:
    """The runs whose columns equal the given values; a value of `(all)` or empty does not filter."""
    wanted = {k: v for k, v in equal.items() if v and v != ALL}
    return [r for r in rows if all(str(getattr(r, k)) == v for k, v in wanted.items())]


def run_label(row: RunChoice | RunListRow) -> str:
    """One line naming a run in a picker: id, name, tool and status."""
    name = f" {row.name}" if row.name else ""
    return f"{row.run_id}{name} ({row.tool}, {row.status})"


@dataclass(frozen=True)
class Headline:
    """The figures at the top of a run's page."""

    requests: int
    rps: float | None
    errors: int
    error_rate: float | None
    p95_ms: float | None
    slo_status: str  # the run's verdict: PASSED, FAILED, NO SLOS, ABORTED or INCOMPLETE
    slo_summary: str  # "1 of 3 failed"
    slo_detail: str  # which ones
    verdict: str = "NO SLOS"  # the run's verdict, one of VERDICTS

    @classmethod
    def of(cls, totals: Figures, verdicts: Sequence[Verdict], run_status: str = "completed") -> Headline:
        count = int(totals.count)
        errors = int(totals.errors)
        span = number(totals.span_s)
        failed = [v for v in verdicts if not v.passed]
        status = verdict_of(run_status, len(verdicts), len(failed))
        if status == ABORTED:
            summary, detail = "", "the run was interrupted: its partial data is not a pass"
        elif status == INCOMPLETE:
            summary, detail = "", f"the run is {run_status}: a tool died or the run never finished"
        elif not verdicts:
            summary, detail = "", "no SLOs were evaluated for this run"
        elif failed:
            summary = f"{len(failed)} of {len(verdicts)} failed"
            detail = "failed: " + "; ".join(v.slo for v in failed)
        else:
            summary, detail = f"{len(verdicts)} of {len(verdicts)} met", "every SLO met"
        return cls(
            requests=count,
            rps=count / span if count and span else None,
            errors=errors,
            error_rate=errors / count if count else None,
            p95_ms=number(totals.p95_ms) if count else None,
            slo_status=status,
            slo_summary=summary,
            slo_detail=detail,
            verdict=status,
        )


def steps_frame(steps: Sequence[Figures]) -> pd.DataFrame:
    """Per-step statistics with a `step` label and an error percentage."""
    columns = ["journey", "step", "service", "count", "errors", "avg_ms", "min_ms", "max_ms",
               "p50_ms", "p90_ms", "p95_ms", "p99_ms"]
    frame = pd.DataFrame([s.to_dict() for s in steps], columns=columns)
    frame.insert(0, "label", [step_label(j, s) for j, s in zip(frame["journey"], frame["step"], strict=True)])
    frame.insert(6, "error_pct", (100 * frame["errors"] / frame["count"].where(frame["count"] > 0)).round(2))
    return frame.drop(columns=["journey", "step"]).rename(columns={"label": "step"})


def slo_frame(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """SLO verdicts as rows: PASS or FAIL first (words: headless browsers may lack emoji fonts)."""
    rows = [{"verdict": "PASS" if v.passed else "FAIL", "slo": v.slo, "scope": v.scope, "metric": v.metric,
             "threshold": v.threshold, "observed": v.observed} for v in verdicts]
    return pd.DataFrame(rows, columns=["verdict", "slo", "scope", "metric", "threshold", "observed"])


def errors_table(causes: Sequence[ErrorCause]) -> pd.DataFrame:
    """Errors by cause for the table beside the chart."""
    return errors_frame(causes)[["cause", "series", "count"]].rename(columns={"series": "step"})


def compare_frame(comparison: Comparison) -> pd.DataFrame:
    """A comparison (warehouse.analysis.compare.Comparison) per step then overall: both runs' figures, the
    relative change in percent, the verdict and its reason."""
    rows = []
    for s in [*comparison.steps, comparison.overall]:
        d = s.deltas()
        row: dict[str, Any] = {"step": s.label, "verdict": str(s.verdict)}
        for metric in ("p95_ms", "p50_ms", "p99_ms"):  # p95 first: the verdict's latency figure
            name, relative = metric.removesuffix("_ms"), d[metric].relative
            row |= {f"{name}_a_ms": d[metric].a, f"{name}_b_ms": d[metric].b,
                    f"change_{name}": None if relative is None else relative * 100}
        row |= {"errors_a": d["error_rate"].a, "errors_b": d["error_rate"].b, "rps_a": d["rps"].a,
                "rps_b": d["rps"].b, "requests_a": s.a.count if s.a else 0, "requests_b": s.b.count if s.b else 0,
                "reason": s.reason}
        rows.append(row)
    return pd.DataFrame(rows)


def slowest_frame(samples: Sequence[SlowSample]) -> pd.DataFrame:
    """The slowest traced samples: when, which step, status, milliseconds, the trace id and its trace's URL."""
    frame = pd.DataFrame([s.to_dict() for s in samples], columns=["ts", "journey", "step", "status", "duration_ms", "trace_id", "trace_url"])
    frame.insert(1, "label", [step_label(j, s) for j, s in zip(frame["journey"], frame["step"], strict=True)])
    return frame.drop(columns=["journey", "step"]).rename(columns={"label": "step", "ts": "time (UTC)"})


TOOL_FIGURE_LEVELS = (50.0, 90.0, 95.0, 99.0)


def tool_figures_frame(figures: ToolFigures, levels: Sequence[float] = TOOL_FIGURE_LEVELS) -> pd.DataFrame:
    """A tool's own figures (report.tool_figures.ToolFigures) per step, then overall: counts, failures
    and the tool's percentiles at `levels` (None where the tool gave none)."""
    steps = [*figures.steps, *([figures.overall] if figures.overall else [])]
    rows = []
    for s in steps:
        label = step_label(s.journey, s.step) + (" (overall)" if s is figures.overall else "")
        rate = s.failure_rate
        rows.append({"step": label, "count": s.count, "failures": s.failures,
                     "failure_pct": None if rate is None else round(100 * rate, 2), "avg_ms": s.avg_ms,
                     "min_ms": s.min_ms, **{f"p{level:g}_ms": s.percentile(level) for level in levels},
                     "max_ms": s.max_ms, "rps": s.rps})
    columns = ["step", "count", "failures", "failure_pct", "avg_ms", "min_ms",
               *(f"p{level:g}_ms" for level in levels), "max_ms", "rps"]
    return pd.DataFrame(rows, columns=columns)
