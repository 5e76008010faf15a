"""The CI gate: a run's completeness, its SLOs and its rows against the history and baseline, decided once
(`decide`) into the exit status, the JUnit cases and the Markdown summary, so the three never disagree.

Any WORSE row, a step's or the whole run's, is a regression (exit 8) everywhere. A run that was aborted or is
incomplete is not judged: its SLO and regression cases are JUnit errors ("not judged"), as `report --format
junit` writes them, and the exit status is 9. INCONCLUSIVE rows follow `--inconclusive`: `warn` (the default:
a skipped case with the reason and a printed warning), `fail` (a failed case, exit 10) or `pass`.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from warehouse import junit, queries
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
from warehouse.errors import DataError, ExitStatus
from warehouse.records import RunRecord
from warehouse.store import Warehouse
from warehouse.tool_figures import display_name, figures_only

INCONCLUSIVE_CHOICES = ("warn", "fail", "pass")
# The most severe first: a gate's status is the first of these one of its cases calls for.
_SEVERITY = (ExitStatus.RUN_INCOMPLETE, ExitStatus.SLO_FAILED, ExitStatus.REGRESSION, ExitStatus.INCONCLUSIVE)
_KINDS = {"RunIncomplete": ExitStatus.RUN_INCOMPLETE, "SLOBreach": ExitStatus.SLO_FAILED,
          "Regression": ExitStatus.REGRESSION, "Inconclusive": ExitStatus.INCONCLUSIVE}


@dataclass(frozen=True)
class GateDecision:
    """What the gate decided for one run: every JUnit case, and the exit status and outcome they imply."""

    cases: tuple[junit.Case, ...]
    status: ExitStatus
    outcome: str
    regressions: tuple[StepComparison, ...] = ()
    inconclusive: tuple[StepComparison, ...] = ()


def decide(verdict: RunVerdict, slos: Sequence[Verdict], comparison: Comparison | None, spec_name: str = "",
           skipped_why: str = "", inconclusive: str = "warn") -> GateDecision:
    """The one decision of the gate (module docstring): the cases, then the status as the most severe kind
    of failure or error among them, so exit status, JUnit and summary come from the same findings."""
    if inconclusive not in INCONCLUSIVE_CHOICES:
        raise DataError(f"--inconclusive {inconclusive!r}: expected one of {', '.join(INCONCLUSIVE_CHOICES)}")
    slo_cls, reg_cls = f"perfhouse.slo.{spec_name or 'run'}", f"perfhouse.regression.{spec_name or 'run'}"
    judged = verdict.judged
    not_judged = f"run {str(verdict).lower()}: not judged (partial data decides nothing)"
    cases = [junit.Case("run completed", slo_cls, error=None if judged else not_judged,
                        details="" if judged else str(verdict), kind="RunIncomplete")]
    if not slos:
        cases.append(junit.Case("SLOs", slo_cls, skipped="the run has no SLOs (NO SLOS)"))
    for v in slos:
        details = f"observed {_observed(v)}, threshold {_threshold(v)}"
        if not judged:
            cases.append(junit.Case(v.slo, slo_cls, error=not_judged, details=details, kind="RunIncomplete"))
        else:
            cases.append(junit.Case(v.slo, slo_cls, failure=None if v.passed else f"SLO breached: {details}",
                                    details=details, kind="SLOBreach"))
    regressions: list[StepComparison] = []
    unresolved: list[StepComparison] = []
    if comparison is None:
        cases.append(junit.Case("against baseline", reg_cls, skipped=skipped_why or "no baseline"))
    else:
        base = f"baseline {comparison.a.run_id} ({comparison.how})"
        for s in comparison.rows:
            text = f"{s.verdict}: {s.reason} ({base})"
            if not judged:
                cases.append(junit.Case(s.label, reg_cls, error=not_judged, details=text, kind="RunIncomplete"))
            elif s.verdict == CompareVerdict.WORSE:
                regressions.append(s)
                cases.append(junit.Case(s.label, reg_cls, failure=f"WORSE: {s.reason}", details=text,
                                        kind="Regression"))
            elif s.verdict == CompareVerdict.INCONCLUSIVE:
                unresolved.append(s)
                why = thin_reason(s)
                if inconclusive == "fail":
                    cases.append(junit.Case(s.label, reg_cls, failure=f"INCONCLUSIVE: {why}", details=text,
                                            kind="Inconclusive"))
                elif inconclusive == "warn":
                    cases.append(junit.Case(s.label, reg_cls, skipped=f"INCONCLUSIVE: {why}", details=text))
                else:
                    cases.append(junit.Case(s.label, reg_cls, details=text))
            else:
                cases.append(junit.Case(s.label, reg_cls, details=text))
    found = {_KINDS[c.kind] for c in cases if (c.failure is not None or c.error is not None) and c.kind in _KINDS}
    status = next((s for s in _SEVERITY if s in found), ExitStatus.OK)
    outcome = {
        ExitStatus.OK: "PASSED",
        ExitStatus.RUN_INCOMPLETE: str(verdict),
        ExitStatus.SLO_FAILED: "FAILED: SLO breached",
        ExitStatus.REGRESSION: "FAILED: regression",
        ExitStatus.INCONCLUSIVE: "FAILED: inconclusive (--inconclusive fail)",
    }[status]
    return GateDecision(tuple(cases), status, outcome, tuple(regressions), tuple(unresolved))


def thin_reason(s: StepComparison) -> str:
    if s.needs:
        have = min(x.count for x in (s.a, s.b) if x is not None) if (s.a or s.b) else 0
        return f"too few requests to judge: {have}, a verdict needs {s.needs} in each run"
    return s.reason


@dataclass
class GateResult:
    """What the gate found for one run; `decision` is what it decided (exit status, cases, outcome)."""

    run: RunRecord
    verdict: RunVerdict
    slos: list[Verdict]
    baseline: Baseline | None = None
    comparison: Comparison | None = None
    notes: list[str] = field(default_factory=list)
    inconclusive: str = "warn"

    @property
    def decision(self) -> GateDecision:
        skipped = next((n for n in self.notes if n.startswith("regression checks skipped")), "no baseline")
        return decide(self.verdict, self.slos, self.comparison, self.run.spec_name, skipped, self.inconclusive)

    @property
    def regressions(self) -> list[StepComparison]:
        return list(self.decision.regressions)

    @property
    def exit_status(self) -> ExitStatus:
        return self.decision.status

    @property
    def outcome(self) -> str:
        return self.decision.outcome

    def to_dict(self) -> dict[str, Any]:
        d = self.decision
        return {
            "run": self.run.to_dict(),
            "outcome": d.outcome,
            "exit_status": int(d.status),
            "verdict": str(self.verdict),
            "slos": [v.to_dict() for v in self.slos],
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "regressions": [s.label for s in d.regressions],
            "inconclusive": [{"row": s.label, "reason": thin_reason(s), "requests_needed": s.needs}
                             for s in d.inconclusive],
            "notes": self.notes,
        }


def gate(warehouse: Warehouse, run_id: str, baseline: str | None = None, inconclusive: str = "warn") -> GateResult:
    """Judge a run: its verdict, and each row against its history and baseline (`baseline`: a run, `auto`,
    `pinned`, or None for the pinned one else the automatic one), and record the outcome. A named or pinned
    baseline that cannot be found is an error; when no automatic one exists yet the regression checks are
    skipped and the result says so."""
    if inconclusive not in INCONCLUSIVE_CHOICES:
        raise DataError(f"--inconclusive {inconclusive!r}: expected one of {', '.join(INCONCLUSIVE_CHOICES)}")
    with warehouse.backend.session():
        run = warehouse.run(run_id)
        slos = warehouse.slo_verdicts(run_id)
        verdict = run_verdict(run.status, slos)
        result = GateResult(run, verdict, slos, inconclusive=inconclusive)
        if figures_only(warehouse, run):
            result.notes.append(f"the run holds {display_name(run.tool)}'s own figures (interval aggregates), not "
                                "requests: SLOs and regression checks, which judge requests, cannot judge it")
            result.notes.append("regression checks skipped: the run has no request samples to compare")
            return result
        if verdict == RunVerdict.NO_SLOS:
            result.notes.append("the run has no SLOs: only the regression checks judge it")
        result.baseline, why = optional_baseline(warehouse, run_id, baseline)
        if result.baseline is None:
            result.notes.append(f"regression checks skipped: {why}")
        else:
            base_run = warehouse.run(result.baseline.run_id)
            result.comparison = compare_runs(warehouse.backend, base_run, run, result.baseline.how)
            store_comparison(warehouse.backend, result.comparison)
        record_outcome(warehouse, result)
    return result


def record_outcome(warehouse: Warehouse, result: GateResult) -> None:
    """Keep the run's gate outcome (replacing an earlier one): a run judged WORSE is then never an automatic
    baseline nor part of the history later runs are judged against."""
    d = result.decision
    warehouse.backend.command(
        "INSERT INTO gate_outcomes (run_id, fingerprint, baseline_id, outcome, exit_status, worse, inconclusive, "
        "judged_at) VALUES ({run:String}, {fingerprint:String}, {baseline:String}, {outcome:String}, "
        "{status:UInt8}, {worse:UInt32}, {inconclusive:UInt32}, now64(6))",
        {"run": result.run.run_id, "fingerprint": result.run.fingerprint or "",
         "baseline": result.baseline.run_id if result.baseline else "", "outcome": d.outcome,
         "status": int(d.status), "worse": len(d.regressions), "inconclusive": len(d.inconclusive)},
    )


def gate_outcomes(warehouse: Warehouse, fingerprint: str) -> list[dict[str, Any]]:
    return warehouse.backend.query(queries.GATE_OUTCOMES, {"fingerprint": fingerprint})


def worst_status(results: Sequence[GateResult]) -> ExitStatus:
    found = {r.exit_status for r in results}
    return next((s for s in _SEVERITY if s in found), ExitStatus.OK)


def runs_to_gate(warehouse: Warehouse, ref: str) -> list[str]:
    """The runs `gate REF` judges: every run of the invocation for `latest` (all its tools), of a group id
    (or a unique prefix of one), else the one run named."""
    with warehouse.backend.session():
        if ref == "latest":
            return warehouse.run_group(warehouse.resolve("latest"))
        if ref.startswith("g-"):
            rows = warehouse.backend.query(queries.GROUP_RUNS, {"group": ref})
            groups = {str(r["group_id"]) for r in rows}
            if len(groups) > 1:
                raise DataError(f"{ref!r} matches several groups; give more of the id")
            if rows:
                return [str(r["run_id"]) for r in rows]
        return [warehouse.resolve(ref)]


# -- JUnit XML ---------------------------------------------------------------------------------------------


def junit_xml(results: Sequence[GateResult]) -> str:
    """JUnit XML as GitLab and Jenkins read it: one suite per run, its cases as `decide` made them (the run's
    completeness, each SLO, each row against the baseline)."""
    suites = []
    for result in results:
        run = result.run
        props = tuple((key, str(getattr(run, key) or "")) for key in
                      ("run_id", "tool", "spec_name", "profile", "environment", "fingerprint", "group_id", "status"))
        baseline = (("baseline_id", result.baseline.run_id), ("baseline_how", result.baseline.how),
                    ("baseline_why", result.baseline.why)) if result.baseline else ()
        suites.append(junit.Suite(f"{run.run_id} {run.tool}", result.decision.cases,
                                  run.started_at.replace(" ", "T"), _seconds(run),
                                  (*props, *baseline, ("outcome", result.outcome)), hostname=socket.gethostname()))
    return junit.write(suites, "perfhouse gate")


def _observed(v: Verdict) -> str:
    return _value(v.metric, v.observed)


def _threshold(v: Verdict) -> str:
    return _value(v.metric, v.threshold)


def _value(metric: str, value: float | None) -> str:
    if value is None:
        return "no data"
    if metric == "error_rate":
        return f"{value * 100:.2f} %"
    if metric == "throughput":
        return f"{value:.2f}/s"
    return f"{value:.2f} ms"


def _seconds(run: RunRecord) -> float:
    try:
        start = datetime.fromisoformat(run.started_at)
        end = datetime.fromisoformat(str(run.ended_at))
    except (KeyError, TypeError, ValueError):
        return 0.0
    return max((end - start).total_seconds(), 0.0)


# -- Markdown summary (GitHub's job summary) ------------------------------------------------------------------


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _pct(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:+.1%}"


def _ms(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.2f}"


def markdown_summary(results: Sequence[GateResult]) -> str:
    """The gate as Markdown (GitHub's job summary): per run its outcome, SLOs, rows against the baseline, the
    rows too thin to judge with the requests they need, and the notes; from the same decision as the exit
    status and the JUnit cases."""
    lines = [f"## perfhouse gate: {worst_status(results).name.replace('_', ' ')}", ""]
    for r in results:
        run, d = r.run, r.decision
        lines += [f"### {_cell(run.name or run.run_id)}: **{d.outcome}**", "",
                  f"Run `{run.run_id}` · {run.tool} · status {run.status} · verdict "
                  f"**{r.verdict}** · exit {int(d.status)}", ""]
        if r.slos:
            lines += ["| SLO | observed | |", "|---|---:|---|"]
            lines += [f"| {_cell(v.slo)} | {_observed(v)} | "
                      f"{'not judged' if not r.verdict.judged else 'pass' if v.passed else '**FAIL**'} |"
                      for v in r.slos]
            lines.append("")
        if r.comparison is not None:
            c = r.comparison
            why = f": {r.baseline.why}" if r.baseline and r.baseline.why else ""
            lines += [f"Against baseline `{c.a.run_id}` ({c.how}{why}):", "",
                      "| row | p95 ms (baseline → run) | p95 change | judged against | error rate | verdict |",
                      "|---|---:|---:|---|---:|---|"]
            for s in c.rows:
                delta = s.deltas()
                against = {"history": f"{s.noise.stable} runs ({_ms(s.reference_p95)} ms predicted)",
                           "pair": "baseline run, history's noise", "wide": "baseline run, wide floor"}.get(s.mode, "–")
                lines.append(
                    f"| {_cell(s.label)} | {_ms(delta['p95_ms'].a)} → {_ms(delta['p95_ms'].b)} | "
                    f"{_pct(delta['p95_ms'].relative)} | {against} | {_ms(_times(delta['error_rate'].b, 100))} % | "
                    f"{'**WORSE**' if s.verdict == CompareVerdict.WORSE else s.verdict} |")
            lines.append("")
            if d.inconclusive:
                lines += ["Not judged (INCONCLUSIVE):", ""]
                lines += [f"- {_cell(s.label)}: {_cell(thin_reason(s))}" for s in d.inconclusive]
                lines.append("")
            lines += [f"- {_cell(n)}" for n in c.notes]
        lines += [f"- {_cell(n)}" for n in r.notes]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor
