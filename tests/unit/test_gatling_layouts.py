"""Gatling's simulation.log without a warehouse: which layout a RUN record means, what the format claims, and the
binary decoder on Gatling's own sample and on strings of both JVM coders."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.conftest import ROOT
from warehouse.tools.gatling import binary
from warehouse.tools.gatling.layouts import LAYOUTS, UnknownLayout, looks_like_text_log, run_record
from warehouse.tools.gatling.simulation_log import SimulationLog

DATA = ROOT / "tests" / "data" / "gatling"


@pytest.mark.parametrize(("name", "layout"), [
    ("gatling-2.0.log", "2.0"), ("gatling-2.3.log", "2.2"), ("gatling-3.3.log", "3.0"), ("gatling-3.11.log", "3.4"),
])
def test_each_real_file_is_read_with_its_versions_layout(name: str, layout: str) -> None:
    run = run_record((DATA / name).read_bytes())
    assert run.layout is LAYOUTS[layout]
    assert (run.line, run.simulation, run.start_ms, run.description) == (1, "MySimulation", 1406822067250,
                                                                         "interesting test run")
    assert run.started_at == "2014-07-31 15:54:27.250"


@pytest.mark.parametrize(("head", "layout"), [
    # a real 3.x file names its version; the layout follows the records when they tell, else the version
    (b"RUN\tS\ts\t1000\t \t3.2.1\n", "3.0"),
    (b"RUN\tS\ts\t1000\t \t3.10.3\n", "3.4"),
    (b"RUN\tS\ts\t1000\t \t3.10.3\nUSER\tsc\t1\tSTART\t1000\t0\n", "3.0"),
    (b"RUN\tS\ts\t1000\t \t3.2.1\nREQUEST\t\tr\t1000\t1200\tOK\t \n", "3.4"),
    (b"ASSERTION\tAAEC\nRUN\tS\t\tdefault\t1000\t \t2.0\n", "2.2"),
])
def test_a_3x_layout_is_chosen_by_its_records_then_its_version(head: bytes, layout: str) -> None:
    assert run_record(head).layout is LAYOUTS[layout]


def test_2_2_keeps_the_users_simulation_id_else_the_default_one() -> None:
    assert run_record(b"RUN\tS\tmine\tdefault\t1000\t \t2.0\n").simulation_id == "mine"
    assert run_record(b"RUN\tS\t\tdefault\t1000\t \t2.0\n").simulation_id == "default"


@pytest.mark.parametrize(("head", "message"), [
    (b"RUN\tS\ts\t1000\t \t3.13.0\n", "Gatling '3.13.0', a version whose layout perfhouse does not know"),
    (b"RUN\tS\ts\t1000\t \tlatest\n", "Gatling 'latest'"),
    (b"RUN\tS\ts\t1000\n", "a RUN record of 4 fields"),
    (b"RUN\tS\ts\t-1000\t \t3.1.0\n", "the start time '-1000' is not Unix milliseconds"),
    (b"USER\tS\tSTART\t1000\n", "1: not a RUN record"),
])
def test_run_records_no_known_version_writes_are_refused(head: bytes, message: str) -> None:
    with pytest.raises(UnknownLayout, match=message):
        run_record(head)


def test_the_format_claims_gatlings_files_and_no_others() -> None:
    fmt = SimulationLog()
    for path in DATA.glob("*.log"):
        assert fmt.sniff(path.read_bytes()[:65536]), path.name
    assert looks_like_text_log(b"ASSERTION\tAAAA\n")
    for other in (b"timeStamp,elapsed,label\n", b'{"type":"Point"}\n', b"metric_name,timestamp,metric_value,\n",
                  b"RUNNING\tx\n", b"1700000000000\t12\tRUN\t200\tOK\tThread Group 1-1\ttext\ttrue\t10\t1\t1\t5\n", b"\x00\x00\x00\x00\x06abcdef", b"\x00\x00\x00\x7f\xff3.13.0", b""):
        assert not fmt.sniff(other), other


def test_binary_sample_decodes_to_text_records(tmp_path: Path) -> None:
    out = tmp_path / "records.log"
    decoded = binary.to_text(DATA / "gatling-3.13.bin.log", out)
    lines = out.read_text().splitlines()
    assert decoded.damage is None and decoded.records == len(lines)
    assert lines[0] == "RUN\tcomputerdatabase.ComputerDatabaseSimulation\t\t1730757531501\t \t3.12.1"
    requests = [line.split("\t") for line in lines if line.startswith("REQUEST")]
    assert len(requests) == 105 and sum(r[5] == "KO" for r in requests) == 1
    assert {r[1] for r in requests} == {""}  # no groups in this simulation
    durations = [int(r[4]) - int(r[3]) for r in requests]
    assert (min(durations), max(durations)) == (87, 368)
    assert {line.split("\t")[1] for line in lines if line.startswith("USER")} == {"Users", "Admins"}


def _string(text: str, coder: int) -> bytes:
    data = text.encode("latin-1" if coder == 0 else "utf-16-le")
    return struct.pack(">i", len(data)) + data + bytes([coder])


def grouped_binary_log(path: Path) -> Path:
    """A binary log of two requests in groups "Café, bar" then "Pay€<TAB>now", strings of both coders, the second
    request naming its strings by the cache."""
    run = (b"\x00" + _string("3.14.2", 0) + _string("a.Sim", 0) + struct.pack(">q", 1_700_000_000_000)
           + struct.pack(">i", 0) + struct.pack(">i", 1) + _string("buyers", 0) + struct.pack(">i", 0))
    user = b"\x02" + struct.pack(">i", 0) + b"\x01" + struct.pack(">i", 5)
    first = (b"\x01" + struct.pack(">i", 2) + struct.pack(">i", 1) + _string("Caf\u00e9, bar", 0)
             + struct.pack(">i", 2) + _string("Pay\u20ac\tnow", 1) + struct.pack(">i", 3) + _string("Pay", 0)
             + struct.pack(">iib", 10, 30, 1) + struct.pack(">i", 4) + _string("", 0)[:4])
    again = (b"\x01" + struct.pack(">i", 2) + struct.pack(">ii", -1, -2) + struct.pack(">i", -3)
             + struct.pack(">iib", 40, 90, 0) + struct.pack(">i", 5) + _string("timed\nout", 0))
    path.write_bytes(run + user + first + again)
    return path


def test_binary_strings_of_both_coders_groups_and_the_string_cache(tmp_path: Path) -> None:
    path = grouped_binary_log(tmp_path / "simulation.log")
    assert binary.looks_binary(path.read_bytes())
    decoded = binary.to_text(path, tmp_path / "out.log")
    assert decoded.damage is None
    assert (tmp_path / "out.log").read_text().splitlines()[1:] == [
        "USER\tbuyers\tSTART\t1700000000005",
        "REQUEST\tCaf\u00e9, bar\x1fPay\u20ac now\tPay\t1700000000010\t1700000000030\tOK\t ",
        "REQUEST\tCaf\u00e9, bar\x1fPay\u20ac now\tPay\t1700000000040\t1700000000090\tKO\ttimed out",
    ]
