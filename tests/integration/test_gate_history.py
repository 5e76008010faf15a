"""The gate on seeded runs in a warehouse (chdb): judged against the stable history, no baseline creep, one
decision behind exit status and JUnit, thin steps named, unjudged runs answered alike by gate and report,
the tools of a group compared without a verdict.

Runs are seeded log-normal request samples (tests/support/samples.py): each step of each run scaled by its own
run-to-run noise draw of 2 %.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from tests.support.samples import load_samples, lognormal, save_run
from warehouse.analysis.compare import CompareVerdict, compare_group
from warehouse.analysis.gate import gate, junit_xml, markdown_summary
from warehouse.analysis.slo import Objective
from warehouse.errors import ExitStatus
from warehouse.report.report_formats import report
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

NOISE = 0.02


def seed_runs(wh: Warehouse, tmp: Path, rng: np.random.Generator, fingerprint: str, first_day: int,
              scales: list[float], steps: dict[str, tuple[int, float]], slow: dict[str, float] | None = None,
              status: str = "completed") -> list[str]:
    """One run per entry of `scales` (its whole-run factor), a day apart, of `steps` (name: requests, median
    ms); `slow` multiplies chosen steps."""
    rows, ids = [], []
    for i, scale in enumerate(scales):
        run_id = f"{fingerprint}-{first_day + i:02d}"
        save_run(wh, run_id, f"2026-01-{first_day + i:02d} 00:00:00.000", fingerprint=fingerprint, status=status)
        for step, (n, median) in steps.items():
            factor = scale * (1 + NOISE * rng.standard_normal()) * (slow or {}).get(step, 1.0)
            rows.append((run_id, "shop", step, lognormal(rng, n, factor, median_ms=median), None))
        ids.append(run_id)
    load_samples(wh, tmp / f"{ids[0]}.parquet", rows)
    return ids


def junit_failures(xml: str) -> list[tuple[str, str]]:
    return [(case.get("name", ""), child.get("type", "")) for case in ET.fromstring(xml).iter("testcase")
            for child in case if child.tag in ("failure", "error")]


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse.open(f"chdb://{tmp_path / 'warehouse'}")


def test_two_regressed_runs_in_a_row_are_both_caught_and_neither_becomes_the_baseline(
    wh: Warehouse, tmp_path: Path,
) -> None:
    rng = np.random.default_rng(1)
    steps = {"list": (2000, 40.0), "view": (2000, 60.0), "pay": (2000, 90.0)}
    history = seed_runs(wh, tmp_path, rng, "fp", 1, [1.0] * 10, steps)
    first, second = seed_runs(wh, tmp_path, rng, "fp", 11, [1.3, 1.3], steps)
    (after,) = seed_runs(wh, tmp_path, rng, "fp", 13, [1.0], steps)
    judged = gate(wh, first)
    assert judged.exit_status == ExitStatus.REGRESSION
    assert judged.comparison is not None and {s.mode for s in judged.comparison.rows} == {"history"}
    again = gate(wh, second)
    assert again.exit_status == ExitStatus.REGRESSION  # judged against the stable history, not against `first`
    assert again.baseline is not None and again.baseline.run_id == history[-1]
    assert "1 later run judged WORSE passed over" in again.baseline.why
    assert again.comparison is not None and all(s.noise.stable == 10 for s in again.comparison.rows)
    ok = gate(wh, after)  # the regressed runs are left out of the history, which stays stable
    assert ok.exit_status == ExitStatus.OK, [(s.label, s.verdict, s.reason) for s in ok.comparison.rows]
    assert ok.baseline is not None and ok.baseline.run_id == history[-1]


def test_only_the_overall_row_worse_gates_8_with_the_matching_junit_failure(wh: Warehouse, tmp_path: Path) -> None:
    """Ten thin steps (50 requests each: never judged alone), the whole run 5 times slower."""
    rng = np.random.default_rng(2)
    steps = {f"s{i}": (50, 20.0 + 5 * i) for i in range(10)}
    seed_runs(wh, tmp_path, rng, "thin", 1, [1.0] * 10, steps)
    (slow,) = seed_runs(wh, tmp_path, rng, "thin", 11, [5.0], steps)
    result = gate(wh, slow)
    assert result.comparison is not None
    assert {s.verdict for s in result.comparison.steps} == {CompareVerdict.INCONCLUSIVE}
    assert result.comparison.overall.verdict == CompareVerdict.WORSE
    assert result.exit_status == ExitStatus.REGRESSION and result.outcome == "FAILED: regression"
    assert junit_failures(junit_xml([result])) == [("overall", "Regression")]
    summary = markdown_summary([result])
    assert "**FAILED: regression**" in summary
    assert "- shop/s0: too few requests to judge: 50, a verdict needs 200 in each run" in summary
    assert result.to_dict()["inconclusive"][0] == {
        "row": "shop/s0", "reason": "too few requests to judge: 50, a verdict needs 200 in each run",
        "requests_needed": 200}
    md = report(wh, [slow], "json").text
    assert "Not judged for too few requests: shop/s0 (50 requests, needs 200 in each run)" in md


def test_a_worse_step_under_an_unchanged_overall_gates_8(wh: Warehouse, tmp_path: Path) -> None:
    """The fastest of four steps 50 % slower: still far below the run's p95, which does not move."""
    rng = np.random.default_rng(3)
    steps = {"health": (3000, 5.0), "list": (3000, 80.0), "view": (3000, 90.0), "pay": (3000, 100.0)}
    seed_runs(wh, tmp_path, rng, "mix", 1, [1.0] * 10, steps)
    (run,) = seed_runs(wh, tmp_path, rng, "mix", 11, [1.0], steps, slow={"health": 1.5})
    result = gate(wh, run)
    assert result.comparison is not None
    verdicts = {s.label: s.verdict for s in result.comparison.rows}
    assert verdicts["shop/health"] == CompareVerdict.WORSE and verdicts["overall"] == CompareVerdict.SAME
    assert result.exit_status == ExitStatus.REGRESSION
    assert junit_failures(junit_xml([result])) == [("shop/health", "Regression")]


def test_an_aborted_run_is_not_judged_alike_by_gate_and_report(wh: Warehouse, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    (run,) = seed_runs(wh, tmp_path, rng, "cut", 1, [1.0], {"list": (300, 40.0)}, status="aborted")
    wh.evaluate_slos(run, [Objective("p95", 10_000.0)])  # held by the partial data, and still not judged
    result = gate(wh, run)
    assert result.exit_status == ExitStatus.RUN_INCOMPLETE
    gate_cases = {n: t for n, t in junit_failures(junit_xml([result]))}
    report_cases = dict(junit_failures(report(wh, [run], "junit").text))
    slo_name = "overall p95 < 10000 ms"
    assert slo_name in gate_cases and slo_name in report_cases
    for xml in (junit_xml([result]), report(wh, [run], "junit").text):
        (case,) = [c for c in ET.fromstring(xml).iter("testcase") if c.get("name") == slo_name]
        (element,) = [c for c in case if c.tag in ("failure", "error", "skipped")]
        assert element.tag == "error" and "not judged" in element.get("message", "")


def test_every_tool_of_a_group_is_compared_and_none_is_judged(wh: Warehouse, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    for i, tool in enumerate(("jmeter", "k6", "locust")):
        save_run(wh, tool, f"2026-03-01 00:00:0{i}.000", fingerprint=f"fp-{tool}", tool=tool, group_id="g-abc")
    load_samples(wh, tmp_path / "g.parquet",
                 [(t, "shop", "list", lognormal(rng, 500, 1.5 if t == "jmeter" else 1.0), None)
                  for t in ("jmeter", "k6", "locust")])
    found = compare_group(wh, "g-abc")
    assert [(c.a.tool, c.b.tool) for c in found] == [("k6", "jmeter"), ("k6", "locust")]
    for c in found:
        assert c.verdict == CompareVerdict.NOT_JUDGED
        assert {s.verdict for s in c.rows} == {CompareVerdict.NOT_JUDGED}
        assert not any("assertion also clears" in n for n in c.notes)
        assert any("failed checks (assertions" in n and "not in these error rates" in n for n in c.notes)
    assert any("locust `locust`" in n for n in found[0].notes)  # the pair shown first names the other


def test_the_command_warns_of_thin_rows_and_inconclusive_fail_fails_them(tmp_path: Path) -> None:
    """Thin steps in an otherwise unchanged run: a warning by default (exit 0, skipped JUnit cases with the
    reason), exit 10 with --inconclusive fail."""
    url = f"chdb://{tmp_path / 'warehouse'}"
    wh = Warehouse.open(url)
    rng = np.random.default_rng(6)
    steps = {"list": (3000, 40.0), "rare": (40, 60.0)}
    seed_runs(wh, tmp_path, rng, "cli", 1, [1.0] * 6, steps)
    (run,) = seed_runs(wh, tmp_path, rng, "cli", 7, [1.0], steps)
    del wh
    junit = tmp_path / "gate.xml"
    base = [sys.executable, "-m", "orchestrator", "--warehouse", url, "gate", run]
    warned = subprocess.run([*base, "--junit", str(junit)], capture_output=True, text=True, timeout=120)
    assert warned.returncode == ExitStatus.OK, warned.stdout + warned.stderr
    assert (f"perfhouse: warning: {run} shop/rare not judged (INCONCLUSIVE): too few requests to judge: 40, a "
            "verdict needs 200 in each run") in warned.stderr
    (rare,) = [c for c in ET.parse(junit).getroot().iter("testcase") if c.get("name") == "shop/rare"]
    assert [(c.tag, c.get("message")) for c in rare if c.tag != "system-out"] == [
        ("skipped", "INCONCLUSIVE: too few requests to judge: 40, a verdict needs 200 in each run")]
    failed = subprocess.run([*base, "--inconclusive", "fail"], capture_output=True, text=True, timeout=120)
    assert failed.returncode == ExitStatus.INCONCLUSIVE == 10, failed.stdout + failed.stderr
    assert "FAILED: inconclusive" in failed.stdout
