"""Gatling's own simulation.log files (tests/data/gatling, from Gatling's repository) in the warehouse, on both
backends: one row per request, one run per file, and the statistics Gatling's own tests state for them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.unit.test_gatling_layouts import grouped_binary_log
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

DATA = ROOT / "tests" / "data" / "gatling"
TEXT = ["gatling-2.0.log", "gatling-2.3.log", "gatling-3.3.log", "gatling-3.11.log"]


def _stddev(wh: Warehouse, run_id: str) -> float:
    rows = wh.backend.query("SELECT stddevSamp(duration_ms) AS s FROM requests WHERE run_id = {r:String}",
                            {"r": run_id})
    return float(rows[0]["s"])


@pytest.mark.parametrize("name", TEXT)
def test_text_logs_of_every_layout_give_gatlings_own_statistics(any_warehouse_url: str, name: str) -> None:
    """Gatling's LogFileReaderSpec: 8 requests, none KO, min 2000, max 9000, standard deviation 2138 (within 6 %),
    99th percentile 8860; the mean is 5000 (the file's eight response times)."""
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(DATA / name)
    assert (result.format, result.tool, result.rows, result.rejected) == ("gatling-log", "gatling", 8, 0)
    [step] = wh.step_stats(result.run_id)
    assert (step.journey, step.step) == ("testScenario", "Test Request")  # the scenario, as each layout records it
    assert (step.count, step.errors, step.min_ms, step.max_ms, step.avg_ms) == (8, 0, 2000, 9000, 5000)
    assert step.p99_ms == pytest.approx(8860)
    assert round(_stddev(wh, result.run_id)) == 2138
    run = wh.run(result.run_id)
    assert (run.tool, run.name, run.spec_name, run.started_at) == ("gatling", "run1", "MySimulation",
                                                                   "2014-07-31 15:54:27.250")
    assert run.tool_version == ""  # these files' RUN records name "2.0", the log format's version, not Gatling's
    assert "Gatling run description: interesting test run" in run.notes
    assert wh.ingest(DATA / name).duplicate


def test_binary_log_gives_gatlings_own_statistics(any_warehouse_url: str) -> None:
    """Gatling's LogFileReaderSpec (binary, main): 105 requests, one KO, min 87, max 368, 70th percentile 113."""
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(DATA / "gatling-3.13.bin.log")
    assert (result.format, result.tool, result.rows, result.rejected) == ("gatling-log", "gatling", 105, 0)
    steps = {s.step: s for s in wh.step_stats(result.run_id)}
    assert len(steps) == 11 and {s.journey for s in steps.values()} == {""}  # two scenarios, not told per request
    assert sum(s.count for s in steps.values()) == 105
    assert sum(s.errors for s in steps.values()) == 1 and steps["Post Redirect 1"].errors == 1
    assert min(s.min_ms for s in steps.values()) == 87
    assert max(s.max_ms for s in steps.values()) == 368
    quantile = wh.backend.query("SELECT quantileExactInclusive(0.7)(duration_ms) AS p FROM requests "
                                "WHERE run_id = {r:String}", {"r": result.run_id})
    assert float(quantile[0]["p"]) == 113
    [error] = wh.backend.query("SELECT error FROM requests WHERE run_id = {r:String} AND ok = 0", {"r": result.run_id})
    assert error["error"] == "status.find.is(201), but actually found 200"
    run = wh.run(result.run_id)
    assert (run.name, run.tool_version, run.started_at) == ("computerdatabase.ComputerDatabaseSimulation", "3.12.1",
                                                           "2024-11-04 21:58:51.501")
    assert "this run has 2 (Admins, Users)" in run.notes


def test_a_gzipped_log_is_the_same_file(any_warehouse_url: str, tmp_path: Path) -> None:
    import gzip

    packed = tmp_path / "simulation.log.gz"
    packed.write_bytes(gzip.compress((DATA / "gatling-3.13.bin.log").read_bytes()))
    wh = Warehouse.open(any_warehouse_url)
    first = wh.ingest(packed)
    assert (first.rows, first.rejected) == (105, 0)
    plain = tmp_path / "simulation.log"
    shutil.copy(DATA / "gatling-3.13.bin.log", plain)
    assert wh.ingest(plain).duplicate


def test_binary_groups_are_the_steps_path_commas_and_all(tmp_path: Path) -> None:
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    result = wh.ingest(grouped_binary_log(tmp_path / "simulation.log"))
    assert (result.rows, result.rejected) == (2, 0)
    [step] = wh.step_stats(result.run_id)
    assert (step.journey, step.step, step.count, step.errors) == ("buyers", "Caf\u00e9, bar / Pay\u20ac now / Pay", 2, 1)
