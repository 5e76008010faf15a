"""A tool's own figures of a run kept as interval aggregates (table `aggregates`): Locust's `--csv` statistics and
JMeter's InfluxDB backend listener. They are what the tool computed, not perfhouse's exact figures over requests:
this module reads them per step, overall and over time, folded as the tool's package says (its Folding in
warehouse.tools), and says how each figure was obtained. A tool without a folding shows no figures of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from warehouse import tools
from warehouse.read import queries
from warehouse.read.records import RunRecord, ToolInterval, ToolStepAggregate
from warehouse.store import Warehouse
from warehouse.tools import Folding, ToolPoint, ToolStep, display_name

__all__ = ["ToolFigures", "ToolPoint", "ToolStep", "display_name", "figures_of", "tool_figures"]


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


def tool_figures(warehouse: Warehouse, run: RunRecord) -> ToolFigures | None:
    """The run's figures as its tool computed them, or None when it has no interval aggregates."""
    run_id, tool = run.run_id, run.tool
    folding = _folding(tool)
    if folding is None:  # a tool whose formats write no aggregates: nothing of its own to fold
        return None
    rows = [ToolStepAggregate.of(r) for r in warehouse.backend.query(queries.TOOL_STEP_FIGURES, {"run": run_id})]
    if not rows:
        return None
    timeline = [ToolInterval.of(r) for r in warehouse.backend.query(queries.TOOL_TIMELINE,
                                                                     {"run": run_id, "overall": folding.overall})]
    return fold(folding, tool, rows, timeline)


def figures_of(tool: str, rows: list[ToolStepAggregate], timeline: list[ToolInterval]) -> ToolFigures | None:
    """The figures from TOOL_STEP_FIGURES and TOOL_TIMELINE records (pure: no warehouse); None for a tool without
    a folding."""
    folding = _folding(tool)
    return fold(folding, tool, rows, timeline) if folding else None


def fold(folding: Folding, tool: str, rows: list[ToolStepAggregate], timeline: list[ToolInterval]) -> ToolFigures:
    """The rows folded per step, overall and over time as `folding` says."""
    by_step: dict[tuple[str, str], list[ToolStepAggregate]] = {}
    for r in rows:
        by_step.setdefault((r.journey, r.step), []).append(r)
    folded = {key: folding.step(key, found) for key, found in by_step.items()}
    overall = next((s for (_, step), s in folded.items() if step == folding.overall), None)
    steps = [s for (_, step), s in sorted(folded.items()) if step != folding.overall]
    if folding.failures_from_steps and overall is not None and overall.failures is None:
        overall = replace(overall, failures=sum(s.failures or 0 for s in steps))
    return ToolFigures(tool, folding.how(rows), steps, overall, folding.timeline(timeline))


def _folding(tool: str) -> Folding | None:
    """The tool's folding, as its package registers it; None for a tool without one."""
    known = tools.get(tool)
    return known.folding if known else None
