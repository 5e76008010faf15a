"""`perfhouse receive`: the InfluxDB v1 write API into a run, against real k6 writes and a receiver killed mid-stream."""

from __future__ import annotations

import base64
import gzip
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from orchestrator.demo_api import DemoAPI
from orchestrator.receiver import Receiver, ReceiverError
from tests.conftest import need
from warehouse.store import RunInfo, Warehouse

pytestmark = pytest.mark.integration

NS = 1_706_738_701_000_000_000


def k6_script(tmp: Path, api: DemoAPI, seconds: str, vus: int = 2) -> Path:
    script = tmp / "probe.js"
    script.write_text(
        'import http from "k6/http";\n'
        'import { sleep } from "k6";\n'
        f'export const options = {{ vus: {vus}, duration: "{seconds}" }};\n'
        f'export default function () {{ http.get("{api.url}/products?category=books"); '
        f'http.get("{api.url}/nope"); sleep(0.01); }}\n',
        encoding="utf-8",
    )
    return script


class ReceiverProcess:
    """`perfhouse receive` as a subprocess on 127.0.0.1:0; `url` is read from its first line."""

    def __init__(self, warehouse_url: str, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "--warehouse", warehouse_url, "receive", "--listen",
             "127.0.0.1:0", "--flush-interval", "0.5", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "CI": "true"},
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert "receiving into run" in first, first + self.proc.stderr.read() if self.proc.stderr else first
        self.run_id = first.split("receiving into run ")[1].split()[0]
        self.url = first.split(" at ")[1].split()[0]

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, err
        return out

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


def post(url: str, body: bytes, headers: dict[str, str] | None = None, path: str = "/write?db=perfhouse") -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
    try:
        conn.request("POST", path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def steps(wh: Warehouse, run_id: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.to_dict().items() if k != "service"} for row in wh.step_stats(run_id)]


def test_a_k6_run_streamed_through_the_receiver_equals_its_json_output(tmp_path: Path, demo_api: DemoAPI) -> None:
    url = f"chdb://{tmp_path / 'wh'}"
    receiver = ReceiverProcess(url)
    out = tmp_path / "k6.json"
    subprocess.run([need("k6"), "run", "--quiet", "--out", f"influxdb={receiver.url}/perfhouse", "--out",
                    f"json={out}", str(k6_script(tmp_path, demo_api, "3s"))],
                   check=True, capture_output=True, timeout=120)
    summary = receiver.stop()
    assert f"run {receiver.run_id}:" in summary and "0 rejected lines" in summary
    wh = Warehouse.open(url)
    from_file = wh.ingest(out).run_id
    streamed = steps(wh, receiver.run_id)
    assert streamed == steps(wh, from_file)
    assert {s["step"] for s in streamed} == {f"{demo_api.url}/products?category=books", f"{demo_api.url}/nope"}
    assert all(s["count"] > 10 for s in streamed)
    run = wh.run(receiver.run_id)
    assert run.status == "completed" and "perfhouse.owner" not in run.labels
    points = wh.backend.query("SELECT run_id, count() AS n FROM k6_points GROUP BY run_id ORDER BY run_id")
    assert points[0]["n"] == points[1]["n"]  # every metric point, not only the requests


def lines(n: int, start: int = 0, step: str = "s") -> bytes:
    return "".join(
        f"http_reqs,name={step},status=200 value=1 {NS + i}\nhttp_req_duration,name={step},status=200 value={i}.5 "
        f"{NS + i}\n" for i in range(start, start + n)
    ).encode()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    wh.save_run(RunInfo("r1", "k6"))
    with Receiver(wh, "r1", "127.0.0.1:0", flush_interval_s=0.2) as rec:
        yield rec


def test_a_write_sent_again_is_acknowledged_and_stored_once(receiver: Receiver) -> None:
    body = lines(50)
    assert post(receiver.url, body) == 204
    assert post(receiver.url, gzip.compress(body), {"Content-Encoding": "gzip"}) == 204  # the same write, gzip
    assert post(receiver.url, lines(10, start=50)) == 204
    wh = receiver.warehouse
    assert wh.totals("r1")["count"] == 60
    assert receiver.stats.again == 1 and receiver.stats.writes == 3


def test_a_write_on_a_kept_alive_connection_after_the_receiver_stopped_is_refused(receiver: Receiver) -> None:
    parts = urlsplit(receiver.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    statuses = []
    for body in (lines(1), None, lines(1, start=1)):
        if body is None:
            receiver.stop()  # what it held is stored; the open connection stays
            continue
        conn.request("POST", "/write?db=perfhouse", body=body)
        response = conn.getresponse()
        response.read()
        statuses.append(response.status)
    conn.close()
    assert statuses == [204, 503]
    assert receiver.warehouse.totals("r1")["count"] == 1


def test_ping_query_and_bad_writes_answer_as_influxdb_does(receiver: Receiver) -> None:
    parts = urlsplit(receiver.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    conn.request("GET", "/ping")
    response = conn.getresponse()
    assert response.status == 204 and response.getheader("X-Influxdb-Version")
    response.read()
    conn.close()
    assert post(receiver.url, b"", path="/query?q=CREATE+DATABASE+perfhouse") == 200
    assert post(receiver.url, b"not line protocol at all\n") == 400
    assert post(receiver.url, b"\x1f\x8bnot gzip", {"Content-Encoding": "gzip"}) == 400
    assert post(receiver.url, lines(1), path="/write?db=perfhouse&precision=fortnights") == 400
    assert post(receiver.url, lines(1), path="/nowhere") == 404


def test_jmeter_backend_listener_writes_land_as_the_same_lines_from_a_file(receiver: Receiver, tmp_path: Path) -> None:
    from tests.integration.test_influx import JMETER_LINES

    body = ("\n".join(JMETER_LINES) + "\n").encode()
    # one bad line: refused as InfluxDB does (400, a partial write), the other lines stored
    assert post(receiver.url, body, path="/write?db=jmeter&precision=ns") == 400
    wh = receiver.warehouse
    lp = tmp_path / "jmeter.lp"
    lp.write_bytes(body)
    from_file = wh.ingest(lp).run_id
    assert wh.aggregates("r1", "count") == wh.aggregates(from_file, "count")
    assert wh.aggregates("r1", "pct95.0") == wh.aggregates(from_file, "pct95.0")
    assert receiver.stats.rejected == 1 and receiver.stats.aggregates > 0


def test_a_busy_port_and_a_listener_beyond_loopback_without_token_are_one_line_errors(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'wh'}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for listen, message in ((f"127.0.0.1:{port}", "cannot listen on 127.0.0.1"),
                                ("0.0.0.0:0", "needs a token"), ("nowhere", "expected HOST:PORT")):
            proc = subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", url, "receive", "--listen",
                                   listen], capture_output=True, text=True, timeout=120,
                                  env={k: v for k, v in os.environ.items() if k != "PERFHOUSE_RECEIVE_TOKEN"})
            lines = proc.stderr.strip().splitlines()
            assert proc.returncode == 1 and len(lines) == 1 and message in lines[0], proc.stderr


def test_beyond_loopback_a_token_is_required_and_checked(tmp_path: Path) -> None:
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    wh.save_run(RunInfo("r1", "k6"))
    with pytest.raises(ReceiverError, match="needs a token"):
        Receiver(wh, "r1", "0.0.0.0:0")
    with Receiver(wh, "r1", "0.0.0.0:0", token="s3cret", flush_interval_s=0.2) as rec:
        basic = base64.b64encode(b"k6:s3cret").decode()
        assert post(rec.url, lines(1, 0)) == 401
        assert post(rec.url, lines(1, 1), {"Authorization": "Token wrong"}) == 401
        assert post(rec.url, lines(1, 2), {"Authorization": "Token s3cret"}) == 204
        assert post(rec.url, lines(1, 3), {"Authorization": f"Basic {basic}"}) == 204
        assert post(rec.url, lines(1, 4), path="/write?db=x&u=k6&p=s3cret") == 204
    assert wh.totals("r1")["count"] == 3


@dataclass
class Forwarded:
    sha: str
    body: bytes
    status: int  # the receiver's answer; 0 when it could not be reached or died before answering
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RecordingProxy:
    """Between k6 and the receiver: forwards each write, keeps it with the receiver's answer (503 to k6 when the
    receiver cannot be reached), and can send a write again the way a client that retries would."""

    upstream: str
    seen: list[Forwarded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def forward(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        import hashlib

        try:
            status = post(self.upstream, body, headers, path)
        except OSError:
            status = 0
        if path.startswith("/write"):
            with self.lock:
                self.seen.append(Forwarded(hashlib.sha256(body).hexdigest(), body, status, path, headers))
        return status

    def acked(self) -> list[Forwarded]:
        with self.lock:
            return [f for f in self.seen if f.status == 204]

    def failed(self) -> list[Forwarded]:
        with self.lock:
            return [f for f in self.seen if f.status != 204]

    def __enter__(self) -> str:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-encoding")}
                status = proxy.forward(self.path, body, headers) or 503
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition: Any, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_receiver_killed_mid_stream_keeps_what_it_acknowledged_and_retries_land_once(
        tmp_path: Path, demo_api: DemoAPI) -> None:
    url = f"chdb://{tmp_path / 'wh'}"
    first = ReceiverProcess(url)
    proxy = RecordingProxy(first.url)
    out = tmp_path / "k6.json"
    with proxy as proxy_url:
        k6 = subprocess.Popen(
            [need("k6"), "run", "--quiet", "--out", f"influxdb={proxy_url}/perfhouse", "--out", f"json={out}",
             str(k6_script(tmp_path, demo_api, "8s", vus=1))],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "K6_INFLUXDB_PUSH_INTERVAL": "250ms"},
        )
        wait_for(lambda: len(proxy.acked()) >= 3, "three acknowledged writes")
        first.kill()  # SIGKILL: no store finishes, no answer is sent
        acked_before_kill = {f.sha for f in proxy.acked()}
        wait_for(lambda: any(f.status == 0 for f in proxy.failed()), "a write refused while no receiver listens")

        second = ReceiverProcess(url, "--run", first.run_id)
        proxy.upstream = second.url
        _, k6_err = k6.communicate(timeout=120)
        assert k6.returncode == 0, k6_err
        # k6 1.1.0 does not send a failed write again (it logs "Couldn't write stats" and drops it): a client
        # that retries (replayed here through the proxy) sends the failed writes again, and the acknowledged
        # ones once more for good measure; the receiver stores each write once.
        assert "Couldn't write stats" in k6_err
        # what else k6 1.1.0 sends: nanosecond precision, plain (not gzip) bodies
        assert all("precision=ns" in f.path and "content-encoding" not in {k.lower() for k in f.headers}
                   for f in proxy.seen)
        lost = proxy.failed()
        assert lost
        for write in [*lost, *proxy.seen[:5]]:
            assert post(second.url, write.body) == 204
        summary = second.stop()
        assert "sent again" in summary and " 0 sent again" not in summary

    wh = Warehouse.open(url)
    assert wh.run(first.run_id).status == "aborted"  # the receiver that started it was killed
    stored = {str(r["sha256"]) for r in wh.backend.query(
        "SELECT sha256 FROM received_writes WHERE batch_sha256 IN "
        "(SELECT sha256 FROM ingested_files FINAL WHERE state = 'done')")}
    assert acked_before_kill <= stored
    from_file = wh.ingest(out).run_id
    assert steps(wh, first.run_id) == steps(wh, from_file)  # nothing lost, nothing twice


def test_stores_into_an_embedded_warehouse_leave_no_threads_behind_in_the_receiver(receiver: Receiver) -> None:
    """Each chdb session opened in a process leaves threads there: the receiver stores through a worker."""

    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    assert post(receiver.url, lines(5)) == 204
    before = threads()
    for n in range(8):
        time.sleep(1.5)  # past the embedded session's linger: each store opens a session afresh
        assert post(receiver.url, lines(5, start=100 * (n + 1))) == 204
    assert threads() <= before + 2
    assert receiver.stats.batches == 9
