"""A file's rows appear all at once or not at all: each batch loads into its own staging tables and is
attached to the warehouse tables partition by partition, on both backends."""

from __future__ import annotations

import datetime as dt
import re
import threading
from pathlib import Path

import pytest

from tests.integration.conftest import make_warehouse_url
from warehouse.engine.backends import ServerBackend
from warehouse.errors import IngestError, WarehouseError
from warehouse.ingest import batch, k6_json
from warehouse.ingest.sql import BOUNDED
from warehouse.store import RunInfo, Warehouse

pytestmark = pytest.mark.integration

_TIME = re.compile(rb'"time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)"')


def k6_copies(k6_output: Path, start: str, copies: int, gap_s: int) -> bytes:
    """k6_output's points `copies` times over, the first copy's first point at `start` (UTC) and each copy
    `gap_s` seconds after the one before; the sub-second digits and everything else stay as k6 wrote them."""
    lines = k6_output.read_bytes().splitlines(keepends=True)
    origin = _moment(next(m for line in lines if (m := _TIME.search(line))))
    base = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
    out = [line for line in lines if not _TIME.search(line)]  # the Metric lines, once
    for copy in range(copies):
        shift = base - origin + dt.timedelta(seconds=copy * gap_s)

        def moved(m: re.Match[bytes], shift: dt.timedelta = shift) -> bytes:
            moment = (_moment(m) + shift).strftime("%Y-%m-%dT%H:%M:%S").encode()
            return b'"time":"' + moment + (m[2] or b"") + b'Z"'

        out.extend(_TIME.sub(moved, line) for line in lines if _TIME.search(line))
    return b"".join(out)


def _moment(m: re.Match[bytes]) -> dt.datetime:
    return dt.datetime.fromisoformat((m[1] + (b"+00:00" if m[3] == b"Z" else m[3])).decode())


def counts(wh: Warehouse, run_id: str = "") -> tuple[int, int]:
    row = wh.backend.query(
        "SELECT (SELECT count() FROM requests WHERE run_id = {r:String} OR {r:String} = '') AS requests, "
        "(SELECT count() FROM k6_points WHERE run_id = {r:String} OR {r:String} = '') AS points",
        {"r": run_id},
    )[0]
    return int(row["requests"]), int(row["points"])


def stage_tables(wh: Warehouse) -> list[str]:
    rows = wh.backend.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, 'stage_')")
    return [str(r["name"]) for r in rows]


def test_a_concurrent_reader_sees_none_or_all_of_a_batch_on_a_server(
    tmp_path: Path, request: pytest.FixtureRequest, k6_output: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader polling a run's counts while a large k6 file is ingested sees 0 or the final count of each
    table, never a part. Small insert blocks and request slices make the load many parts and statements, as
    a file of millions of lines would. The test front runs one statement at a time, so a reader here could
    catch a batch between its statements; a real server would also show each part as it is written."""
    url = make_warehouse_url("server", tmp_path, request)
    wh = Warehouse.open(url)
    big = tmp_path / "big.json"
    big.write_bytes(k6_copies(k6_output, "2025-03-10T00:00:00Z", copies=40, gap_s=3))
    assert big.read_bytes().count(b"\n") > 30_000
    for name in ("max_insert_block_size", "min_insert_block_size_rows", "max_block_size"):
        monkeypatch.setitem(BOUNDED, name, 1000)
    monkeypatch.setattr(k6_json, "REQUESTS_PER_SLICE", 200)
    loads, command = [], wh.backend.command

    def counting(sql: str, params: dict[str, object] | None = None) -> None:
        if re.match(r"\s*INSERT INTO stage_\w+_requests ", sql):
            loads.append(sql)
        command(sql, params)

    monkeypatch.setattr(wh.backend, "command", counting)
    reader, seen, done = Warehouse(ServerBackend(url)), [], threading.Event()

    def poll() -> None:
        while not done.is_set():
            seen.append(counts(reader, "concurrent"))

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        result = wh.ingest(big, RunInfo("concurrent", "k6"))
    finally:
        done.set()
        thread.join()
    assert len(loads) > 10, "the requests were written in many statements"
    assert len(seen) > 5, "the reader polled while the file loaded"
    final = (result.rows, result.points)
    assert counts(reader, "concurrent") == final and result.rows > 3000 and result.rejected == 0
    assert {requests for requests, _ in seen} <= {0, final[0]}
    assert {points for _, points in seen} <= {0, final[1]}
    assert stage_tables(wh) == []


def test_a_file_spanning_a_month_boundary_is_attached_whole(any_warehouse_url: str, k6_output: Path,
                                                            tmp_path: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    single = wh.ingest(k6_output)
    across = tmp_path / "across.json"
    across.write_bytes(k6_copies(k6_output, "2025-01-31T23:59:57Z", copies=3, gap_s=3))
    result = wh.ingest(across, RunInfo("across", "k6"))
    assert (result.rows, result.points) == (3 * single.rows, 3 * single.points)
    assert counts(wh, "across") == (result.rows, result.points)
    months = wh.backend.query(
        "SELECT groupUniqArray(toYYYYMM(ts)) AS m FROM requests WHERE run_id = 'across'")[0]["m"]
    assert sorted(months) == [202501, 202502]
    assert stage_tables(wh) == []


def test_a_batch_failing_after_its_rows_were_attached_is_deleted(
    any_warehouse_url: str, k6_output: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = Warehouse.open(any_warehouse_url)
    record = batch._record

    def failing(*args: object) -> None:
        if args[5] == "done":
            assert counts(wh) != (0, 0), "the rows are attached by now"
            raise WarehouseError("the warehouse went away")
        record(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(batch, "_record", failing)
    with pytest.raises(WarehouseError, match="went away"):
        wh.ingest(k6_output)
    monkeypatch.undo()
    assert counts(wh) == (0, 0) and wh.runs() == [] and stage_tables(wh) == []
    assert wh.backend.query("SELECT state FROM ingested_files FINAL") == [{"state": "failed"}]
    assert not wh.ingest(k6_output).duplicate


def test_a_failed_load_leaves_the_warehouse_tables_alone(
    any_warehouse_url: str, k6_output: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load that fails drops its staging tables; nothing is deleted from the warehouse tables."""
    wh = Warehouse.open(any_warehouse_url)
    kept = wh.ingest(k6_output)
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b'{"type":"Point","metric":"x","data":{"time":"never","value":1}}\n' * 3)
    statements: list[str] = []
    command = wh.backend.command

    def logging(sql: str, params: dict[str, object] | None = None) -> None:
        statements.append(sql)
        command(sql, params)

    monkeypatch.setattr(wh.backend, "command", logging)
    with pytest.raises(IngestError, match="no valid k6-json rows"):
        wh.ingest(garbage)
    assert not [s for s in statements if s.lstrip().startswith(("DELETE", "ALTER"))]
    assert counts(wh) == (kept.rows, kept.points) and stage_tables(wh) == []


def test_staging_tables_of_a_finished_batch_are_dropped_at_open(
    any_warehouse_url: str, k6_output: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process stopped between recording its batch done and dropping its staging tables leaves them
    behind: the next open drops them, and the batch's rows stay. (The file is staged as a large one is.)"""
    wh = Warehouse.open(any_warehouse_url)
    monkeypatch.setattr(batch, "DIRECT_MAX_BYTES", 0)
    monkeypatch.setattr(batch, "drop_stage", lambda backend, batch: None)
    result = wh.ingest(k6_output)
    monkeypatch.undo()
    assert len(stage_tables(wh)) >= 3
    wh = Warehouse.open(any_warehouse_url)
    assert stage_tables(wh) == [] and counts(wh) == (result.rows, result.points)
