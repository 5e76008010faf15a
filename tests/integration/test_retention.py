"""Retention of raw k6 points: a TTL on k6_points, set from the CLI, read back from system.tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from warehouse.errors import WarehouseError
from warehouse.store import Warehouse, parse_retention

pytestmark = pytest.mark.integration


def engine(wh: Warehouse, table: str) -> str:
    rows = wh.backend.query(
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {t:String}", {"t": table}
    )
    return str(rows[0]["engine_full"])


def test_raw_points_ttl_is_set_on_the_table_and_removed_again(any_warehouse_url: str) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["--warehouse", any_warehouse_url, "retention", "--raw-points", "30d"])
    assert out.exit_code == 0, out.output
    assert "kept 30 days" in out.output
    wh = Warehouse.open(any_warehouse_url)
    assert "TTL toDateTime(ts) + toIntervalDay(30)" in engine(wh, "k6_points")
    assert wh.raw_points_ttl() == 30
    for table in ("requests", "runs", "aggregates"):
        assert "TTL" not in engine(wh, table)  # requests and runs are kept
    wh.set_raw_points_ttl(parse_retention("2w"))
    assert "toIntervalDay(14)" in engine(wh, "k6_points")
    out = runner.invoke(main, ["--warehouse", any_warehouse_url, "retention", "--raw-points", "off", "--json"])
    assert out.exit_code == 0 and out.output.strip() == '{"raw_points_days": null}'
    assert "TTL" not in engine(wh, "k6_points")


def test_points_older_than_the_ttl_go_and_requests_stay(tmp_path: Path, k6_output: Path) -> None:
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    result = wh.ingest(k6_output)
    wh.backend.command(  # the same points as if written three days ago
        "INSERT INTO k6_points SELECT * REPLACE (ts - INTERVAL 3 DAY AS ts, 'old' AS run_id) FROM k6_points"
    )
    wh.set_raw_points_ttl(1)
    wh.backend.command("OPTIMIZE TABLE k6_points FINAL")
    left = {r["run_id"]: r["n"] for r in wh.backend.query("SELECT run_id, count() AS n FROM k6_points GROUP BY run_id")}
    assert left == {result.run_id: result.points}
    assert wh.totals(result.run_id)["count"] == result.rows > 0


@pytest.mark.parametrize("text", ["30", "1y", "-3d", "0d"])
def test_a_retention_that_is_not_a_duration_is_refused(text: str, tmp_path: Path) -> None:
    with pytest.raises(WarehouseError):
        Warehouse.open(f"chdb://{tmp_path / 'wh'}").set_raw_points_ttl(parse_retention(text))
