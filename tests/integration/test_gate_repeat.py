"""`run --repeat N --gate` on real k6 runs against the demo API: the N runs are recorded as runs of one group,
gated as one set (one JUnit suite with each repeat's completeness and SLO cases and the rows judged once),
`gate latest` judges the set the same way, and a set judged WORSE is recorded as such for every run of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import junitparser
import numpy as np
import pytest

from orchestrator.demo_api import DemoAPI
from tests.conftest import need
from tests.integration.test_gate import SCHEMA, perfhouse
from tests.support.samples import load_samples, lognormal, save_run
from warehouse.errors import ExitStatus
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

SPEC = """\
name: repeat-shop
services:
  api: http://127.0.0.1:1
journeys:
  - name: browse
    weight: 1
    steps:
      - name: list
        path: /products
      - name: view
        path: /products/1
profiles:
  ci:
    executor: constant_vus
    vus: 30
    duration: 3s
slos:
  - metric: p95
    threshold: 3000ms
"""


def suite_cases(path: Path) -> tuple[list[junitparser.TestSuite], dict[str, junitparser.TestCase]]:
    SCHEMA.validate(str(path))
    suites = list(junitparser.JUnitXml.fromfile(str(path)))
    return suites, {case.name: case for suite in suites for case in suite}


def test_run_repeat_gate_records_the_runs_and_judges_them_as_one_set(tmp_path: Path) -> None:
    need("k6")
    spec = tmp_path / "shop.yaml"
    spec.write_text(SPEC)
    warehouse = f"chdb://{tmp_path / 'warehouse'}"
    runs = ["--runs-dir", str(tmp_path / "runs"), "--progress-interval", "0"]
    first, second = tmp_path / "first.xml", tmp_path / "second.xml"
    # 20-30 ms against 150-200 ms: a shift no load on the machine can hide; 30 VUs for 3 s give the slow set's
    # overall row the 200 requests a run it needs to be judged even when a busy machine adds 100 ms to each
    # request, and the SLO is loose enough that such a machine does not breach it
    with DemoAPI(delay_ms=(20.0, 30.0)) as fast, DemoAPI(delay_ms=(150.0, 200.0)) as slow:
        proc = perfhouse(warehouse, "run", str(spec), "--profile", "ci", "--service", f"api={fast.url}",
                         "--repeat", "2", "--gate", "--junit", str(first), *runs)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "repeat 2 of 2" in proc.stdout and "a set of 2 repeats" in proc.stdout, proc.stdout
        recorded = json.loads(perfhouse(warehouse, "runs", "--json").stdout)
        assert len(recorded) == 2 and len({r["group_id"] for r in recorded}) == 1, recorded
        set_one = sorted(r["run_id"] for r in recorded)
        # one suite for the set: each repeat's completeness and SLO, no baseline yet
        suites, cases = suite_cases(first)
        assert len(suites) == 1 and "(2 repeats)" in suites[0].name
        assert sum(name.startswith("run completed (repeat ") for name in cases) == 2
        assert {name for name in cases if name.startswith("overall p95")} == {
            "overall p95 < 3000 ms (repeat 1/2)", "overall p95 < 3000 ms (repeat 2/2)"}
        # the same system seven times slower: the set is WORSE against the first set's run, judged once
        proc = perfhouse(warehouse, "run", str(spec), "--profile", "ci", "--service", f"api={slow.url}",
                         "--repeat", "2", "--gate", "--junit", str(second), *runs)
        assert proc.returncode == ExitStatus.REGRESSION, proc.stdout + proc.stderr
    suites, cases = suite_cases(second)
    assert len(suites) == 1
    failed = {name for name, case in cases.items() if any(isinstance(r, junitparser.Failure) for r in case.result)}
    assert "overall" in failed and not any("repeat" in name for name in failed), failed
    # `gate latest` judges the latest invocation's two runs as the same set, with the same decision
    proc = perfhouse(warehouse, "gate", "latest", "--json")
    assert proc.returncode == ExitStatus.REGRESSION, proc.stdout + proc.stderr
    (result,) = json.loads(proc.stdout)
    set_two = sorted(r["run_id"] for r in result["repeats"])
    assert len(set_two) == 2 and not set(set_two) & set(set_one)
    assert result["baseline"]["run_id"] in set_one and set(result["comparison"]["repeats"]) == set(set_two)
    assert any("B is a set of 2 repeats" in n for n in result["comparison"]["notes"])
    # both runs of the WORSE set are recorded as WORSE: neither can become an automatic baseline
    wh = Warehouse.open(warehouse)
    outcomes = {str(r["run_id"]): int(r["worse"]) for r in wh.backend.query(
        "SELECT run_id, worse FROM gate_outcomes FINAL")}
    assert all(outcomes[r] > 0 for r in set_two) and all(outcomes[r] == 0 for r in set_one), outcomes
    # a report of the repeated group says why it compares no tools, and compare --group refuses in one line
    report = json.loads(perfhouse(warehouse, "report", "latest", "--format", "json").stdout)
    assert "repeats of one tool" in " ".join(report["comparison"]["notes"])
    refused = perfhouse(warehouse, "compare", "--group", "latest")
    assert refused.returncode == 2 and "repeats of one tool" in refused.stderr
    refused = perfhouse(warehouse, "report", "latest", "--baseline", "auto")
    assert refused.returncode == 2 and "repeats of one tool" in refused.stderr


def test_a_repeat_count_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    spec = tmp_path / "shop.yaml"
    spec.write_text(SPEC)
    proc = perfhouse(f"chdb://{tmp_path / 'warehouse'}", "run", str(spec), "--profile", "ci", "--repeat", "0")
    assert proc.returncode == 2 and "--repeat" in proc.stderr and "Traceback" not in proc.stderr


def seed_set(wh: Warehouse, tmp: Path, rng: np.random.Generator, name: str, day: int, repeats: int,
             slow: dict[str, float] | None = None) -> list[str]:
    """`repeats` runs of one group (a run a minute apart on `day`), each step scaled by its own 2 % draw."""
    rows, ids = [], []
    for i in range(repeats):
        run_id = f"{name}-{i}"
        save_run(wh, run_id, f"2026-01-{day:02d} 00:{i:02d}:00.000", group_id=f"g-{name}" if repeats > 1 else "")
        for step, median in STEPS.items():
            factor = (1 + 0.02 * rng.standard_normal()) * (slow or {}).get(step, 1.0)
            rows.append((run_id, "shop", step, lognormal(rng, 3000, factor, median_ms=median), None))
        ids.append(run_id)
    load_samples(wh, tmp / f"{name}.parquet", rows)
    return ids


STEPS = {"list": 40.0, "view": 55.0, "buy": 70.0}


def test_a_set_of_repeats_is_judged_by_its_median_against_the_history(tmp_path: Path) -> None:
    """Ten single runs of history, then sets of 3 repeats gated as `gate latest` does: an unchanged set
    passes, a set with one step +10 % is WORSE on that step (judged against the history, by the median of 3),
    and neither of its runs becomes the automatic baseline of the next set."""
    from warehouse.analysis.baseline import resolve_baseline
    from warehouse.analysis.gate import gate_set, sets_to_gate

    wh = Warehouse.open(f"chdb://{tmp_path / 'warehouse'}")
    rng = np.random.default_rng(20261207)
    history = [seed_set(wh, tmp_path, rng, f"h{day:02d}", day, 1)[0] for day in range(1, 11)]
    same = seed_set(wh, tmp_path, rng, "same", 11, 3)
    slower = seed_set(wh, tmp_path, rng, "slower", 12, 3, {"view": 1.10})
    after = seed_set(wh, tmp_path, rng, "after", 13, 3)
    assert sets_to_gate(wh, [*history[-1:], *same]) == [history[-1:], same]
    passed = gate_set(wh, same)
    assert passed.exit_status == ExitStatus.OK and passed.run_ids == same, passed.to_dict()
    assert passed.comparison is not None and {s.mode for s in passed.comparison.rows} == {"history"}
    worse = gate_set(wh, slower)
    assert worse.exit_status == ExitStatus.REGRESSION
    assert [s.label for s in worse.regressions] == ["shop/view"], worse.to_dict()
    assert "median of 3 runs" in worse.regressions[0].reason
    assert [s.count for s in worse.regressions[0].b_runs] == [3000, 3000, 3000]
    base = resolve_baseline(wh, after[0], "auto")
    assert base.run_id == same[-1], base  # the WORSE set's runs are passed over
    assert gate_set(wh, after).exit_status == ExitStatus.OK
