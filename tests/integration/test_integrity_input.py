"""Input as it comes from the field: bytes that are not UTF-8, a byte order mark, CR line breaks, a damaged
gzip, a cell that reads `\\N`, standard input and pipes, directories without results, binary files; and the
same results gzipped are the same file."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from tests.integration.conftest import make_warehouse_url
from warehouse.errors import IngestError
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

HEADER_5 = ("timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,failureMessage,bytes,"
            "sentBytes,grpThreads,allThreads,URL,Latency,IdleTime,Connect\n")


def perfhouse(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "orchestrator", *args], input=stdin, capture_output=True,
                          timeout=300)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def latin1(jtl_output: Path, tmp_path: Path) -> Path:
    """JMeter's own JTL with one step named in latin-1 (JMeter on Windows) and one bad record holding the
    same byte."""
    lines = jtl_output.read_bytes().splitlines(keepends=True)
    label = lines[0].split(b",")[2]
    named = [i for i, line in enumerate(lines) if b"," + label + b"," in line][1::2]  # every other sample of it
    out = [line.replace(b"," + label + b",", b",caf\xe9 cr\xe8me,") if i in named else line
           for i, line in enumerate(lines)]
    out.append(lines[0].replace(b"," + label + b",", b",na\xefve,").replace(b",", b",x", 1))  # elapsed is no number
    path = tmp_path / "latin1.jtl"
    path.write_bytes(b"".join(out))
    return path


@pytest.mark.parametrize("kind", ["chdb", "server"])
def test_a_latin1_jtl_ingests_and_reports(kind: str, jtl_output: Path, tmp_path: Path,
                                          request: pytest.FixtureRequest) -> None:
    url = make_warehouse_url(kind, tmp_path, request)
    path = latin1(jtl_output, tmp_path)
    done = perfhouse("--warehouse", url, "ingest", str(path))
    assert done.returncode == 7 and "Traceback" not in done.stderr, done.stderr  # 7: a rejected line
    assert "rejected: elapsed is not a number" in done.stderr and "na\ufffdve" in done.stderr
    lines = len(jtl_output.read_bytes().splitlines())
    assert f"{lines} requests, 1 rejected lines" in done.stdout
    report = perfhouse("--warehouse", url, "report", "latest")
    assert report.returncode == 0 and "Traceback" not in report.stderr, report.stderr
    assert "caf\ufffd cr\ufffdme" in report.stdout
    stored = Warehouse.open(url).backend.query("SELECT count() AS n FROM requests WHERE step = {s:String}",
                                               {"s": "caf\ufffd cr\ufffdme"})
    assert stored == [{"n": 0}], "kept as written, shown with replacement characters"


def test_the_dashboard_run_page_shows_a_latin1_run(jtl_output: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"chdb://{tmp_path / 'wh'}"
    result = Warehouse.open(url).ingest(latin1(jtl_output, tmp_path))
    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv("PERFHOUSE_WAREHOUSE", url)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.query_params.update({"page": "run", "run": result.run_id})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    cells = {str(v) for frame in at.dataframe for v in frame.value.to_numpy().ravel()}
    assert any(cell.endswith("/ caf\ufffd cr\ufffdme") for cell in cells), cells


@pytest.mark.parametrize("kind", ["k6-json", "k6-csv", "jtl-csv", "jtl-xml"])
def test_a_utf8_byte_order_mark_is_read_past(kind: str, any_warehouse_url: str, k6_output: Path,
                                             jtl_output: Path, tmp_path: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    if kind == "k6-json":
        plain = k6_output
    elif kind == "jtl-csv":
        plain = jtl_output
    elif kind == "k6-csv":
        plain = tmp_path / "k6.csv"
        plain.write_text("metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,method,"
                         "name,proto,scenario,status,url,extra_tags,metadata\n"
                         "http_req_duration,1700000000,12.5,,,,true,,GET,http://x/a,HTTP/1.1,default,200,"
                         "http://x/a,,\n")
    else:
        plain = tmp_path / "r.xml"
        plain.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<testResults version="1.2">\n'
                         '<httpSample t="12" lt="5" ts="1700000000000" s="true" lb="home" rc="200" rm="OK" '
                         'tn="Users 1-1" by="100"/>\n</testResults>\n')
    marked = tmp_path / f"bom-{plain.name}"
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    expected = Warehouse(wh.backend).ingest(plain) if kind != "jtl-xml" else None
    result = wh.ingest(marked)
    assert not result.duplicate and result.rejected == 0 and result.rows + result.points > 0
    if expected is not None:
        assert (result.rows, result.points) == (expected.rows, expected.points)
        assert wh.step_stats(result.run_id) == wh.step_stats(expected.run_id)


def test_cr_line_breaks_are_read_as_lines(any_warehouse_url: str, jtl_output: Path, tmp_path: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    mac = tmp_path / "mac.jtl"
    mac.write_bytes(jtl_output.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r"))
    result = wh.ingest(mac)
    assert result.rows == len(jtl_output.read_bytes().splitlines()) and result.rejected == 0
    assert any("CR alone" in note for note in result.notes)


def test_a_gzip_damaged_in_the_middle_keeps_what_precedes_the_damage(any_warehouse_url: str, tmp_path: Path
                                                                    ) -> None:
    """Two gzip members, the second's header overwritten: every record of the first is kept, the break is
    counted as a rejected line, and the note says at which compressed byte it is."""
    wh = Warehouse.open(any_warehouse_url)
    first = HEADER_5 + "".join(f"{1700000000000 + i},{i % 90 + 1},home,200,OK,Users 1-1,text,true,,10,1,1,1,"
                               f"http://x/,1,0,0\n" for i in range(30_000))
    second = "".join(f"{1700000100000 + i},7,cart,200,OK,Users 1-1,text,true,,10,1,1,1,http://x/,1,0,0\n"
                     for i in range(5000))
    head = gzip.compress(first.encode())
    damaged = bytearray(gzip.compress(second.encode()))
    damaged[:16] = b"\xff" * 16
    path = tmp_path / "damaged.jtl.gz"
    path.write_bytes(head + bytes(damaged))
    result = wh.ingest(path)
    assert result.rows == 30_000 and result.rejected == 1
    assert result.samples[-1].line == 30_002 and "gzip data is corrupt" in result.samples[-1].reason
    assert any(f"near byte {len(head)} of the compressed file" in note for note in result.notes)
    assert wh.totals(result.run_id)["count"] == 30_000


def test_a_jtl_cell_that_reads_backslash_n_is_text(any_warehouse_url: str, tmp_path: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    path = tmp_path / "nulls.jtl"
    path.write_text(HEADER_5
                    + "1700000000000,12,\\N,200,\\N,Users 1-1,text,true,,10,1,1,1,http://x/,1,0,0\n"
                    + "1700000000001,12,home,500,\\N,Users 1-1,text,false,\\N,10,1,1,1,http://x/,1,0,0\n"
                    + "1700000000002,12,home,200,OK,Users 1-1,text,true,,10,1,1,1,http://x/,1,0,0\n")
    bad = tmp_path / "bad.jtl"  # the checked path (a bad record elsewhere) reads it the same way
    bad.write_text(path.read_text() + "not a record\n")
    for source in (path, bad):
        result = wh.ingest(source)
        assert result.rows == 3 and result.rejected == (source == bad)
        assert {s.step for s in wh.step_stats(result.run_id)} == {"\\N", "home"}
        # the 500 is a request error whose message is `\N`, and its failure message `\N` names a failed check
        assert sorted((e.kind, e.error) for e in wh.errors(result.run_id)) == [
            ("failed check", "\\N"), ("request error", "\\N")]


def test_a_jtl_time_that_wraps_past_int64_into_range_is_rejected(any_warehouse_url: str, tmp_path: Path) -> None:
    """2**64 + a time of 2023 wraps, as a 64-bit integer, to that time: the record is rejected, on the one strict
    pass of a file otherwise clean as on the checked pass, never stored as a request of 2023."""
    wh = Warehouse.open(any_warehouse_url)
    good = "1700000000000,12,home,200,OK,Users 1-1,text,true,,10,1,1,1,http://x/,1,0,0\n"
    wrapped = f"{2**64 + 1_700_000_000_001},12,home,200,OK,Users 1-1,text,true,,10,1,1,1,http://x/,1,0,0\n"
    assert (2**64 + 1_700_000_000_001) % 2**64 == 1_700_000_000_001
    path = tmp_path / "wrap.jtl"
    path.write_text(HEADER_5 + good + wrapped)
    result = wh.ingest(path)
    assert result.rows == 1 and result.rejected == 1
    assert "timeStamp" in result.samples[0].reason and result.samples[0].line == 3


def test_standard_input_a_fifo_and_a_pipe_are_read_once(tmp_path: Path, jtl_output: Path) -> None:
    url = f"chdb://{tmp_path / 'wh'}"
    first = perfhouse("--warehouse", url, "ingest", "-", stdin=jtl_output.read_bytes())
    assert first.returncode == 0 and first.stdout.startswith("-: run "), first.stderr
    again = perfhouse("--warehouse", url, "ingest", "-", stdin=gzip.compress(jtl_output.read_bytes()))
    assert "already ingested" in again.stdout
    fifo = tmp_path / "results.fifo"
    os.mkfifo(fifo)
    xml = tmp_path / "r.xml"
    xml.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<testResults version="1.2">\n'
                   '<httpSample t="12" lt="5" ts="1700000000000" s="true" lb="home" rc="200" rm="OK" '
                   'tn="Users 1-1" by="100"/>\n</testResults>\n')

    def feed() -> None:
        with open(fifo, "wb") as out:
            out.write(xml.read_bytes())

    writer = threading.Thread(target=feed)
    writer.start()
    done = perfhouse("--warehouse", url, "ingest", str(fifo))
    writer.join(60)
    assert done.returncode == 0 and f"{fifo}: run " in done.stdout and "1 requests" in done.stdout, done.stderr
    names = {r.name for r in Warehouse.open(url).runs()}
    assert names == {"stdin", "results.fifo"}


def test_a_directory_without_results_is_said_so(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'wh'}"
    empty = tmp_path / "empty"
    (empty / "deeper").mkdir(parents=True)
    done = perfhouse("--warehouse", url, "ingest", str(empty))
    assert done.returncode == 7 and "no results file in this directory" in done.stderr
    assert "--recursive" in done.stderr
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "readme.txt").write_text("hello\n")
    done = perfhouse("--warehouse", url, "ingest", str(notes))
    assert done.returncode == 7 and "nothing ingested" in done.stderr


@pytest.mark.parametrize("fmt", ["jtl-csv", "jtl-xml", "k6-json", "k6-csv", "influx-line"])
def test_a_forced_format_on_a_binary_file_is_refused_with_a_message(fmt: str, tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'wh'}"
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 64 + b"\r\x80\xff" * 100)
    done = perfhouse("--warehouse", url, "ingest", "--format", fmt, str(binary))
    assert done.returncode == 7 and "Traceback" not in done.stderr, done.stderr
    assert f"{binary}:1: binary data" in done.stderr
    text = tmp_path / "cr.bin"  # no NUL, but a lone CR in the first record and bytes that are not UTF-8
    text.write_bytes(b"\x80\x81\r\x82,\x83\n" * 50)
    done = perfhouse("--warehouse", url, "ingest", "--format", fmt, str(text))
    assert done.returncode == 7 and "Traceback" not in done.stderr, done.stderr


def test_the_same_results_gzipped_are_the_same_file(any_warehouse_url: str, k6_output: Path, tmp_path: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    packed = tmp_path / "k6.json.gz"
    packed.write_bytes(gzip.compress(k6_output.read_bytes(), compresslevel=1))
    first = wh.ingest(packed)
    assert not first.duplicate
    again = wh.ingest(k6_output)
    repacked = tmp_path / "other.json.gz"
    repacked.write_bytes(gzip.compress(k6_output.read_bytes(), compresslevel=9))
    third = wh.ingest(repacked)
    assert again.duplicate and third.duplicate and again.run_id == third.run_id == first.run_id
    assert len(wh.runs()) == 1


def test_a_gzip_ingested_by_an_earlier_version_is_still_known(any_warehouse_url: str, k6_output: Path,
                                                              tmp_path: Path) -> None:
    """Earlier versions recorded a gzip file under the hash of its compressed bytes."""
    from warehouse.ingest import file_sha256

    wh = Warehouse.open(any_warehouse_url)
    packed = tmp_path / "k6.json.gz"
    packed.write_bytes(gzip.compress(k6_output.read_bytes()))
    first = wh.ingest(packed)
    wh.backend.command("ALTER TABLE ingested_files UPDATE sha256 = {s:String} WHERE run_id = {r:String} "
                       "SETTINGS mutations_sync = 2", {"s": file_sha256(packed), "r": first.run_id})
    assert wh.ingest(packed).duplicate


def test_a_missing_file_and_a_directory_given_to_ingest_are_named(any_warehouse_url: str, tmp_path: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    with pytest.raises(IngestError, match="no such file"):
        wh.ingest(tmp_path / "nope.jtl")
    with pytest.raises(IngestError, match="a directory"):
        wh.ingest(tmp_path)


def test_a_file_name_and_a_run_name_that_are_not_utf8(tmp_path: Path, jtl_output: Path) -> None:
    """Bytes of a Windows file name or argument reach the warehouse as U+FFFD, never a traceback."""
    url = f"chdb://{tmp_path / 'wh'}"
    name = os.fsencode(tmp_path) + b"/r\xe9sultats.jtl"
    with open(name, "wb") as out:
        out.write(jtl_output.read_bytes())
    done = subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", url.encode(), "ingest", name,
                           "--run-name", b"caf\xe9"], capture_output=True, timeout=300)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
    runs = Warehouse.open(url).runs()
    assert [r.name for r in runs] == ["caf\ufffd"] and runs[0].requests > 0
