"""The local runner and what every runner shares: execution segments, progress lines, clean stops."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.demo_api import DemoAPI
from orchestrator.progress import Counts, JtlCsvCounter, K6JsonCounter
from orchestrator.tools import TOOLS, Segment
from tests.conftest import need
from tests.integration.test_runner_docker import ONE_JOURNEY, processes_mentioning
from warehouse.store import Warehouse


def test_segments_cover_the_test_once_without_overlap() -> None:
    assert Segment(0, 1).k6_args() == [] and Segment(0, 1).name == ""
    args = [Segment(i, 3).k6_args() for i in range(3)]
    assert [a[1] for a in args] == ["0:1/3", "1/3:2/3", "2/3:1"]
    assert {a[3] for a in args} == {"0,1/3,2/3,1"}
    assert [Segment(i, 3).name for i in range(3)] == ["g1", "g2", "g3"]


def test_each_generator_writes_its_own_outputs(tmp_path: Path) -> None:
    outputs = [TOOLS["k6"].invocation("k6", tmp_path / "s.js", tmp_path, Segment(i, 2)).outputs for i in range(2)]
    assert [o[0].name for o in outputs] == ["k6-g1.json", "k6-g2.json"]


def test_progress_counts_k6_points_and_jtl_rows() -> None:
    counts = Counts()
    K6JsonCounter().feed([
        b'{"type":"Metric","data":{"name":"http_reqs"},"metric":"http_reqs"}',
        b'{"metric":"http_reqs","type":"Point","data":{"value":1,"tags":{}}}',
        b'{"metric":"http_reqs","type":"Point","data":{"value":1,"tags":{}}}',
        b'{"metric":"http_req_failed","type":"Point","data":{"value":1,"tags":{}}}',
        b'{"metric":"http_req_failed","type":"Point","data":{"value":0,"tags":{}}}',
    ], counts)
    assert (counts.requests, counts.errors) == (2, 1)
    jtl, counter = Counts(), JtlCsvCounter()
    counter.feed([b"timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success\n",
                  b"1,2,a,200,OK,t,text,true\n"], jtl)
    counter.feed([b"1,2,a,500,Err,t,text,false\n"], jtl)
    assert (jtl.requests, jtl.errors) == (2, 1)
    headerless = Counts()
    JtlCsvCounter().feed([b"1,2,a,200,OK,t,text,true,100,1,1,2\n"], headerless)
    assert (headerless.requests, headerless.errors) == (1, 0)


@pytest.mark.integration
def test_a_run_prints_progress_lines_while_it_goes(tmp_path: Path) -> None:
    need("k6")
    spec = tmp_path / "steady.yaml"
    spec.write_text(ONE_JOURNEY.replace("long: {executor: constant_vus, vus: 3, duration: 60s}",
                                        "steady: {executor: constant_vus, vus: 3, duration: 4s}"))
    with DemoAPI() as api:
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "--warehouse", f"chdb://{tmp_path / 'wh'}", "run", str(spec),
             "--profile", "steady", "--service", f"api={api.url}", "--runs-dir", str(tmp_path / "runs"),
             "--progress-interval", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = re.findall(r"^k6: (\d+)s/4s, (\d+) requests, (\d+) errors$", proc.stdout, re.M)
    assert len(lines) >= 2, proc.stdout
    requests = [int(r) for _, r, _ in lines]
    assert requests == sorted(requests) and requests[-1] > 0
    (run,) = Warehouse.open(f"chdb://{tmp_path / 'wh'}").runs()
    assert requests[-1] == int(run["requests"]), "the last line counts what the warehouse holds"


@pytest.mark.integration
def test_sigterm_stops_every_local_generator_and_marks_the_run_aborted(tmp_path: Path) -> None:
    need("k6")
    spec = tmp_path / "split.yaml"
    spec.write_text(ONE_JOURNEY)
    with DemoAPI() as api:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "--warehouse", f"chdb://{tmp_path / 'wh'}", "run", str(spec),
             "--profile", "long", "--service", f"api={api.url}", "--runs-dir", str(tmp_path / "runs"),
             "--generators", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        start = time.monotonic()
        while len([p for p in (tmp_path / "runs").glob("*/k6-g*.json") if p.stat().st_size]) < 3:
            assert time.monotonic() - start < 60 and proc.poll() is None, proc.stderr and proc.stderr.read()
            time.sleep(0.2)
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    (run,) = Warehouse.open(f"chdb://{tmp_path / 'wh'}").runs()
    assert run["status"] == "aborted" and int(run["requests"]) > 0
    assert processes_mentioning(str(run["run_id"])) == []


