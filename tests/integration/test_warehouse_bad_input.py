"""Bad input: the valid rows are kept, the rejected ones counted with their line numbers, on both backends;
and a killed ingest leaves no partial rows and no run behind."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from warehouse.engine.backends import Backend, open_backend
from warehouse.errors import IngestError
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def count(wh: Warehouse, table: str) -> int:
    return int(wh.backend.query(f"SELECT count() AS n FROM {table}")[0]["n"])


def full_counts(wh: Warehouse, path: Path) -> tuple[int, int]:
    result = wh.ingest(path)
    return result.rows, result.points


def test_truncated_last_line_is_counted_not_lost(any_warehouse_url: str, k6_output: Path, tmp_path: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    rows, points = full_counts(wh, k6_output)
    lines = lines_of(k6_output)
    cut = tmp_path / "cut.json"
    cut.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    result = wh.ingest(cut)
    assert result.rejected == 1 and result.samples[0].line == len(lines)
    assert result.samples[0].reason == "the last line was cut short"
    assert result.points == points - 1 and rows - 1 <= result.rows <= rows


def test_garbage_line_in_the_middle_is_rejected_with_its_line_number(
    any_warehouse_url: str, k6_output: Path, tmp_path: Path
) -> None:
    wh = Warehouse.open(any_warehouse_url)
    rows, points = full_counts(wh, k6_output)
    lines = lines_of(k6_output)
    bad = tmp_path / "garbage.json"
    bad.write_bytes(b"".join([*lines[:6], b"\x00garbage {not json\n", b'{"type": "Nope"}\n', *lines[6:]]))
    result = wh.ingest(bad)
    assert (result.rows, result.points, result.rejected) == (rows, points, 2)
    assert [(r.line, r.reason) for r in result.samples] == [
        (7, "not valid JSON (a truncated or garbled line)"),
        (8, "not a k6 Point or Metric line"),
    ]


def test_points_without_a_time_or_a_number_are_rejected_and_the_rest_kept(
    any_warehouse_url: str, k6_output: Path, tmp_path: Path
) -> None:
    wh = Warehouse.open(any_warehouse_url)
    rows, points = full_counts(wh, k6_output)
    lines = lines_of(k6_output)
    point = json.loads(next(line for line in lines if b'"type":"Point"' in line))
    no_time = {**point, "data": {**point["data"], "time": "yesterday"}}
    text_value = {**point, "data": {**point["data"], "value": "fast"}}
    bad = tmp_path / "points.json"
    bad.write_bytes(b"".join([*lines[:3], json.dumps(no_time).encode() + b"\n", json.dumps(text_value).encode() + b"\n",
                              b"\n", *lines[3:]]))
    result = wh.ingest(bad)
    assert (result.rows, result.points, result.rejected) == (rows, points, 2)
    assert [(r.line, r.reason) for r in result.samples] == [
        (4, "a Point without a valid data.time"),
        (5, "a Point whose data.value is not a number"),
    ]


def test_a_clean_k6_file_is_read_in_one_pass(
    any_warehouse_url: str, k6_output: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The strict pass takes a clean file whole: no lenient pass, no line-by-line reject pass."""
    from warehouse.ingest import k6_json

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a clean file went down the path for bad files")

    monkeypatch.setattr(k6_json, "stage_lines", refuse)
    monkeypatch.setattr(k6_json, "count_rejects", refuse)
    result = Warehouse.open(any_warehouse_url).ingest(k6_output)
    assert result.rejected == 0 and result.rows > 10 and result.points > result.rows


def test_jtl_wrong_column_counts_are_rejected(any_warehouse_url: str, jtl_output: Path, tmp_path: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    lines = lines_of(jtl_output)
    short = b",".join(lines[0].rstrip(b"\n").split(b",")[:10]) + b"\n"
    long = lines[1].rstrip(b"\n") + b",x,y\n"
    bad = tmp_path / "columns.jtl"
    bad.write_bytes(b"".join([lines[0], short, *lines[1:3], long, *lines[3:]]))
    result = wh.ingest(bad)
    assert result.rows == 12 and result.rejected == 2
    assert [(r.line, r.reason) for r in result.samples] == [
        (2, "10 columns, expected 12"),
        (5, "more than 12 columns, expected 12"),
    ]


def test_jtl_unbalanced_quote_keeps_the_other_rows(any_warehouse_url: str, jtl_output: Path, tmp_path: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    lines = lines_of(jtl_output)
    bad = tmp_path / "quote.jtl"
    bad.write_bytes(b"".join([*lines[:4], b'"unbalanced,quote\n', *lines[4:-1], lines[-1][:20]]))
    result = wh.ingest(bad)
    assert result.rows == 11 and result.rejected == 2
    assert [r.line for r in result.samples] == [5, 13]
    assert result.samples[1].reason == "the last line was cut short"


def test_empty_files_are_refused(any_warehouse_url: str, tmp_path: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    empty, blank, packed = tmp_path / "empty.json", tmp_path / "blank.jtl", tmp_path / "empty.json.gz"
    empty.write_bytes(b"")
    blank.write_bytes(b"\n\n")
    packed.write_bytes(gzip.compress(b""))
    for path in (empty, blank, packed):
        with pytest.raises(IngestError, match="empty"):
            wh.ingest(path)
    with pytest.raises(IngestError, match="empty"):
        wh.ingest(blank, fmt="jtl-csv")
    assert count(wh, "requests") == 0 and wh.runs() == []


def test_a_file_of_the_other_tool_given_with_format_is_refused(
    any_warehouse_url: str, k6_output: Path, jtl_output: Path
) -> None:
    wh = Warehouse.open(any_warehouse_url)
    with pytest.raises(IngestError, match=r"--format jtl-csv given, but the file is k6-json"):
        wh.ingest(k6_output, fmt="jtl-csv")
    with pytest.raises(IngestError, match=r"--format k6-json given, but the file is jtl-csv"):
        wh.ingest(jtl_output, fmt="k6-json")
    assert count(wh, "requests") == 0 and count(wh, "k6_points") == 0 and wh.runs() == []


def test_gzip_cut_short_keeps_what_decompresses(any_warehouse_url: str, k6_output: Path, tmp_path: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    packed = gzip.compress(k6_output.read_bytes())
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(packed[: len(packed) * 2 // 3])
    prefix = zlib.decompressobj(wbits=47).decompress(cut.read_bytes())
    complete = prefix.count(b"\n")
    result = wh.ingest(cut)
    assert 0 < result.points <= complete and result.rows > 0
    assert result.points == sum(b'"type":"Point"' in line for line in prefix.splitlines(keepends=True)
                                if line.endswith(b"\n"))
    assert result.samples[-1].reason.startswith("the gzip stream is cut short")
    assert result.samples[-1].line == complete + 1
    partial = not prefix.endswith(b"\n")
    assert result.rejected == 1 + partial


# The child ingests into the warehouse and stops for good right after the first statement matching its third
# argument: the warehouse then holds exactly what a crash there leaves. Its fourth says whether the (small) file
# may load straight into the warehouse tables, or is staged as a large one is.
CHILD = """
import re, sys, time
import warehouse.ingest.batch
from warehouse.store import Warehouse
if sys.argv[4] != "direct":
    warehouse.ingest.batch.DIRECT_MAX_BYTES = 0
wh = Warehouse.open(sys.argv[1])
command = wh.backend.command
def pausing(sql, params=None):
    command(sql, params)
    if re.match(sys.argv[3], sql.lstrip()):
        print("PAUSED", flush=True)
        time.sleep(3600)
wh.backend.command = pausing
wh.ingest(sys.argv[2])
"""
# Where the child dies: while loading (the batch's points and now its requests are in its staging tables),
# once its rows are attached to the warehouse tables but before the batch is recorded as done, or, loading the
# small file straight into the warehouse tables, once its requests are in but before the done record.
STOPS = {
    "loading": (r"INSERT INTO stage_[0-9a-f]{32}_requests ", "staging", "staged"),
    "attached": (r"ALTER TABLE requests ATTACH PARTITION ", "attaching", "staged"),
    "direct": (r"INSERT INTO requests ", "attaching", "direct"),
}


def staged_rows(backend: Backend) -> int:
    tables = backend.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, 'stage_') "
        "AND endsWith(name, '_k6_points')")
    return sum(int(backend.query(f"SELECT count() AS n FROM {t['name']}")[0]["n"]) for t in tables)


@pytest.mark.parametrize("stop", sorted(STOPS))
def test_killed_ingest_leaves_no_partial_rows_and_no_run(any_warehouse_url: str, k6_output: Path,
                                                         stop: str) -> None:
    Warehouse.open(any_warehouse_url)
    statement, state, path = STOPS[stop]
    child = subprocess.Popen([sys.executable, "-c", CHILD, any_warehouse_url, str(k6_output), statement, path],
                             stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2])
    assert child.stdout is not None
    try:
        assert child.stdout.readline() == b"PAUSED\n"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    backend = open_backend(any_warehouse_url, lock_timeout_s=30)  # no recovery yet: the crash's leftovers
    with backend.session():
        points = int(backend.query("SELECT count() AS n FROM k6_points")[0]["n"])
        requests = int(backend.query("SELECT count() AS n FROM requests")[0]["n"])
        if stop == "loading":  # readers see nothing of a batch still loading
            assert points == requests == 0 and staged_rows(backend) > 0
        else:
            assert points > 0 and requests > 0
        assert backend.query("SELECT state FROM ingested_files FINAL") == [{"state": state}]
    wh = Warehouse.open(any_warehouse_url)
    assert count(wh, "k6_points") == count(wh, "requests") == 0 and wh.runs() == []
    assert wh.backend.query("SELECT state FROM ingested_files FINAL") == [{"state": "failed"}]
    assert wh.backend.query(
        "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name LIKE 'stage%'"
    )[0]["n"] == 0
    again = wh.ingest(k6_output)  # the file was never ingested: a retry goes through in full
    assert not again.duplicate and again.points > 0 and len(wh.runs()) == 1


def test_requests_sharing_timestamp_and_tags_are_all_kept(any_warehouse_url: str, k6_output: Path,
                                                          tmp_path: Path) -> None:
    # Two VUs that start together can write identical timestamps and tags: both requests must count.
    lines = k6_output.read_bytes().splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if b'"metric":"http_reqs","type":"Point"' in line)
    time = json.loads(lines[first])["data"]["time"]
    same = [line for line in lines if b'"type":"Point"' in line and json.loads(line)["data"]["time"] == time
            and json.loads(line)["metric"].startswith("http_req")]
    twin = tmp_path / "twin.json"
    twin.write_bytes(b"".join(lines) + b"".join(same))
    wh = Warehouse.open(any_warehouse_url)
    single = wh.ingest(k6_output).rows
    result = wh.ingest(twin)
    assert result.rows == single + 1 and result.rejected == 0
