"""A damaged simulation.log, as an attacker or a crash writes one: every bad line rejected with its line and the field
named, the valid requests kept, files no Gatling writes refused in one line (exit 7), no traceback, nothing stored
from a refused file. Text logs of two layouts and the binary log, through `perfhouse ingest` (one process)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from warehouse.errors import IngestError
from warehouse.store import Warehouse
from warehouse.tools.gatling.layouts import KNOWN_VERSIONS

pytestmark = pytest.mark.integration

DATA = ROOT / "tests" / "data" / "gatling"
T0 = 1_704_067_200_000  # 2024-01-01 in ms
GOOD = 20  # valid requests in each damaged file


def perfhouse(warehouse: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", warehouse, *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "CI": "true"})


def request_34(i: int, status: str = "OK", message: str = " ") -> bytes:
    return f"REQUEST\tShop,Cart\tadd item\t{T0 + i * 1000}\t{T0 + i * 1000 + 100 + i}\t{status}\t{message}\n".encode()


# (the damaged line, the reason it must get, in part) for Gatling 3.4-3.12's layout
DAMAGE_34: list[tuple[bytes, str]] = [
    (b"REQUEST\t\tadd item\t1704067200000\n", "REQUEST record: 4 fields; Gatling 3.4–3.12 writes 7"),
    (b"REQUEST\t\tadd item\t1704067200000\t1704067200100\tOK\t \textra\n", "REQUEST record: 8 fields"),
    (b"REQUEST\t\tadd item\tabc\t1704067200100\tOK\t \n", "REQUEST start (field 4) is not a whole number"),
    (b"REQUEST\t\tadd item\t1704067200000\t-100\tOK\t \n", "REQUEST end (field 5) is not a whole number"),
    (b"REQUEST\t\tadd item\t1704067200000\t1.5e12\tOK\t \n", "REQUEST end (field 5) is not a whole number"),
    (b"REQUEST\t\tadd item\t99999999999999999999\t1704067200100\tOK\t \n", "REQUEST start (field 4) is not a whole"),
    (b"REQUEST\t\tadd item\t1704067200100\t1704067200000\tOK\t \n", "REQUEST end (field 5) is before its start"),
    (b"REQUEST\t\tadd item\t1704067200000\t1704267200000\tOK\t \n", "REQUEST response time (end less start) out of "
                                                                    "range"),
    (b"REQUEST\t\tadd item\t4102444800000\t4102444800100\tOK\t \n", "REQUEST start (field 4) out of range"),
    (b"REQUEST\t\tadd item\t1704067200000\t1704067200100\tMAYBE\t \n", "REQUEST status (field 6) is neither OK nor KO"),
    (b"REQUEST\t\t\t1704067200000\t1704067200100\tOK\t \n", "REQUEST name (field 3) is empty"),
    (b"USER\tshop\tBEGIN\t1704067200000\n", "USER event (field 3) is neither START nor END"),
    (b"USER\tshop\t1\tSTART\t1704067200000\t0\n", "USER record: 6 fields; Gatling 3.4–3.12 writes 4"),
    (b"GROUP\tShop\t1704067200000\n", "GROUP record: 3 fields"),
    (b"RUN\tOther\tother\t1704067200000\t \t3.11.5\n", "a second RUN record"),
    (b"TRANSACTION\tx\ty\n", 'not a record of Gatling 3.4–3.12: field 1 is "TRANSACTION"'),
    (b"\x00\x01\x02\xfe\xff garbage \x80\x81\n", "not a record of Gatling 3.4–3.12"),
    (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\n", "not a record of Gatling 3.4–3.12"),
    (b"\xef\xbb\xbfREQUEST\t\tadd item\t1704067200000\t1704067200100\tOK\t \n", "not a record"),
    (b"RE\n", 'field 1 is "RE"'),
]


def text_log(tmp: Path) -> tuple[Path, int]:
    """A 3.4-3.12 log: GOOD valid requests (one KO with a 1 MiB message, one with a name that is not UTF-8), the damage
    between them, a blank line (not a record: skipped, not counted) and a last line cut short."""
    lines = [b"ASSERTION\tAQIDBA==\n", b"RUN\tshop.CartSimulation\tcartsimulation\t1704067199000\t \t3.11.5\n",
             b"USER\tshoppers\tSTART\t1704067199500\n"]
    for i in range(GOOD):
        if i == 3:
            lines.append(request_34(i, "KO", "x" * (1 << 20)))
        elif i == 4:
            lines.append(request_34(i).replace(b"add item", b"add \xff\xfe item"))
        else:
            lines.append(request_34(i))
        if i < len(DAMAGE_34):
            lines.append(DAMAGE_34[i][0])
        if i == 5:
            lines.append(b"\n")
    lines += [b"ERROR\tFailed to build request add item: No attribute named 'id' is defined\t1704067250000\n",
              b"USER\tshoppers\tEND\t1704067300000\n", b"REQUEST\t\tadd item\t17040672"]
    path = tmp / "damaged.log"
    path.write_bytes(b"".join(lines))
    return path, min(GOOD, len(DAMAGE_34)) + 1


def test_damaged_text_log_keeps_valid_requests_and_names_every_bad_field(tmp_path: Path) -> None:
    path, bad = text_log(tmp_path)
    wh_url = f"chdb://{tmp_path / 'wh'}"
    done = perfhouse(wh_url, "ingest", str(path), "--json")
    assert done.returncode == 7, done.stderr  # rejected lines: exit status 7 (BAD_INPUT), the rest stored
    assert "Traceback" not in done.stderr
    result = json.loads(done.stdout)
    assert (result["rows"], result["rejected"]) == (GOOD, bad)
    assert "Gatling's errors outside any request are not stored (1 ERROR records)" in result["notes"]
    lines = [ln for ln in done.stderr.splitlines() if "rejected:" in ln]
    assert lines and all(ln.strip().startswith(f"{path}:") for ln in lines)
    wh = Warehouse.open(wh_url)
    steps = {s.step: s for s in wh.step_stats(result["run_id"])}
    assert {s.journey for s in steps.values()} == {"shoppers"}
    assert (steps["Shop / Cart / add item"].count, steps["Shop / Cart / add item"].errors) == (GOOD - 1, 1)
    assert len(steps) == 2  # the name that is not UTF-8 is a step of its own, kept as written
    rows = wh.backend.query("SELECT length(error) AS n FROM requests WHERE run_id = {r:String} AND ok = 0",
                            {"r": result["run_id"]})
    assert rows[0]["n"] == 1 << 20
    report = perfhouse(wh_url, "report", result["run_id"], "--format", "md")
    assert report.returncode == 0 and "Traceback" not in report.stderr


def test_every_kind_of_damaged_line_is_rejected_with_its_line_and_field(tmp_path: Path) -> None:
    """Each damage alone in a file of its own between two valid requests; all files through one ingest."""
    head = b"RUN\tshop.CartSimulation\tcartsimulation\t1704067199000\t \t3.11.5\n"
    paths = []
    for n, (damage, _) in enumerate(DAMAGE_34):
        path = tmp_path / f"damage-{n:02d}.log"
        path.write_bytes(head + request_34(1) + damage + request_34(2))
        paths.append(path)
    done = perfhouse(f"chdb://{tmp_path / 'wh'}", "ingest", *map(str, paths), "--json")
    assert done.returncode == 7 and "Traceback" not in done.stderr, done.stderr
    results = {r["path"]: r for r in map(json.loads, done.stdout.splitlines())}
    for path, (_, reason) in zip(paths, DAMAGE_34, strict=True):
        result = results[str(path)]
        assert (result["rows"], result["rejected"]) == (2, 1), path.name
        [rejected] = result["rejected_lines"]
        assert rejected["line"] == 3 and reason in rejected["reason"], (path.name, rejected)
        assert f"{path}:3: rejected: " in done.stderr


def test_crlf_lines_of_a_log_written_on_windows_read_the_same(tmp_path: Path) -> None:
    path = tmp_path / "windows.log"
    path.write_bytes((DATA / "gatling-3.3.log").read_bytes().replace(b"\n", b"\r\n"))
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    result = wh.ingest(path)
    assert (result.rows, result.rejected) == (8, 0)
    [step] = wh.step_stats(result.run_id)
    assert (step.journey, step.step, step.min_ms, step.max_ms) == ("testScenario", "Test Request", 2000, 9000)


def test_a_2_0_log_with_extra_info_columns_and_damage(tmp_path: Path) -> None:
    """2.0-2.1 keep a request's extra info after its message: more fields are fine, fewer are not."""
    base = (DATA / "gatling-2.0.log").read_bytes()
    extra = b"testScenario\t2\tREQUEST\tg1,g2\tpay\t1000\t1100\t1300\t1500\tKO\tboom\tinfo1\tinfo2\n"
    short = b"testScenario\t2\tREQUEST\t\tpay\t1000\t1100\t1300\n"
    garbled = b"testScenario\t2\tREQUEST\t\tpay\t1000\tx\t1300\t1500\tOK\t \n"
    path = tmp_path / "simulation.log"
    path.write_bytes(base + extra + short + garbled)
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    result = wh.ingest(path)
    assert (result.rows, result.rejected) == (9, 2)
    assert [r.reason for r in result.samples] == [
        "REQUEST record: 8 fields; Gatling 2.0–2.1 writes 11 or more",
        "REQUEST last byte sent (field 7) is not a whole number of milliseconds: x",
    ]
    rows = wh.backend.query("SELECT step, ok, error, duration_ms, waiting_ms, vu FROM requests "
                            "WHERE run_id = {r:String} AND step != 'Test Request'", {"r": result.run_id})
    assert [(r["step"], r["ok"], r["error"], r["duration_ms"], r["waiting_ms"], r["vu"]) for r in rows] == [
        ("g1 / g2 / pay", 0, "boom", 500, 200, "2")]


def binary_log(tmp: Path, cut: int = 0, tail: bytes = b"") -> Path:
    data = (DATA / "gatling-3.13.bin.log").read_bytes()
    path = tmp / f"bin-{cut}-{len(tail)}.log"
    path.write_bytes((data[:-cut] if cut else data) + tail)
    return path


def test_damaged_binary_logs_keep_every_record_before_the_damage(tmp_path: Path) -> None:
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    cut = wh.ingest(binary_log(tmp_path, cut=7))  # the last record (a user's end) cut short
    assert (cut.rows, cut.rejected) == (105, 1)
    assert "the file ends inside a record" in cut.samples[0].reason
    half = wh.ingest(binary_log(tmp_path, cut=1400))  # cut in the middle: what came before is kept
    assert 0 < half.rows < 105 and half.rejected == 1
    unknown = wh.ingest(binary_log(tmp_path, tail=b"\x09garbage"))  # a record type Gatling does not write
    assert (unknown.rows, unknown.rejected) == (105, 1)
    assert "a record of unknown type 9" in unknown.samples[0].reason
    reference = wh.ingest(binary_log(tmp_path, tail=b"\x01" + struct.pack(">ii", 0, -999)))  # a string never written
    assert (reference.rows, reference.rejected) == (105, 1)
    assert "a reference to string 999, never written" in reference.samples[0].reason
    huge = wh.ingest(binary_log(tmp_path, tail=b"\x04" + struct.pack(">ii", 7, 0x7FFFFFF0)))  # a 2 GiB string
    assert (huge.rows, huge.rejected) == (105, 1)
    assert "a string of 2147483632 bytes" in huge.samples[0].reason


REFUSED: list[tuple[str, bytes, str]] = [
    ("future.log", b"RUN\tSim\tsim\t1704067200000\t \t4.0.0\nREQUEST\t\ta\t1\t2\tOK\t \n",
     "a simulation.log of Gatling '4.0.0', a version whose layout perfhouse does not know"),
    ("old.log", b"RUN\tSim\tsim\t1704067200000\t \t1.5.6\n", "Gatling '1.5.6'"),
    ("wide.log", b"RUN\ta\tb\tc\td\te\tf\tg\th\n", "a RUN record of 9 fields, which no Gatling version writes"),
    ("time.log", b"RUN\tSim\tsim\tyesterday\t \t3.9.5\n", "RUN record: the start time 'yesterday' is not Unix"),
    ("asserts.log", b"ASSERTION\tAAAA\nASSERTION\tBBBB\n", "2: no RUN record after the ASSERTION lines"),
    ("user.log", b"USER\tshop\tSTART\t1704067200000\n", "not a results file perfhouse knows"),
    ("bin-future.log", b"\x00" + struct.pack(">i", 5) + b"4.0.0\x00" + b"\x00" * 40,
     "a binary simulation.log of Gatling '4.0.0'"),
    ("bin-cut.log", b"\x00" + struct.pack(">i", 6) + b"3.13.0\x00" + struct.pack(">i", 900) + b"abc",
     "the RUN record cannot be read"),
    ("noise.log", bytes(range(256)) * 8, "binary data"),
]


def test_files_no_gatling_writes_are_refused_in_one_line_and_store_nothing(tmp_path: Path) -> None:
    wh_url = f"chdb://{tmp_path / 'wh'}"
    wh = Warehouse.open(wh_url)
    for name, data, message in REFUSED:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(IngestError) as refused:
            wh.ingest(path)
        assert message in str(refused.value) and str(refused.value).startswith(f"{path}:"), name
        assert "\n" not in str(refused.value)
    assert wh.backend.query("SELECT count() AS n FROM runs")[0]["n"] == 0
    done = perfhouse(wh_url, "ingest", str(tmp_path / REFUSED[0][0]))  # the command line: one line, exit status 7
    assert (done.returncode, done.stdout) == (7, "")
    assert done.stderr == f"perfhouse: error: {tmp_path / REFUSED[0][0]}:1: {REFUSED[0][2]}; it reads {KNOWN_VERSIONS}\n"
