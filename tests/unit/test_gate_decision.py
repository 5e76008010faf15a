"""The gate's one decision (warehouse.analysis.gate.decide): exit status, JUnit cases and summary agree for
every combination of run verdict, SLO results and row verdicts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.analysis.baseline import Baseline
from warehouse.analysis.compare import CompareVerdict, Comparison, Side, StepComparison
from warehouse.analysis.gate import GateResult, decide, junit_xml, markdown_summary
from warehouse.analysis.slo import Verdict
from warehouse.analysis.verdict import RunVerdict
from warehouse.errors import ExitStatus
from warehouse.read.records import RunRecord

A = RunRecord("base", tool="k6", spec_name="shop", status="completed", started_at="2026-01-01 00:00:00.000")
B = RunRecord("cand", tool="k6", spec_name="shop", status="completed", started_at="2026-01-02 00:00:00.000",
              ended_at="2026-01-02 00:01:00.000")
SIDE = Side(1000, 0, 40.0, 80.0, 120.0, 78.0, 82.0, 10.0)
THIN = Side(57, 0, 40.0, 80.0, 120.0, 78.0, 82.0, 1.0)


def row(label: str, verdict: CompareVerdict, thin: bool = False) -> StepComparison:
    journey, step = label.split("/") if label != "overall" else ("", "")
    side = THIN if thin else SIDE
    return StepComparison(journey, step, side, side, verdict, f"{verdict} because", needs=200 if thin else 0)


def comparison(verdicts: list[CompareVerdict], overall: CompareVerdict) -> Comparison:
    steps = [row(f"shop/s{i}", v, thin=v == CompareVerdict.INCONCLUSIVE) for i, v in enumerate(verdicts)]
    return Comparison(A, B, steps, row("overall", overall), "auto")


def slo(passed: bool, i: int = 0) -> Verdict:
    return Verdict(f"overall p95 < {500 + i} ms", "overall", "p95", 500.0 + i, 100.0 if passed else 900.0, passed)


def failures(xml: str) -> dict[str, list[str]]:
    """The failed and errored cases of a JUnit document by type."""
    out: dict[str, list[str]] = {}
    for case in ET.fromstring(xml).iter("testcase"):
        for child in case:
            if child.tag in ("failure", "error"):
                out.setdefault(child.get("type", ""), []).append(case.get("name", ""))
    return out


def test_only_the_overall_row_worse_is_a_regression_with_its_junit_failure() -> None:
    """Every step too thin to judge, the whole run WORSE: exit 8, a failed `overall` case, FAILED in the
    summary (an old gate printed PASSED and exited 0 above a failed JUnit case)."""
    c = comparison([CompareVerdict.INCONCLUSIVE] * 3, CompareVerdict.WORSE)
    d = decide(RunVerdict.PASSED, [slo(True)], c, "shop")
    assert d.status == ExitStatus.REGRESSION and d.outcome == "FAILED: regression"
    assert [s.label for s in d.regressions] == ["overall"]
    result = GateResult(B, RunVerdict.PASSED, [slo(True)], Baseline("base", "auto"), c)
    assert failures(junit_xml([result])) == {"Regression": ["overall"]}
    summary = markdown_summary([result])
    assert "## perfhouse gate: REGRESSION" in summary and "**FAILED: regression**" in summary
    assert "too few requests to judge: 57, a verdict needs 200 in each run" in summary


def test_a_worse_step_under_a_same_overall_is_a_regression() -> None:
    c = comparison([CompareVerdict.SAME, CompareVerdict.WORSE], CompareVerdict.SAME)
    assert c.verdict == CompareVerdict.WORSE
    assert decide(RunVerdict.NO_SLOS, [], c).status == ExitStatus.REGRESSION


def test_compares_headline_follows_the_gates_rule() -> None:
    """An overall WORSE heads the comparison even when a step is INCONCLUSIVE."""
    assert comparison([CompareVerdict.INCONCLUSIVE], CompareVerdict.WORSE).verdict == CompareVerdict.WORSE
    assert comparison([CompareVerdict.SAME], CompareVerdict.BETTER).verdict == CompareVerdict.BETTER


@pytest.mark.parametrize(("policy", "status", "kind"), [
    ("warn", ExitStatus.OK, "skipped"), ("fail", ExitStatus.INCONCLUSIVE, "failure"), ("pass", ExitStatus.OK, None)])
def test_thin_rows_follow_the_inconclusive_policy(policy: str, status: ExitStatus, kind: str | None) -> None:
    d = decide(RunVerdict.PASSED, [slo(True)], comparison([CompareVerdict.INCONCLUSIVE], CompareVerdict.SAME),
               inconclusive=policy)
    assert d.status == status and [s.label for s in d.inconclusive] == ["shop/s0"]
    (case,) = [c for c in d.cases if c.name == "shop/s0"]
    found = next((k for k in ("failure", "skipped", "error") if getattr(case, k) is not None), None)
    assert found == kind
    if kind:
        assert "needs 200" in str(getattr(case, kind))


def test_an_unjudged_run_has_every_case_errored_not_passed() -> None:
    """Aborted: SLO and regression cases are errors ("not judged"), as `report --format junit` writes them."""
    d = decide(RunVerdict.ABORTED, [slo(True)], comparison([CompareVerdict.WORSE], CompareVerdict.SAME))
    assert d.status == ExitStatus.RUN_INCOMPLETE
    assert all(c.error is not None and "not judged" in c.error for c in d.cases)


VERDICTS = st.sampled_from(list(CompareVerdict))


@settings(max_examples=200, deadline=None)
@given(run=st.sampled_from(list(RunVerdict)), slos=st.lists(st.booleans(), max_size=3),
       steps=st.lists(VERDICTS, max_size=6), overall=VERDICTS, policy=st.sampled_from(["warn", "fail", "pass"]),
       has_comparison=st.booleans())
def test_exit_status_junit_and_summary_agree(run: RunVerdict, slos: list[bool], steps: list[CompareVerdict],
                                             overall: CompareVerdict, policy: str, has_comparison: bool) -> None:
    verdicts = [slo(p, i) for i, p in enumerate(slos)]
    c = comparison(steps, overall) if has_comparison else None
    result = GateResult(B, run, verdicts, Baseline("base", "auto") if c else None, c, inconclusive=policy)
    d = result.decision
    found = failures(junit_xml([result]))
    worse = [s.label for s in c.rows if s.verdict == CompareVerdict.WORSE] if c else []
    if not run.judged:
        assert d.status == ExitStatus.RUN_INCOMPLETE and set(found) == {"RunIncomplete"}
    else:
        assert sorted(found.get("Regression", [])) == sorted(worse)
        assert len(found.get("SLOBreach", [])) == slos.count(False)
        expected = (ExitStatus.SLO_FAILED if False in slos else ExitStatus.REGRESSION if worse
                    else ExitStatus.INCONCLUSIVE if found.get("Inconclusive") else ExitStatus.OK)
        assert d.status == expected
        assert (d.status == ExitStatus.OK) == (not found)
    assert f"exit {int(d.status)}" in markdown_summary([result])


B2 = RunRecord("cand2", tool="k6", spec_name="shop", status="aborted", started_at="2026-01-02 00:02:00.000",
               ended_at="2026-01-02 00:02:30.000")


def repeat_slo(passed: bool, i: int) -> Verdict:
    return Verdict(f"overall p95 < 500 ms (repeat {i}/2)", "overall", "p95", 500.0, 100.0 if passed else 900.0,
                   passed)


def test_a_set_of_repeats_is_one_suite_with_each_repeats_cases_and_the_rows_once() -> None:
    """`run --repeat 2`: one suite, a completeness case and the SLOs of each repeat, the rows judged once; a
    breach in one repeat is the set's breach (exit 3) beside its WORSE row."""
    done = replace(B2, run_id="cand2", status="completed")
    c = comparison([CompareVerdict.SAME, CompareVerdict.WORSE], CompareVerdict.SAME)
    result = GateResult(B, RunVerdict.FAILED, [repeat_slo(True, 1), repeat_slo(False, 2)], Baseline("base", "auto"),
                        c, repeats=[(B, RunVerdict.PASSED), (done, RunVerdict.FAILED)])
    d = result.decision
    assert d.status == ExitStatus.SLO_FAILED and [s.label for s in d.regressions] == ["shop/s1"]
    names = [case.name for case in d.cases]
    assert names[:2] == ["run completed (repeat 1/2 cand)", "run completed (repeat 2/2 cand2)"]
    assert names.count("shop/s1") == 1 and names.count("overall") == 1
    xml = junit_xml([result])
    assert len(ET.fromstring(xml).findall(".//testsuite")) == 1
    assert failures(xml) == {"SLOBreach": ["overall p95 < 500 ms (repeat 2/2)"], "Regression": ["shop/s1"]}
    props = {p.get("name"): p.get("value") for p in ET.fromstring(xml).iter("property")}
    assert props["repeats"] == "cand,cand2"
    assert "2 repeats (judged as one)" in markdown_summary([result])
    assert result.to_dict()["repeats"][1] == {"run_id": "cand2", "status": "completed", "verdict": "FAILED"}


def test_one_aborted_repeat_leaves_the_whole_set_not_judged() -> None:
    c = comparison([CompareVerdict.WORSE], CompareVerdict.WORSE)
    d = decide(RunVerdict.ABORTED, [repeat_slo(True, 1), repeat_slo(True, 2)], c, "shop",
               repeats=[("cand", RunVerdict.PASSED), ("cand2", RunVerdict.ABORTED)])
    assert d.status == ExitStatus.RUN_INCOMPLETE and not d.regressions
    errored = {case.name: case.error for case in d.cases if case.error}
    assert "run completed (repeat 1/2 cand)" not in errored and "run completed (repeat 2/2 cand2)" in errored
    assert all("the set is not judged" in text for text in errored.values())
    assert {"shop/s0", "overall", "overall p95 < 500 ms (repeat 1/2)"} <= set(errored)
