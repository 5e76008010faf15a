"""The Grafana dashboard's queries run on a warehouse holding a real k6 run: each answers without error and
the per-step panels add up to the run's requests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.grafana import expand, grafana_targets
from warehouse.store import RunInfo, Warehouse

pytestmark = pytest.mark.integration


def test_every_grafana_panel_query_runs_on_a_real_run(tmp_path: Path, k6_output: Path) -> None:
    wh = Warehouse.open(f"chdb://{tmp_path / 'warehouse'}")
    result = wh.ingest(k6_output)
    answers = {}
    for title, target in grafana_targets():
        sql = expand(target["rawSql"], result.run_id, days=3650)
        answers[title] = wh.backend.query(sql)
    assert answers["Requests"] == [{"requests": result.rows}]
    assert sum(int(r["requests"]) for r in answers["Steps"]) == result.rows
    assert sum(float(r["rps"]) * 5 for r in answers["Requests per second"]) == pytest.approx(result.rows)
    assert [r["run_id"] for r in answers["Runs"]] == [result.run_id]
    assert answers["p95 per run of this spec (history)"]


def test_a_join_on_runs_current_counts_each_request_once_while_runs_holds_several_versions(
        tmp_path: Path, k6_output: Path) -> None:
    wh = Warehouse.open(f"chdb://{tmp_path / 'warehouse'}")
    result = wh.ingest(k6_output)
    run = wh.run(result.run_id)
    wh.backend.command("SYSTEM STOP MERGES runs")
    wh.finish_run(RunInfo(run.run_id, run.tool), "completed", "")  # a second version of the run's row, unmerged
    versions = wh.backend.query("SELECT count() AS n FROM runs WHERE run_id = {r:String}", {"r": result.run_id})
    assert versions[0]["n"] >= 2
    joined = wh.backend.query("SELECT count() AS n FROM requests AS q INNER JOIN runs_current AS r USING (run_id)")
    assert joined == [{"n": result.rows}]
    for title, target in grafana_targets():  # no panel reads runs without FINAL or the view
        assert not re.search(r"\b(FROM|JOIN)\s+runs\b(?!\s+FINAL)", target["rawSql"]), title
