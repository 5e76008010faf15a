"""The CI gate: a run's completeness, its SLOs and its rows against the history and baseline, decided once
(`decide`) into the exit status, the JUnit cases and the Markdown summary, so the three never disagree.

Any WORSE row, a step's or the whole run's, is a regression (exit 8) everywhere. A run that was aborted or is
incomplete is not judged: its SLO and regression cases are JUnit errors ("not judged"), as `report --format
junit` writes them, and the exit status is 9. INCONCLUSIVE rows follow `--inconclusive`: `warn` (the default:
a skipped case with the reason and a printed warning), `fail` (a failed case, exit 10) or `pass`.

Repeats (`run --repeat N`) are judged as one set (`gate_set`): the runs of one invocation (group) with one
fingerprint. Each repeat's completeness and SLOs are its own cases (a breach in any repeat is a breach, an
incomplete repeat leaves the set not judged); the rows are judged once, by the set's median against the
history (compare.compare_set); one decision, one JUnit suite for the set (one suite per judged unit: a run, or
a set of repeats, as `gate latest` of several tools gives one per tool), and the outcome recorded for every
run of the set: a set judged WORSE is never a baseline nor history. The repeats enter the history as the N
single runs they are, so the history's sigma stays the spread of one run, which the set's prediction divides
by the median's worth.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from warehouse.analysis import junit, slo
from warehouse.analysis.baseline import Baseline, optional_baseline
from warehouse.analysis.compare import (
    CompareVerdict,
    Comparison,
    StepComparison,
    compare_set,
    store_comparison,
)
from warehouse.analysis.slo import Verdict
from warehouse.analysis.verdict import RunVerdict, group_verdict, run_verdict
from warehouse.errors import DataError, ExitStatus
from warehouse.read import queries
from warehouse.read.records import GateOutcome, RunRecord
from warehouse.store import Warehouse
from warehouse.tools import display_name

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
           skipped_why: str = "", inconclusive: str = "warn",
           repeats: Sequence[tuple[str, RunVerdict]] = ()) -> GateDecision:
    """The one decision of the gate (module docstring): the cases, then the status as the most severe kind
    of failure or error among them, so exit status, JUnit and summary come from the same findings. For a set
    of repeats, `repeats` holds each run's id and verdict (a completeness case each; `verdict` the most severe,
    `slos` every repeat's, labelled by repeat)."""
    if inconclusive not in INCONCLUSIVE_CHOICES:
        raise DataError(f"--inconclusive {inconclusive!r}: expected one of {', '.join(INCONCLUSIVE_CHOICES)}")
    slo_cls, reg_cls = f"perfhouse.slo.{spec_name or 'run'}", f"perfhouse.regression.{spec_name or 'run'}"
    judged = verdict.judged and all(v.judged for _, v in repeats)
    not_judged = (f"run {str(verdict).lower()}: not judged (partial data decides nothing)" if not repeats else
                  f"a repeat {str(verdict).lower()}: the set is not judged (partial data decides nothing)")
    cases = [junit.Case(f"run completed (repeat {i}/{len(repeats)} {run_id})" if repeats else "run completed",
                        slo_cls, error=None if v.judged else not_judged,
                        details="" if v.judged else str(v), kind="RunIncomplete")
             for i, (run_id, v) in enumerate(repeats or (("", verdict),), 1)]
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
        return f"too few requests to judge: {s.fewest}, a verdict needs {s.needs} in each run"
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
    repeats: list[tuple[RunRecord, RunVerdict]] = field(default_factory=list)  # a set: each run, its verdict

    @property
    def run_ids(self) -> list[str]:
        """The runs this result judges: the set's, or the one run."""
        return [r.run_id for r, _ in self.repeats] or [self.run.run_id]

    @property
    def decision(self) -> GateDecision:
        skipped = next((n for n in self.notes if n.startswith("regression checks skipped")), "no baseline")
        return decide(self.verdict, self.slos, self.comparison, self.run.spec_name, skipped, self.inconclusive,
                      [(r.run_id, v) for r, v in self.repeats])

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
            "repeats": [{"run_id": r.run_id, "status": r.status, "verdict": str(v)} for r, v in self.repeats],
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
    return gate_set(warehouse, [run_id], baseline, inconclusive)


def gate_set(warehouse: Warehouse, run_ids: Sequence[str], baseline: str | None = None,
             inconclusive: str = "warn") -> GateResult:
    """Judge one run, or a set of repeats as one (module docstring): each run's SLOs, the rows of the set's
    median against the history and the baseline of its first run (chosen before any repeat ran), one
    outcome recorded for every run of it."""
    if inconclusive not in INCONCLUSIVE_CHOICES:
        raise DataError(f"--inconclusive {inconclusive!r}: expected one of {', '.join(INCONCLUSIVE_CHOICES)}")
    if not run_ids:
        raise DataError("no run to gate")
    with warehouse.backend.session():
        runs = sorted((warehouse.run(r) for r in run_ids), key=lambda r: (r.started_at, r.run_id))
        repeated = len(runs) > 1
        per_run = [(r, slo.stored(warehouse.backend, r.run_id)) for r in runs]
        verdicts = [(r, run_verdict(r.status, slos)) for r, slos in per_run]
        verdict = group_verdict([str(v) for _, v in verdicts]) if repeated else verdicts[0][1]
        slos = [replace(v, slo=f"{v.slo} (repeat {i}/{len(runs)})") if repeated else v
                for i, (_, run_slos) in enumerate(per_run, 1) for v in run_slos]
        run = runs[0]
        result = GateResult(run, verdict, slos, inconclusive=inconclusive, repeats=verdicts if repeated else [])
        if repeated:
            result.notes.append(f"a set of {len(runs)} repeats judged as one: each repeat's SLOs, the rows by "
                                "the median of the repeats against the history")
        if any(figures_only(warehouse, r) for r in runs):
            result.notes.append(f"the run holds {display_name(run.tool)}'s own figures (interval aggregates), not "
                                "requests: SLOs and regression checks, which judge requests, cannot judge it")
            result.notes.append("regression checks skipped: the run has no request samples to compare")
            return result
        if verdict == RunVerdict.NO_SLOS:
            result.notes.append("the run has no SLOs: only the regression checks judge it")
        result.baseline, why = optional_baseline(warehouse, run.run_id, baseline)
        if result.baseline is not None and result.baseline.run_id in result.run_ids:
            raise DataError(f"run {result.baseline.run_id} is a repeat of the set judged: it cannot be its baseline")
        if result.baseline is None:
            result.notes.append(f"regression checks skipped: {why}")
        else:
            base_run = warehouse.run(result.baseline.run_id)
            result.comparison = compare_set(warehouse.backend, base_run, runs, result.baseline.how)
            store_comparison(warehouse.backend, result.comparison)
        record_outcome(warehouse, result)
    return result


def figures_only(warehouse: Warehouse, run: RunRecord) -> bool:
    """Does the run hold its tool's own figures (interval aggregates) and no requests? Such a run has nothing
    the gate's checks judge."""
    rows = warehouse.backend.query(queries.RUN_HOLDS, {"run": run.run_id})
    return bool(rows) and int(rows[0]["aggregates"]) > 0 and int(rows[0]["requests"]) == 0


def record_outcome(warehouse: Warehouse, result: GateResult) -> None:
    """Keep the gate outcome of the run, or of every run of a set (replacing an earlier one): a run judged
    WORSE is then never an automatic baseline nor part of the history later runs are judged against."""
    d = result.decision
    for run_id in result.run_ids:
        warehouse.backend.command(
            "INSERT INTO gate_outcomes (run_id, fingerprint, baseline_id, outcome, exit_status, worse, inconclusive, "
            "judged_at) VALUES ({run:String}, {fingerprint:String}, {baseline:String}, {outcome:String}, "
            "{status:UInt8}, {worse:UInt32}, {inconclusive:UInt32}, now64(6))",
            {"run": run_id, "fingerprint": result.run.fingerprint or "",
             "baseline": result.baseline.run_id if result.baseline else "", "outcome": d.outcome,
             "status": int(d.status), "worse": len(d.regressions), "inconclusive": len(d.inconclusive)},
        )


def gate_outcomes(warehouse: Warehouse, fingerprint: str) -> list[GateOutcome]:
    """The latest gate outcome of each run of a fingerprint."""
    return [GateOutcome.of(r) for r in warehouse.backend.query(queries.GATE_OUTCOMES, {"fingerprint": fingerprint})]


@dataclass(frozen=True)
class RunGate:
    """A run's latest gate outcome and the runs judged with it: the repeats of its set (`sets_to_gate`: its
    invocation's runs of its fingerprint, oldest first), or the run alone."""

    outcome: GateOutcome
    judged_with: list[str]

    @property
    def of_a_set(self) -> bool:
        return len(self.judged_with) > 1


def run_gate(warehouse: Warehouse, run_id: str) -> RunGate | None:
    """The latest gate outcome of `run_id` and the runs judged with it; None when the run was never gated."""
    with warehouse.backend.session():
        rows = warehouse.backend.query(queries.GATE_OUTCOME_OF_RUN, {"run": run_id})
        if not rows:
            return None
        together = [s for s in sets_to_gate(warehouse, warehouse.run_group(run_id)) if run_id in s]
    return RunGate(GateOutcome.of(rows[0]), together[0] if together else [run_id])


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


def sets_to_gate(warehouse: Warehouse, run_ids: Sequence[str]) -> list[list[str]]:
    """The runs to gate as the units judged: the repeats of one invocation (one group id, one fingerprint:
    `run --repeat N`) together, oldest first; every other run alone. In the order the runs are given."""
    sets: dict[tuple[str, str] | str, list[tuple[str, str]]] = {}
    with warehouse.backend.session():
        for run_id in run_ids:
            run = warehouse.run(run_id)
            key: tuple[str, str] | str = (run.group_id, run.fingerprint) if run.group_id and run.fingerprint else run_id
            sets.setdefault(key, []).append((run.started_at, run_id))
    return [[run_id for _, run_id in sorted(members)] for members in sets.values()]


# -- JUnit XML ---------------------------------------------------------------------------------------------


def junit_xml(results: Sequence[GateResult]) -> str:
    """JUnit XML as GitLab and Jenkins read it: one suite per run or set of repeats, its cases as `decide`
    made them (each run's completeness, each SLO, each row against the baseline)."""
    suites = []
    for result in results:
        run = result.run
        props = tuple((key, str(getattr(run, key) or "")) for key in
                      ("run_id", "tool", "spec_name", "profile", "environment", "fingerprint", "group_id", "status"))
        baseline = (("baseline_id", result.baseline.run_id), ("baseline_how", result.baseline.how),
                    ("baseline_why", result.baseline.why)) if result.baseline else ()
        repeats = (("repeats", ",".join(result.run_ids)),) if result.repeats else ()
        name = (f"{run.run_id} {run.tool}" if not result.repeats else
                f"{run.run_id} {run.tool} ({len(result.repeats)} repeats)")
        suites.append(junit.Suite(name, result.decision.cases, run.started_at.replace(" ", "T"),
                                  sum(_seconds(r) for r, _ in result.repeats) if result.repeats else _seconds(run),
                                  (*props, *repeats, *baseline, ("outcome", result.outcome)),
                                  hostname=socket.gethostname()))
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
        lines += [f"### {_cell(run.name or run.run_id)}: **{d.outcome}**", ""]
        if r.repeats:
            lines += [f"{len(r.repeats)} repeats (judged as one) · {run.tool} · runs "
                      + ", ".join(f"`{x.run_id}` {x.status}" for x, _ in r.repeats)
                      + f" · verdict **{r.verdict}** · exit {int(d.status)}", ""]
        else:
            lines += [f"Run `{run.run_id}` · {run.tool} · status {run.status} · verdict "
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
                           "pair": "baseline run, " + ("the repeats' noise" if s.noise.source == "repeats" else
                                                       "history's noise"),
                           "wide": "baseline run, wide floor"}.get(s.mode, "–")
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
