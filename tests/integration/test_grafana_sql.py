"""The Grafana dashboard's queries run on a warehouse holding a real k6 run: each answers without error and
the per-step panels add up to the run's requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.grafana import expand, grafana_targets
from warehouse.store import Warehouse

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
