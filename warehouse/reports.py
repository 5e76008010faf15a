"""Run reports: one data object built from warehouse queries, rendered as JSON or Markdown."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from warehouse.analysis.slo import Verdict
from warehouse.analysis.verdict import RunVerdict, run_verdict
from warehouse.store import Warehouse


@dataclass
class Report:
    run: dict[str, Any]
    totals: dict[str, Any]
    steps: list[dict[str, Any]]
    slos: list[Verdict]
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verdict(self) -> RunVerdict:
        """PASSED, FAILED, NO SLOS, ABORTED or INCOMPLETE: an interrupted or unfinished run never passes."""
        return run_verdict(str(self.run.get("status") or ""), self.slos)

    @property
    def passed(self) -> bool:
        return self.verdict == RunVerdict.PASSED

    def to_dict(self) -> dict[str, Any]:
        return _finite(
            {
                "run": self.run,
                "totals": self.totals,
                "steps": self.steps,
                "slos": [v.to_dict() for v in self.slos],
                "errors": self.errors,
                "verdict": str(self.verdict),
                "passed": self.passed,
            }
        )


def build_report(warehouse: Warehouse, run_id: str) -> Report:
    with warehouse.backend.session():
        return Report(
            run=warehouse.run(run_id),
            totals=warehouse.totals(run_id),
            steps=warehouse.step_stats(run_id),
            slos=warehouse.slo_verdicts(run_id),
            errors=warehouse.errors(run_id),
        )


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def ms(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{float(value):.2f}"


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    run, t = report.run, report.totals
    verdict = report.verdict
    lines = [
        f"# Load test report: {_cell(run.get('name') or run['run_id'])}",
        "",
        f"**Verdict: {verdict}** · run `{run['run_id']}` · {run['tool']} {run.get('tool_version') or ''} · "
        f"status {run['status']}",
        "",
        f"- Spec: {_cell(run.get('spec_name') or '–')}, profile {_cell(run.get('profile') or '–')}",
        f"- Window: {run['started_at']} → {run.get('ended_at') or '–'} (UTC)",
        f"- Requests: {t['count']}, errors: {t['errors']}"
        + (f" ({100 * t['errors'] / t['count']:.2f} %)" if t["count"] else ""),
        f"- Latency ms: p50 {ms(t['p50_ms'])}, p95 {ms(t['p95_ms'])}, p99 {ms(t['p99_ms'])}, max {ms(t['max_ms'])}",
        "",
    ]
    if report.slos:
        lines += ["## SLOs", "", "| SLO | observed | verdict |", "|---|---:|---|"]
        for v in report.slos:
            observed = (
                "–"
                if v.observed is None
                else (f"{v.observed * 100:.2f} %" if v.metric == "error_rate" else f"{v.observed:.2f} ms")
            )
            lines.append(f"| {_cell(v.slo)} | {observed} | {'pass' if v.passed else '**FAIL**'} |")
        lines.append("")
    lines += [
        "## Steps",
        "",
        "| journey | step | count | errors | p50 ms | p95 ms | p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in report.steps:
        lines.append(
            f"| {_cell(s['journey'])} | {_cell(s['step'])} | {s['count']} | {s['errors']} | "
            f"{ms(s['p50_ms'])} | {ms(s['p95_ms'])} | {ms(s['p99_ms'])} |"
        )
    if report.errors:
        lines += [
            "",
            "## Errors by cause",
            "",
            "| journey | step | status | error | count |",
            "|---|---|---:|---|---:|",
        ]
        for e in report.errors:
            lines.append(
                f"| {_cell(e['journey'])} | {_cell(e['step'])} | {e['status']} | "
                f"{_cell(e['error'] or '–')} | {e['count']} |"
            )
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[Report], str]] = {"json": render_json, "md": render_markdown}
