"""The CI gate: a run's SLOs, its completeness and its steps against a baseline, as one exit status,
JUnit XML (a testcase per SLO and per regression check) and a Markdown summary."""

from __future__ import annotations

import math
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from warehouse.analysis.baseline import Baseline, optional_baseline
from warehouse.analysis.compare import (
    CompareVerdict,
    Comparison,
    StepComparison,
    compare_runs,
    store_comparison,
)
from warehouse.analysis.slo import Verdict
from warehouse.analysis.verdict import RunVerdict, run_verdict
from warehouse.errors import ExitStatus
from warehouse.records import RunRecord
from warehouse.store import Warehouse
from warehouse.tool_figures import display_name, figures_only


@dataclass
class GateResult:
    """What the gate found for one run; `exit_status` is the most severe finding."""

    run: RunRecord
    verdict: RunVerdict
    slos: list[Verdict]
    baseline: Baseline | None = None
    comparison: Comparison | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[StepComparison]:
        return self.comparison.worse if self.comparison else []

    @property
    def exit_status(self) -> ExitStatus:
        """RUN_INCOMPLETE over SLO_FAILED over REGRESSION over OK."""
        if not self.verdict.judged:
            return ExitStatus.RUN_INCOMPLETE
        if self.verdict == RunVerdict.FAILED:
            return ExitStatus.SLO_FAILED
        if self.regressions:
            return ExitStatus.REGRESSION
        return ExitStatus.OK

    @property
    def outcome(self) -> str:
        return {
            ExitStatus.OK: "PASSED",
            ExitStatus.RUN_INCOMPLETE: str(self.verdict),
            ExitStatus.SLO_FAILED: "FAILED: SLO breached",
            ExitStatus.REGRESSION: "FAILED: regression",
        }[self.exit_status]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run.to_dict(),
            "outcome": self.outcome,
            "exit_status": int(self.exit_status),
            "verdict": str(self.verdict),
            "slos": [v.to_dict() for v in self.slos],
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "notes": self.notes,
        }


def gate(warehouse: Warehouse, run_id: str, baseline: str | None = None) -> GateResult:
    """Judge a run: its verdict, and each step against its baseline (`baseline`: a run, `auto`, `pinned`, or
    None for the pinned one else the automatic one). A named or pinned baseline that cannot be found is an
    error; when no automatic one exists yet the regression checks are skipped and the result says so."""
    with warehouse.backend.session():
        run = warehouse.run(run_id)
        slos = warehouse.slo_verdicts(run_id)
        verdict = run_verdict(run.status, slos)
        result = GateResult(run, verdict, slos)
        if figures_only(warehouse, run):
            result.notes.append(f"the run holds {display_name(run.tool)}'s own figures (interval aggregates), not requests: "
                                "SLOs and regression checks, which judge requests, cannot judge it")
            result.notes.append("regression checks skipped: the run has no request samples to compare")
            return result
        if verdict == RunVerdict.NO_SLOS:
            result.notes.append("the run has no SLOs: only the regression checks judge it")
        result.baseline, why = optional_baseline(warehouse, run_id, baseline)
        if result.baseline is None:
            result.notes.append(f"regression checks skipped: {why}")
            return result
        base_run = warehouse.run(result.baseline.run_id)
        result.comparison = compare_runs(warehouse.backend, base_run, run, result.baseline.how)
        store_comparison(warehouse.backend, result.comparison)
    return result


def worst_status(results: Sequence[GateResult]) -> ExitStatus:
    order = [ExitStatus.RUN_INCOMPLETE, ExitStatus.SLO_FAILED, ExitStatus.REGRESSION]
    found = {r.exit_status for r in results}
    return next((s for s in order if s in found), ExitStatus.OK)


# -- JUnit XML ---------------------------------------------------------------------------------------------


def junit_xml(results: Sequence[GateResult]) -> str:
    """JUnit XML as GitLab and Jenkins read it: per run a suite of SLO checks (with one for the run's
    completeness) and a suite of regression checks, one testcase per SLO and per step."""
    root = ET.Element("testsuites", name="perfhouse gate")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for result in results:
        for suite in (_slo_suite(result), _regression_suite(result)):
            root.append(suite)
            for key in totals:
                totals[key] += int(suite.get(key, "0"))
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(name: str, result: GateResult) -> ET.Element:
    suite = ET.Element("testsuite", name=name, timestamp=result.run.started_at.replace(" ", "T"),
                       hostname=socket.gethostname(), time=_seconds(result.run))
    props = ET.SubElement(suite, "properties")
    for key in ("run_id", "tool", "spec_name", "profile", "environment", "fingerprint", "group_id", "status"):
        ET.SubElement(props, "property", name=key, value=str(getattr(result.run, key) or ""))
    return suite


def _case(suite: ET.Element, classname: str, name: str, failure: str | None = None, skipped: str | None = None,
          out: str = "", kind: str = "") -> None:
    case = ET.SubElement(suite, "testcase", classname=classname, name=name, time="0")
    if failure is not None:
        ET.SubElement(case, "failure", message=failure, type=kind).text = out or failure
    elif skipped is not None:
        ET.SubElement(case, "skipped", message=skipped)
    if out and failure is None:
        ET.SubElement(case, "system-out").text = out


def _finish(suite: ET.Element) -> ET.Element:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", "0")
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    return suite


def _slo_suite(result: GateResult) -> ET.Element:
    run_id = result.run.run_id
    suite = _suite(f"{run_id} SLOs", result)
    cls = f"perfhouse.slo.{result.run.spec_name or 'run'}"
    status = result.run.status
    _case(suite, cls, "run completed",
          failure=None if result.verdict.judged else f"run {status}: {result.verdict}",
          out=result.run.notes, kind="RunIncomplete")
    if not result.slos:
        _case(suite, cls, "SLOs", skipped="the run has no SLOs (NO SLOS)")
    for v in result.slos:
        observed = _observed(v)
        _case(suite, cls, v.slo, failure=None if v.passed else f"observed {observed}",
              out=f"observed {observed}, threshold {v.threshold:g}", kind="SLOBreach")
    return _finish(suite)


def _regression_suite(result: GateResult) -> ET.Element:
    run_id = result.run.run_id
    suite = _suite(f"{run_id} regressions", result)
    cls = f"perfhouse.regression.{result.run.spec_name or 'run'}"
    comparison = result.comparison
    if comparison is None:
        reason = next((n for n in result.notes if n.startswith("regression checks skipped")), "no baseline")
        _case(suite, cls, "against baseline", skipped=reason)
        return _finish(suite)
    base = f"baseline {comparison.a.run_id} ({comparison.how})"
    for s in [*comparison.steps, comparison.overall]:
        text = f"{s.verdict}: {s.reason} ({base})"
        if s.verdict == CompareVerdict.WORSE:
            _case(suite, cls, s.label, failure=f"WORSE than {base}: {s.reason}", out=text, kind="Regression")
        else:
            _case(suite, cls, s.label, out=text)
    return _finish(suite)


def _observed(v: Verdict) -> str:
    if v.observed is None:
        return "no data"
    if v.metric == "error_rate":
        return f"{v.observed * 100:.2f} %"
    if v.metric == "throughput":
        return f"{v.observed:.2f}/s"
    return f"{v.observed:.2f} ms"


def _seconds(run: RunRecord) -> str:
    from datetime import datetime

    try:
        start = datetime.fromisoformat(run.started_at)
        end = datetime.fromisoformat(str(run.ended_at))
    except (KeyError, TypeError, ValueError):
        return "0"
    return f"{max((end - start).total_seconds(), 0):.3f}"


# -- Markdown summary (GitHub's job summary) ------------------------------------------------------------------


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _pct(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:+.1%}"


def _ms(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.2f}"


def markdown_summary(results: Sequence[GateResult]) -> str:
    lines = [f"## perfhouse gate: {worst_status(results).name.replace('_', ' ')}", ""]
    for r in results:
        run = r.run
        lines += [f"### {_cell(run.name or run.run_id)}: **{r.outcome}**", "",
                  f"Run `{run.run_id}` · {run.tool} · status {run.status} · verdict "
                  f"**{r.verdict}** · exit {int(r.exit_status)}", ""]
        if r.slos:
            lines += ["| SLO | observed | |", "|---|---:|---|"]
            lines += [f"| {_cell(v.slo)} | {_observed(v)} | {'pass' if v.passed else '**FAIL**'} |" for v in r.slos]
            lines.append("")
        if r.comparison is not None:
            c = r.comparison
            lines += [f"Against baseline `{c.a.run_id}` ({c.how}):", "",
                      "| step | p95 ms (baseline → run) | p95 change | error rate | verdict |",
                      "|---|---:|---:|---:|---|"]
            for s in [*c.steps, c.overall]:
                d = s.deltas()
                lines.append(
                    f"| {_cell(s.label)} | {_ms(d['p95_ms'].a)} → {_ms(d['p95_ms'].b)} | "
                    f"{_pct(d['p95_ms'].relative)} | {_ms(_times(d['error_rate'].b, 100))} % | "
                    f"{'**WORSE**' if s.verdict == CompareVerdict.WORSE else s.verdict} |")
            lines.append("")
            lines += [f"- {_cell(n)}" for n in c.notes]
        lines += [f"- {_cell(n)}" for n in r.notes]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor
