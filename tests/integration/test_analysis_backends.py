"""Regression analysis on both backends (embedded chdb and the ClickHouse server front): comparable runs,
baselines, compare with the history's noise, trends with change points, the gate's stored comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration.conftest import make_warehouse_url
from tests.support.samples import load_samples, lognormal, save_run
from warehouse.analysis import slo
from warehouse.analysis.baseline import pin, resolve_baseline, unpin
from warehouse.analysis.compare import CompareVerdict, compare, stored_comparisons
from warehouse.analysis.gate import gate
from warehouse.analysis.slo import Objective
from warehouse.analysis.trends import trends
from warehouse.engine import fingerprint as fp
from warehouse.errors import DataError, ExitStatus
from warehouse.ingest.history import RunMeta
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

RUNS = 30
SHIFT_AT = 20  # the 21st run is the first 30 % slower


def history(wh: Warehouse, tmp: Path) -> list[str]:
    """30 completed runs of one fingerprint, a day apart, two steps of 400 samples each, 3 % run-to-run
    noise and, from the 21st run on, 30 % slower; then an aborted run and a run whose SLO failed."""
    rng = np.random.default_rng(30)
    ids, rows = [], []
    for i in range(RUNS):
        run_id = f"run-{i:02d}"
        ids.append(run_id)
        save_run(wh, run_id, f"2026-01-{i + 1:02d} 00:00:00.000")
        scale = (1 + 0.03 * rng.standard_normal()) * (1.3 if i >= SHIFT_AT else 1.0)
        for step in ("list", "view"):
            rows.append((run_id, "browse", step, lognormal(rng, 400, scale), None))
    save_run(wh, "aborted", "2026-02-01 00:00:00.000", status="aborted")
    save_run(wh, "slo-failed", "2026-02-02 00:00:00.000")
    save_run(wh, "candidate", "2026-02-03 00:00:00.000")
    for run_id in ("aborted", "slo-failed", "candidate"):
        for step in ("list", "view"):
            rows.append((run_id, "browse", step, lognormal(rng, 400, 1.3), None))
    load_samples(wh, tmp / "history.parquet", rows)
    slo.evaluate(wh.backend, "slo-failed", [Objective("p95", 1.0)])
    slo.evaluate(wh.backend, "candidate", [Objective("p95", 10_000.0)])
    return ids


@pytest.fixture
def warehouse(any_warehouse_url: str, tmp_path: Path) -> tuple[Warehouse, list[str]]:
    wh = Warehouse.open(any_warehouse_url)
    return wh, history(wh, tmp_path)


def test_automatic_baseline_is_the_latest_completed_run_whose_slos_held(
    warehouse: tuple[Warehouse, list[str]],
) -> None:
    wh, ids = warehouse
    chosen = resolve_baseline(wh, "candidate")
    assert (chosen.run_id, chosen.how) == (ids[-1], "auto")  # not the aborted run, not the failed one
    assert resolve_baseline(wh, ids[5], "auto").run_id == ids[4]
    with pytest.raises(DataError, match="no earlier completed run"):
        resolve_baseline(wh, ids[0])
    pin(wh, ids[3], "before the slowdown")
    assert resolve_baseline(wh, "candidate") == resolve_baseline(wh, "candidate", "pinned")
    assert resolve_baseline(wh, "candidate").run_id == ids[3]
    assert resolve_baseline(wh, "candidate", "auto").run_id == ids[-1]
    unpin(wh, "candidate")  # by a run of the fingerprint
    assert resolve_baseline(wh, "candidate").how == "auto"


def test_compare_judges_by_the_historys_noise(warehouse: tuple[Warehouse, list[str]]) -> None:
    wh, ids = warehouse
    same = compare(wh, "candidate")  # against the latest passed run: both after the slowdown
    assert same.how == "auto" and same.a.run_id == ids[-1]
    assert all(s.noise.runs == RUNS and s.noise.sigma is not None for s in same.steps)
    assert not any("no history" in n for n in same.notes)
    assert {s.verdict for s in same.steps} <= {CompareVerdict.SAME, CompareVerdict.INCONCLUSIVE}
    slower = compare(wh, ids[0], "candidate")  # named: before the slowdown against after it
    assert {s.verdict for s in slower.steps} == {CompareVerdict.WORSE} and slower.verdict == CompareVerdict.WORSE
    assert slower.overall.verdict == CompareVerdict.WORSE
    faster = compare(wh, "candidate", ids[0])  # B is the first run: no history before it, only the wide floor
    assert {s.mode for s in faster.rows} == {"wide"} and any("no history" in n for n in faster.notes)
    assert CompareVerdict.WORSE not in {s.verdict for s in faster.rows}
    deltas = slower.steps[0].deltas()
    assert deltas["p95_ms"].relative == pytest.approx(deltas["p95_ms"].b / deltas["p95_ms"].a - 1)
    assert deltas["error_rate"].to_dict() == {"a": 0.0, "b": 0.0, "absolute": 0.0, "relative": None}


def test_trends_find_the_slowdown_at_its_run(warehouse: tuple[Warehouse, list[str]]) -> None:
    wh, ids = warehouse
    found = trends(wh.backend, "p95", spec="synthetic")
    labels = [s.label for s in found.series]
    assert labels == ["overall", "browse/list", "browse/view"]
    for series in found.series:
        assert [p.run_id for p in series.points] == [*ids, "slo-failed", "candidate"]  # completed runs, oldest first
        (change,) = series.changes
        assert abs(change.index - SHIFT_AT) <= 1 and change.direction == "up" and change.worse
        assert change.run_id == ids[change.index] and 0.15 < change.change < 0.45 and change.pvalue < 1e-4
    only = trends(wh.backend, "error_rate", journey="browse", step="view")
    assert [s.label for s in only.series] == ["browse/view"] and not only.series[0].changes
    with pytest.raises(DataError, match="unknown trend metric"):
        trends(wh.backend, "p42")


def test_gate_stores_its_comparison(warehouse: tuple[Warehouse, list[str]]) -> None:
    wh, ids = warehouse
    result = gate(wh, "candidate", ids[0])
    assert result.exit_status == ExitStatus.REGRESSION and result.verdict == "PASSED"
    stored = stored_comparisons(wh.backend, "candidate", ids[0])
    assert [(r.journey, r.step, r.verdict) for r in stored] == [
        ("", "", "WORSE"), ("browse", "list", "WORSE"), ("browse", "view", "WORSE")]
    assert gate(wh, "aborted").exit_status == ExitStatus.RUN_INCOMPLETE
    assert gate(wh, "slo-failed").exit_status == ExitStatus.SLO_FAILED


def test_group_compare_puts_k6_against_jmeter_and_says_how_they_differ(any_warehouse_url: str,
                                                                        tmp_path: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    rng = np.random.default_rng(1)
    save_run(wh, "jm", "2026-03-01 00:00:01.000", fingerprint="fp-jm", tool="jmeter", group_id="g-1")
    save_run(wh, "k6", "2026-03-01 00:00:00.000", fingerprint="fp-k6", tool="k6", group_id="g-1")
    save_run(wh, "alone", "2026-03-02 00:00:00.000", group_id="g-2")
    load_samples(wh, tmp_path / "g.parquet", [(r, "j", "s", lognormal(rng, 500), None) for r in ("jm", "k6")])
    result = compare(wh, group="latest")
    assert (result.a.run_id, result.b.run_id, result.how) == ("k6", "jm", "group")
    assert any("the tools measure differently" in n for n in result.notes)
    assert any("http_req_duration" in n for n in result.notes)
    with pytest.raises(DataError):
        compare(wh, group="g-2")


def test_an_imported_run_gets_a_fingerprint_from_its_metadata_and_steps(any_warehouse_url: str,
                                                                         k6_output: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(k6_output, meta=RunMeta(name="probe", environment="staging", profile="nightly",
                                               labels={"runner": "docker", "team": "shop"}))
    run = wh.run(result.run_id)
    steps = wh.backend.query("SELECT DISTINCT journey, step FROM requests WHERE run_id = {r:String} "
                             "ORDER BY journey, step", {"r": result.run_id})
    shape = fp.structure_hash(fp.StepShape(r["journey"], r["step"]) for r in steps)
    expected = fp.fingerprint("probe", shape, "nightly", "k6", "staging", {"runner": "docker"})
    assert run.fingerprint == expected and run.spec_name == "probe" and run.group_id == ""
    assert fp.fingerprint("probe", shape, "nightly", "k6", "staging", {"runner": "docker", "team": "x"}) == expected
    assert fp.fingerprint("probe", shape, "nightly", "k6", "staging", {"runner": "local"}) != expected


def test_both_backends_give_the_same_comparison_and_trends(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    seen: list[dict[str, Any]] = []
    for kind in ("chdb", "server"):
        (tmp_path / kind).mkdir()
        wh = Warehouse.open(make_warehouse_url(kind, tmp_path / kind, request))
        ids = history(wh, tmp_path / kind)
        seen.append({"compare": compare(wh, ids[0], "candidate").to_dict(),
                     "auto": compare(wh, "candidate").to_dict(),
                     "trends": trends(wh.backend, "p95").to_dict(),
                     "rps": trends(wh.backend, "rps").to_dict()})
    assert seen[0] == seen[1]
