"""Live ingestion: chunks cut at safe boundaries while the tools run add up to one ingest of the whole file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.demo_api import DemoAPI
from orchestrator.live import LiveIngest
from orchestrator.tools import Output
from orchestrator.tools.jmeter import JtlCsvCutter
from orchestrator.tools.k6 import K6_JSON, K6JsonCutter, rfc3339_seconds
from tests.conftest import need
from tests.integration.test_runner_docker import ONE_JOURNEY
from warehouse.store import RunInfo, Warehouse

METRICS = ("http_reqs", "http_req_duration", "http_req_waiting", "http_req_connecting", "http_req_failed")


def request_lines(second: int, nanos: int, step: str) -> list[bytes]:
    time_text = f"2026-01-01T00:00:{second:02d}.{nanos:09d}Z"
    return [
        b'{"metric":"%s","type":"Point","data":{"time":"%s","value":1,"tags":{"step":"%s"}}}\n'
        % (m.encode(), time_text.encode(), step.encode())
        for m in METRICS
    ]


def test_k6_times_are_read_to_the_nanosecond_in_any_offset() -> None:
    assert rfc3339_seconds("2026-01-01T00:00:01.5Z") == rfc3339_seconds("2026-01-01T01:00:01.500000000+01:00")
    assert rfc3339_seconds("not a time") is None


def test_a_k6_cut_never_splits_a_request_and_keeps_the_recent_seconds_back() -> None:
    lines = [b'{"type":"Metric","data":{"name":"http_reqs"},"metric":"http_reqs"}\n']
    for second in range(10):
        lines += request_lines(second, 123456789, "a") + request_lines(second, 223456789, "b")
    data = b"".join(lines)
    cutter = K6JsonCutter(margin_s=1.5)
    size = cutter.cut(data + b'{"metric":"http_reqs","type":"Po', final=False)
    assert data[:size].endswith(request_lines(7, 223456789, "b")[-1]), "up to the last request 1.5 s older"
    for inside in range(1, len(METRICS)):  # a read that ends inside the 20th request never cuts it
        partial = b"".join(lines[: 1 + len(METRICS) * 19 + inside])
        chunk = partial[: K6JsonCutter(margin_s=0).cut(partial, final=False)]
        assert chunk.count(b'"type":"Point"') == len(METRICS) * 19 and chunk.endswith(b"\n")
    assert cutter.cut(data, final=True) == len(data)
    assert not cutter.worth_ingesting(lines[0]) and cutter.worth_ingesting(lines[1])


def test_a_k6_cut_never_parts_a_request_from_its_checks() -> None:
    check = (b'{"metric":"checks","type":"Point","data":{"time":"2026-01-01T00:00:%02d.900000000Z","value":0,'
             b'"tags":{"check":"ok","step":"%s"}}}\n')
    lines = []
    for second in range(10):
        lines += [*request_lines(second, 123456789, "a"), check % (second, b"a")]
    data = b"".join(lines)
    chunk = data[: K6JsonCutter(margin_s=1.5).cut(data, final=False)]
    assert chunk.endswith(check % (7, b"a")), "the last request old enough, with its check"


def vu_lines(second: int, nanos: int, vu: int, iteration: int, check: bool = False) -> list[bytes]:
    """One VU's request (or its check) as a generated script's k6 writes it: vu and iter as metadata."""
    time_text = f"2026-01-01T00:00:{second:02d}.{nanos:09d}Z".encode()
    meta = b'"metadata":{"iter":"%d","vu":"%d"}' % (iteration, vu)
    if check:
        return [b'{"metric":"checks","type":"Point","data":{"time":"%s","value":1,'
                b'"tags":{"check":"ok","journey":"j","step":"s"},%s}}\n' % (time_text, meta)]
    return [b'{"metric":"%s","type":"Point","data":{"time":"%s","value":1,"tags":{"journey":"j","step":"s"},%s}}\n'
            % (m.encode(), time_text, meta) for m in METRICS]


def test_a_k6_cut_never_parts_a_request_from_checks_that_other_vus_requests_come_before() -> None:
    """Under load k6 writes other VUs' requests between a request and its checks: no cut may fall there, or
    the check lands in a chunk without its request and is lost (seen: checks_total 267 of 268)."""
    lines: list[bytes] = []
    for second in range(10):
        lines += vu_lines(second, 100, vu=1, iteration=second)  # VU 1's request
        lines += vu_lines(second, 200, vu=2, iteration=second)  # VU 2's, before VU 1's check
        lines += vu_lines(second, 300, vu=1, iteration=second, check=True)
        lines += vu_lines(second, 400, vu=2, iteration=second, check=True)
    data = b"".join(lines)
    for margin in (0.0, 1.5, 4.0):
        size = K6JsonCutter(margin_s=margin).cut(data, final=False)
        assert size > 0
        head, tail = data[:size], data[size:]
        checked = {line.split(b'"metadata":')[1] for line in head.splitlines() if b'"checks"' in line}
        requested = {line.split(b'"metadata":')[1] for line in head.splitlines() if b'"http_reqs"' in line}
        assert checked == requested, "every request of the chunk has its check in the chunk"
        assert tail.startswith(vu_lines(0, 0, 1, 0)[0][:30]) and b'"checks"' not in tail.splitlines()[0]
    # every cut of every prefix, as a growing file is read: the checks stay with their requests (a check not
    # written yet is what the age margin waits for)
    cutter = K6JsonCutter(margin_s=0.5)
    offset = 0
    for end in range(1, len(lines) + 1):
        prefix = b"".join(lines[:end])[offset:]
        size = cutter.cut(prefix, final=False)
        chunk = prefix[:size]
        keys = [line.split(b'"metadata":')[1] for line in chunk.splitlines() if b'"checks"' in line]
        owners = {line.split(b'"metadata":')[1] for line in chunk.splitlines() if b'"http_reqs"' in line}
        assert set(keys) <= owners
        offset += size


def test_a_jtl_cut_ends_at_a_whole_line_outside_quotes_and_chunks_repeat_the_header() -> None:
    cutter = JtlCsvCutter()
    data = b'timeStamp,elapsed,label,responseMessage,success\n1,5,a,OK,true\n2,6,a,"two\nlines",false\n3,7,a,O'
    assert cutter.header(data) == len(b"timeStamp,elapsed,label,responseMessage,success\n")
    assert cutter.header(b"1,5,a,200,OK,t,text,true,10,1,1,5\n") == 0
    assert cutter.header(b"timeStamp,elap") == -1, "not known until the header line is complete"
    body = data[cutter.header(data):]
    assert body[: cutter.cut(body[:30], final=False)] == b"1,5,a,OK,true\n", "no cut inside the quoted field"
    assert body[: cutter.cut(body, final=False)] == b'1,5,a,OK,true\n2,6,a,"two\nlines",false\n'
    assert cutter.cut(body, final=True) == len(body)


def test_chunks_of_a_growing_file_add_up_to_one_ingest_of_the_whole(tmp_path: Path, k6_output: Path) -> None:
    """Feed a real k6 output to LiveIngest in pieces of arbitrary sizes, as a growing file is read."""
    growing = tmp_path / "k6.json"
    data = k6_output.read_bytes()
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    info = RunInfo("live-run", "k6")
    wh.save_run(info)
    live = LiveIngest(wh, info, [Output(growing, K6_JSON)], tmp_path)
    for live_file in live.files:
        live_file.cutter = K6JsonCutter(margin_s=0.5)
    with open(growing, "wb") as out:
        for start in range(0, len(data), 7919):  # a prime: reads end anywhere inside lines and requests
            out.write(data[start : start + 7919])
            out.flush()
            live.tick(final=False)
    live.finish()
    assert live.files[0].chunks > 1 and not live.problems
    assert len(live.ingested) == 1, "one result per file, whatever the number of chunks"
    whole = wh.ingest(k6_output)  # a fresh run of its own: the same content is a different file here
    assert not whole.duplicate
    live_totals, whole_totals = wh.totals("live-run"), wh.totals(whole.run_id)
    for key in ("count", "errors", "p50_ms", "p95_ms", "p99_ms", "max_ms"):  # exact quantiles: equal
        assert live_totals[key] == whole_totals[key], key
    assert live_totals["avg_ms"] == pytest.approx(whole_totals["avg_ms"], rel=1e-12)  # summed in another order
    assert sum(r.points for r in live.ingested) == whole.points
    assert sum(r.rows for r in live.ingested) == whole.rows


def test_tiny_chunks_of_a_many_vu_run_keep_every_check_with_its_request(tmp_path: Path) -> None:
    """A real k6 run of eight VUs checking every response (their output interleaved), read back in pieces of
    64 KiB with a short margin: dozens of chunk edges, and the live totals still equal one ingest of the whole
    file, checks included."""
    need("k6")
    script = tmp_path / "checks.js"
    script.write_text(
        'import http from "k6/http";\nimport { check } from "k6";\n'
        'export const options = { vus: 8, duration: "3s", systemTags: ["status", "method", "url", "name", '
        '"check", "scenario", "expected_response", "vu", "iter"] };\n'
        "export default function () {\n"
        "  for (const step of ['list', 'one']) {\n"
        "    const r = http.get(`${__ENV.BASE}/products`, { tags: { journey: 'shop', step: step } });\n"
        "    check(r, { 'status 200': (x) => x.status === 200, 'has body': (x) => x.body.length > 0 },\n"
        "          { journey: 'shop', step: step });\n"
        "  }\n}\n", encoding="utf-8")
    raw = tmp_path / "raw.json"
    with DemoAPI() as api:
        done = subprocess.run(["k6", "run", "-q", "--out", f"json={raw}", "-e", f"BASE={api.url}", str(script)],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data = raw.read_bytes()
    checks = data.count(b'"metric":"checks","type":"Point"')
    assert checks > 100
    growing = tmp_path / "k6.json"
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    info = RunInfo("live-run", "k6")
    wh.save_run(info)
    live = LiveIngest(wh, info, [Output(growing, K6_JSON)], tmp_path)
    for live_file in live.files:
        live_file.cutter = K6JsonCutter(margin_s=0.05)
    with open(growing, "wb") as out:
        for start in range(0, len(data), 65536):
            out.write(data[start : start + 65536])
            out.flush()
            live.tick(final=False)
    live.finish()
    assert live.files[0].chunks > 10 and not live.problems
    whole = wh.ingest(raw)
    live_totals, whole_totals = wh.totals("live-run"), wh.totals(whole.run_id)
    assert whole_totals["checks_total"] == checks
    for key in ("count", "errors", "checks_total", "checks_failed", "check_failures"):
        assert live_totals[key] == whole_totals[key], key


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_live_chunks_leave_nothing_behind_in_perfhouse_however_many(tmp_path: Path) -> None:
    """Each chdb session opened and closed in a process leaves threads (and memory) behind in it: chunks of a
    long run go through a worker process that is replaced, so perfhouse itself does not grow with the run."""
    growing = tmp_path / "k6.json"
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    info = RunInfo("live-run", "k6")
    wh.save_run(info)
    live = LiveIngest(wh, info, [Output(growing, K6_JSON)], tmp_path)
    live.writer.chunks_per_worker = 4
    with open(growing, "wb") as out:
        for second in range(0, 48, 3):
            out.writelines(request_lines(second, 1, "a") + request_lines(second + 1, 2, "b"))
            out.flush()
            live.tick(final=False)
            release(wh)  # as the live loop does between ticks, so the dashboard can read
            if second == 6:
                baseline = threads()  # the worker pool's own threads are running by now
    live.finish()
    assert threads() <= baseline, "the chunks' sessions left threads in this process"
    assert live.files[0].chunks >= 14 and len(live.ingested) == 1 and not live.problems
    assert wh.totals("live-run")["count"] == 16 * 2


def release(wh: Warehouse) -> None:
    """Close an embedded warehouse's session now: one process may hold one path at a time."""
    getattr(wh.backend, "release", lambda: None)()


def perfhouse_live(tmp_path: Path, spec: Path, api: DemoAPI, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "--warehouse", f"chdb://{tmp_path / 'wh'}", "run", str(spec),
         "--service", f"api={api.url}", "--runs-dir", str(tmp_path / "runs"), "--live", "--live-interval", "1",
         "--progress-interval", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.integration
@pytest.mark.parametrize("tool", ["k6", "jmeter", "locust"])
def test_a_live_run_grows_in_the_warehouse_and_ends_equal_to_one_ingest_of_its_raw_output(
        tmp_path: Path, tool: str) -> None:
    need(tool)
    spec = tmp_path / "steady.yaml"
    spec.write_text(ONE_JOURNEY.replace("long: {executor: constant_vus, vus: 3, duration: 60s}",
                                        "steady: {executor: constant_vus, vus: 3, duration: 10s}"))
    seen_while_running: list[int] = []
    with DemoAPI() as api:
        proc = perfhouse_live(tmp_path, spec, api, "--profile", "steady", "--tool", tool)
        start = time.monotonic()
        while proc.poll() is None and time.monotonic() - start < 120:
            time.sleep(1)
            if not (tmp_path / "wh").exists():
                continue
            wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")  # takes turns with the run on the lock
            for run in wh.runs():
                if run.status == "running":
                    seen_while_running.append(int(wh.totals(run.run_id)["count"]))
            release(wh)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert any(n > 0 for n in seen_while_running), f"the run never showed rows while it ran: {seen_while_running}"
    assert seen_while_running == sorted(seen_while_running)
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    (run,) = wh.runs()
    run_id = run.run_id
    if tool == "k6":
        assert list(wh.tool_summaries(run_id)) == ["k6-summary.json"], "k6's own summary is kept, as without --live"
    files = wh.backend.query("SELECT path FROM ingested_files FINAL WHERE run_id = {r:String} AND state = 'done'",
                             {"r": run_id})
    assert len(files) > 1 and all("/live/" in str(f["path"]) for f in files), "the raw file is not ingested again"
    live_totals = wh.totals(run_id)
    release(wh)
    raw = next((tmp_path / "runs" / run_id).glob({"k6": "k6.json", "jmeter": "jmeter.jtl", "locust": "locust.jsonl"}[tool]))
    fresh = Warehouse.open(f"chdb://{tmp_path / 'fresh'}")
    result = fresh.ingest(raw)
    fresh_totals = fresh.totals(result.run_id)
    # checks_total of JMeter comes from the spec, which a file ingested alone lacks
    for key in ("count", "errors", "check_failures", "checks_failed", "p50_ms", "p95_ms", "max_ms",
                *(("checks_total",) if tool == "k6" else ())):
        assert live_totals[key] == fresh_totals[key], key
    assert tool != "k6" or live_totals["checks_total"] > 0
    assert live_totals["avg_ms"] == pytest.approx(fresh_totals["avg_ms"], rel=1e-12)
