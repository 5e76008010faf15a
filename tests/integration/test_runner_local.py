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
from orchestrator.generators import GenerationOptions
from orchestrator.generators.base import has_load, journey_vus, part_share
from orchestrator.progress import Counts
from orchestrator.run import RunSettings, run_tool
from orchestrator.spec import load_spec
from orchestrator.tools import TOOLS, Segment, generate
from orchestrator.tools.jmeter import JtlCsvCounter
from orchestrator.tools.k6 import K6JsonCounter, segment_args
from tests.conftest import ROOT, need
from tests.integration.test_runner_docker import ONE_JOURNEY, processes_mentioning
from warehouse.store import Warehouse


def test_segments_cover_the_test_once_without_overlap() -> None:
    assert segment_args(Segment(0, 1)) == [] and Segment(0, 1).name == ""
    args = [segment_args(Segment(i, 3)) for i in range(3)]
    assert [a[1] for a in args] == ["0:1/3", "1/3:2/3", "2/3:1"]
    assert {a[3] for a in args} == {"0,1/3,2/3,1"}
    assert [Segment(i, 3).name for i in range(3)] == ["g1", "g2", "g3"]


def test_each_generator_writes_its_own_outputs(tmp_path: Path) -> None:
    outputs = [TOOLS["k6"].invocation("k6", tmp_path / "s.js", tmp_path, Segment(i, 2)).outputs for i in range(2)]
    assert [o[0].path.name for o in outputs] == ["k6-g1.json", "k6-g2.json"]


def test_part_shares_add_up_and_never_fall_as_the_total_grows() -> None:
    for count in (2, 3, 5):
        for offset in range(count):
            for total in range(0, 40):
                shares = [part_share(total, i, count, offset) for i in range(count)]
                assert sum(shares) == total and max(shares) - min(shares) <= 1
                assert all(part_share(total + 1, i, count, offset) >= s for i, s in enumerate(shares))


ALLOCATED = ("vus", "rate", "start_rate", "pre_allocated_vus", "max_vus")


@pytest.mark.parametrize("count", [2, 3, 4])
def test_vu_scale_splits_every_number_of_every_journey_among_the_parts(count: int) -> None:
    spec = load_spec(ROOT / "examples" / "shop.yaml")
    for profile in spec.profiles.values():
        whole = journey_vus(spec, profile)
        parts = [journey_vus(spec, profile, (i, count)) for i in range(count)]
        for j, alloc in enumerate(whole):
            for key in ALLOCATED:
                if not (profile.is_arrival_rate and key in ("pre_allocated_vus", "max_vus")):
                    assert sum(getattr(p[j], key) for p in parts) == getattr(alloc, key), (profile.name, key)
            for s, stage in enumerate(alloc.stages):
                assert sum(p[j].stages[s].target for p in parts) == stage.target
        assert journey_vus(spec, profile, (0, 1)) == whole


def test_vu_scale_leaves_the_whole_plan_unchanged_and_spreads_small_journeys() -> None:
    spec = load_spec(ROOT / "examples" / "shop.yaml")
    options = GenerationOptions("smoke", {}, "5.6")
    assert generate(spec, "jmeter", options).content == generate(
        spec, "jmeter", GenerationOptions("smoke", {}, "5.6", vu_scale=(0, 1))).content
    smoke = spec.profile("smoke")  # two journeys with one VU each: g1 and g2 get one, g3 none
    assert [has_load(journey_vus(spec, smoke, (i, 3))) for i in range(3)] == [True, True, False]
    threads = [re.findall(r'num_threads">(\d+)<', generate(spec, "jmeter", GenerationOptions(
        "smoke", {}, "5.6", vu_scale=(i, 3))).content) for i in range(3)]
    assert threads == [["1"], ["1"], []], "a journey with no share in a part has no thread group there"


ARRIVAL = """
name: arrival
services:
  api: http://127.0.0.1:8080
journeys:
  - {name: browse, weight: 3, steps: [{name: list_products, path: /products}]}
  - {name: health, weight: 1, steps: [{name: health, path: /health}]}
profiles:
  open: {executor: constant_arrival_rate, rate: 4, duration: 6s, pre_allocated_vus: 2, max_vus: 4}
"""


def test_an_arrival_rate_part_has_a_vu_for_each_journey_it_starts_and_none_for_the_others(tmp_path: Path) -> None:
    path = tmp_path / "arrival.yaml"
    path.write_text(ARRIVAL)
    spec = load_spec(path)
    profile = spec.profile("open")  # browse 3/s, health 1/s over 3 parts
    parts = [[(j.rate, j.max_vus) for j in journey_vus(spec, profile, (i, 3))] for i in range(3)]
    assert parts == [[(1, 1), (0, 0)], [(1, 1), (1, 1)], [(1, 1), (0, 0)]]
    paced = [generate(spec, "jmeter", GenerationOptions("open", {}, "2.13", vu_scale=(i, 3))).content
             for i in range(3)]
    assert [p.count("<ThreadGroup ") for p in paced] == [1, 2, 1], "no unpaced thread group for a rate of 0"


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
    headerless, counter = Counts(), JtlCsvCounter()
    counter.feed([b"1,2,a,200,OK,t,text,true,100,1,7,2\n"], headerless)
    assert (headerless.requests, headerless.errors, counter.vus) == (1, 0, 7)
    # a Transaction Controller's own sample is a group of requests, not one: the warehouse does not keep it
    grouped, counter = Counts(), JtlCsvCounter()
    counter.feed([b"1,2,login,200,OK,t,text,true,100,1,1,2",
                  b'1,5,checkout,200,"Number of samples in transaction : 2, number of failing samples : 1",t,,false,'
                  b"200,1,1,0"], grouped)
    assert (grouped.requests, grouped.errors) == (1, 0)
    # a failed check on a 200 is not a request error; a failed response code assertion is
    checked, counter = Counts(), JtlCsvCounter()
    counter.feed([b"timeStamp,elapsed,label,responseCode,success,failureMessage\n",
                  b"1,2,a,200,false,Test failed: text expected to contain /ok/\n",
                  b"1,2,a,200,false,Test failed: code expected to equal /201/\n",
                  b"1,2,a,Non HTTP response code: java.net.ConnectException,false,\n"], checked)
    assert (checked.requests, checked.errors) == (3, 2)


@pytest.mark.integration
def test_asking_jmeter_its_version_leaves_no_log_in_the_current_directory(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    binary = need("jmeter")
    monkeypatch.chdir(tmp_path)
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", TOOLS["jmeter"].version(binary))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.integration
def test_jmeter_progress_counts_the_requests_the_warehouse_stores(tmp_path: Path) -> None:
    need("jmeter")
    spec = load_spec(ROOT / "tests" / "golden" / "groups" / "spec.yaml")
    lines: list[str] = []
    with DemoAPI() as api:
        outcome = run_tool(spec, "jmeter", Warehouse.open(f"chdb://{tmp_path / 'wh'}"), "golden", {"api": api.url},
                           runs_dir=tmp_path / "runs", echo=lines.append,
                           settings=RunSettings(progress_interval_s=60))
    assert outcome.status == "completed", outcome.notes
    jtl = (outcome.directory / "jmeter.jtl").read_text()
    assert "Number of samples in transaction" in jtl, "the plan's Transaction Controller wrote its own sample"
    final = [line for line in lines if line.startswith("jmeter: ")][-1]
    assert f", {outcome.totals['count']} requests," in final, (final, outcome.totals)
    assert outcome.totals["count"] == 4


def test_progress_takes_vus_and_the_p95_of_the_requests_since_the_last_line() -> None:
    counts, k6 = Counts(), K6JsonCounter()
    k6.feed([b'{"metric":"vus","type":"Point","data":{"time":"2026-01-01T00:00:01Z","value":4,"tags":null}}']
            + [b'{"metric":"http_req_duration","type":"Point","data":{"time":"2026-01-01T00:00:01Z","value":%d,'
               b'"tags":{}}}' % ms for ms in range(1, 101)], counts)
    assert k6.vus == 4 and counts.take_p95() == 95
    assert counts.take_p95() is None, "the next interval starts empty"
    jtl, counter = Counts(), JtlCsvCounter()
    # lines as the progress tail hands them over: without their line breaks
    counter.feed([b"timeStamp,elapsed,label,success,allThreads", b"1,30,a,true,2", b"2,10,a,true,3"], jtl)
    assert (jtl.requests, counter.vus, jtl.take_p95()) == (2, 3, 30)


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
    lines = re.findall(r"^k6: (\d+)s/4s, (\d+) VUs, (\d+) requests, (\d+) errors, p95 (\d+ms|-)$", proc.stdout,
                       re.M)
    assert len(lines) >= 2, proc.stdout
    assert any(vus == "3" and p95 != "-" for _, vus, _, _, p95 in lines), proc.stdout
    requests = [int(r) for _, _, r, _, _ in lines]
    assert requests == sorted(requests) and requests[-1] > 0
    (run,) = Warehouse.open(f"chdb://{tmp_path / 'wh'}").runs()
    assert requests[-1] == run.requests, "the last line counts what the warehouse holds"


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
    assert run.status == "aborted" and run.requests > 0
    assert processes_mentioning(run.run_id) == []




@pytest.mark.integration
def test_three_local_jmeter_processes_send_exactly_what_one_sends_into_one_run(tmp_path: Path,
                                                                               demo_api: DemoAPI) -> None:
    need("jmeter")
    spec_path = tmp_path / "split.yaml"
    spec_path.write_text(ONE_JOURNEY)
    spec = load_spec(spec_path)
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    single = run_tool(spec, "jmeter", wh, "fixed", {"api": demo_api.url}, runs_dir=tmp_path / "runs")
    split = run_tool(spec, "jmeter", wh, "fixed", {"api": demo_api.url}, runs_dir=tmp_path / "runs",
                     settings=RunSettings(generators=3))
    assert single.status == split.status == "completed", split.notes
    assert single.totals["count"] == split.totals["count"] == 3 * 4 * 2  # 3 threads x 4 loops x 2 steps
    assert len(wh.runs()) == 2
    per_generator = wh.backend.query(
        "SELECT generator, count() AS n FROM requests WHERE run_id = {r:String} GROUP BY generator "
        "ORDER BY generator", {"r": split.run_id})
    assert [(row["generator"], row["n"]) for row in per_generator] == [("g1", 8), ("g2", 8), ("g3", 8)]
    names = sorted(p.name for p in split.directory.iterdir())
    assert {"split-g1.jmx", "jmeter-g1.jtl", "jmeter-g1.log", "jmeter-g3.jtl", "jmeter-g3.log"} <= set(names)


@pytest.mark.integration
def test_a_jmeter_part_without_load_is_not_started(tmp_path: Path, demo_api: DemoAPI) -> None:
    need("jmeter")
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    spec = load_spec(ROOT / "examples" / "shop.yaml")  # smoke: 1 VU per journey, 3 iterations
    outcome = run_tool(spec, "jmeter", wh, "smoke", {"api": demo_api.url}, runs_dir=tmp_path / "runs",
                       settings=RunSettings(generators=3))
    assert outcome.status == "completed", outcome.notes
    assert outcome.totals["count"] == 12
    assert any("generator g3 gets no share of the load" in n for n in outcome.notes), outcome.notes
    assert not (outcome.directory / "jmeter-g3.jtl").exists() and len(outcome.ingested) == 2
