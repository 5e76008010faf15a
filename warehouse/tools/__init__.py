"""The load tools on the warehouse side: what the core asks of a tool, and the registry that answers.

Everything the warehouse knows of one tool lives in its package here (warehouse/tools/<tool>/): its result
formats (each registers itself with warehouse.ingest.formats.register), and a `WarehouseTool` registered by the
package's __init__: how the tool is named in a sentence, how its interval aggregates fold into its own figures,
and its own end-of-test summary. Packages are found by discovery, as orchestrator.tools finds its tools, so a
tool's results land by adding its package. A package that only brings formats (a protocol several tools write,
as influx/) registers no WarehouseTool.

The figures a folding makes (ToolStep, ToolPoint) are defined here (the rows it reads are records of
warehouse.read.records), so a tool's package
and the report that shows its figures speak the same types.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warehouse.read.records import Figures, SummaryFigure, ToolInterval, ToolStepAggregate


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
class Folding:
    """How one tool's interval aggregates (the records of queries.TOOL_STEP_FIGURES and TOOL_TIMELINE) fold into
    its figures."""

    overall: str  # the name under which the tool gives its figures for the whole run ("" : none)
    step: Callable[[tuple[str, str], list[ToolStepAggregate]], ToolStep]
    timeline: Callable[[Iterable[ToolInterval]], list[ToolPoint]]
    how: Callable[[list[ToolStepAggregate]], str]  # how the figures were obtained, in a sentence
    failures_from_steps: bool = False  # an overall line without failures counts those of the steps


@dataclass(frozen=True)
class OwnSummary:
    """A tool's own end-of-test summary, kept with a run when it lies beside the results file."""

    beside: Callable[[Path], list[Path]]  # the tool's names for it beside a results file, tried first
    preferred: str  # the file name that speaks for the run when a run keeps several (one per generator)
    # (the summary as the tool wrote it, the warehouse's totals of the run) -> each figure beside the warehouse's
    figures: Callable[[dict[str, Any] | None, Figures], list[SummaryFigure]]


@dataclass(frozen=True)
class WarehouseTool:
    """What the warehouse core asks of one load tool."""

    name: str  # as runs record it (runs.tool)
    display: str  # as a sentence names it
    folding: Folding | None = None  # its interval aggregates, when its formats write any
    summary: OwnSummary | None = None  # its own end-of-test summary, when it writes one
    group_reference: bool = False  # compare --group compares the group's other tools against this one


# Helpers of the foldings: a figure's value as the aggregates row holds it (None when absent).
_PCT = re.compile(r"pct(\d+(?:\.\d+)?)")


def levels(figures: dict[str, float]) -> dict[float, float]:
    """The percentiles among a row's figures (`pct95`, `pct99.9`) by level in percent."""
    out = {}
    for metric, value in figures.items():
        m = _PCT.fullmatch(metric)
        if m:
            out[float(m[1])] = float(value)
    return out


def as_float(value: Any) -> float | None:
    return None if value is None else float(value)


def as_int(value: Any) -> int | None:
    return None if value is None else round(float(value))


_TOOLS: dict[str, WarehouseTool] = {}
_discovered = False


def register(tool: WarehouseTool) -> WarehouseTool:
    """Called by a tool package's __init__."""
    _TOOLS[tool.name] = tool
    return tool


def discover() -> None:
    """Import every module of every tool package: each registers its tool and its formats."""
    global _discovered
    if not _discovered:
        for module in pkgutil.walk_packages(__path__, f"{__name__}."):
            importlib.import_module(module.name)
        _discovered = True


def get(name: str) -> WarehouseTool | None:
    """The tool that records runs under `name`, or None for a tool the warehouse has no package for."""
    discover()
    return _TOOLS.get(name)


def display_name(tool: str) -> str:
    """How a tool is named in a sentence: Locust, JMeter, k6 (a tool without a package: its name)."""
    known = get(tool)
    return known.display if known else tool


def group_order(tool: str) -> tuple[bool, str]:
    """Sort key of a group's tools: the reference tool first, then by name."""
    known = get(tool)
    return (not (known and known.group_reference), tool)
