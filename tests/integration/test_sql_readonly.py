"""Ad-hoc SQL on both backends: the gate's admitted query runs read-only, a large answer is cut at the row
limit, a query that would run for minutes stops at the timeout, and the backend itself refuses writes
even from SQL that never went through the gate."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import make_warehouse_url
from tests.support.synthetic import fill
from warehouse.errors import WarehouseError
from warehouse.sqlgate import Admitted, Refused, limited
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

ROWS = 10_000_000


@pytest.fixture(scope="module", params=["chdb", "server"])
def big(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """A warehouse holding 10 million requests over 200 runs, written by ClickHouse itself."""
    url = make_warehouse_url(request.param, tmp_path_factory.mktemp("sql"), request)
    wh = Warehouse.open(url)
    fill(wh.backend, runs=200, requests=ROWS)
    return wh


def test_an_admitted_query_answers_like_the_warehouse(big: Warehouse) -> None:
    result = big.read_only_sql("SELECT tool, count() AS n FROM requests GROUP BY tool ORDER BY tool")
    assert result.rows == [{"tool": "jmeter", "n": ROWS // 2}, {"tool": "k6", "n": ROWS // 2}]
    assert result.columns == ["tool", "n"] and not result.truncated


def test_reading_ten_million_rows_is_cut_at_the_row_limit(big: Warehouse) -> None:
    result = big.read_only_sql("SELECT * FROM requests", row_limit=2000)
    assert len(result.rows) == 2000 and result.truncated
    assert result.columns[:3] == ["run_id", "batch", "ts"]


def test_a_query_that_would_run_for_minutes_stops_at_the_timeout(big: Warehouse) -> None:
    started = time.monotonic()
    with pytest.raises(WarehouseError, match="Timeout exceeded"):
        big.read_only_sql("SELECT count() FROM requests AS a CROSS JOIN requests AS b WHERE a.duration_ms < "
                          "b.duration_ms", timeout_s=1)
    assert time.monotonic() - started < 30  # a wide bound: the point is minutes of work were not done


def test_the_backend_refuses_writes_even_without_the_gate(big: Warehouse) -> None:
    for statement in ("INSERT INTO runs (run_id) VALUES ('sneaked')", "ALTER TABLE requests DELETE WHERE 1",
                      "DROP TABLE requests"):
        with pytest.raises(WarehouseError, match="readonly"):
            big.backend.query(limited(Admitted(statement, ())))
    assert big.backend.query("SELECT count() AS n FROM requests")[0]["n"] == ROWS
    assert not big.backend.query("SELECT run_id FROM runs WHERE run_id = 'sneaked'")


def test_a_refused_query_never_reaches_the_warehouse(big: Warehouse) -> None:
    with pytest.raises(Refused, match="one statement only"):
        big.read_only_sql("SELECT 1; DROP TABLE requests")
    assert big.backend.query("SELECT count() AS n FROM requests")[0]["n"] == ROWS


def test_tables_may_be_qualified_with_the_warehouse_database_only(big: Warehouse) -> None:
    database = big.backend.query("SELECT currentDatabase() AS d")[0]["d"]
    assert big.read_only_sql(f"SELECT count() AS n FROM {database}.runs").rows == [{"n": 200}]
    with pytest.raises(Refused, match="only perfhouse's own tables"):
        big.read_only_sql("SELECT name FROM system.databases")
