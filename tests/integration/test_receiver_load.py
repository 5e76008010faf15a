"""`perfhouse receive` under load and abuse: many concurrent writers lose nothing, gzip bombs stay small, bad bodies
get a 4xx that names the write's own line, and a client that goes away leaves no traceback."""

from __future__ import annotations

import gzip
import http.client
import signal
import socket
import threading
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from orchestrator.receiver import WORKER_STORES
from tests.integration.test_receiver import NS, ReceiverProcess
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

# Fifty writers at once, each answered before it sends its next write: every round of writes is one or two stores
# (a store a round at best), so thirty rounds make more stores than a worker process makes before it is replaced.
WRITERS, WRITES = 50, 30


def answer(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """POST a write on a connection of its own (as many pods starting at once do); the status and body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=300)
    try:
        conn.request("POST", "/write?db=perfhouse&precision=ns", body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def point(writer: int, i: int) -> bytes:
    ts = NS + (writer * 1_000_000 + i) * 1000  # a microsecond apart: the precision of requests.ts
    return (f"http_reqs,name=w{writer},status=200 value=1 {ts}\n"
            f"http_req_duration,name=w{writer},status=200 value={i + 1} {ts}\n").encode()


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


def test_fifty_concurrent_writers_get_every_write_acknowledged_and_stored_once(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'wh'}"
    receiver = ReceiverProcess(url, "--flush-interval", "0.2")
    statuses: list[int] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for i in range(WRITES):
            status, _ = answer(receiver.url, point(n, i))
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    summary = receiver.stop()
    assert statuses.count(204) == WRITERS * WRITES, {s: statuses.count(s) for s in set(statuses)}
    stores = sum(1 for line in summary.splitlines() if line.startswith("stored "))
    assert stores > WORKER_STORES, f"{stores} stores: the writes never reached a fresh worker process"
    wh = Warehouse.open(url)
    rows = wh.backend.query(
        "SELECT count() AS n, uniqExact(step, ts) AS distinct_requests FROM requests WHERE run_id = {r:String}",
        {"r": receiver.run_id})[0]
    assert (rows["n"], rows["distinct_requests"]) == (WRITERS * WRITES, WRITERS * WRITES)
    points = wh.backend.query("SELECT count() AS n FROM k6_points WHERE run_id = {r:String}", {"r": receiver.run_id})
    assert points[0]["n"] == 2 * WRITERS * WRITES


def bomb(plain_bytes: int) -> bytes:
    """A gzip member of `plain_bytes` zeros (about a thousandth of that compressed)."""
    pack = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    parts = [pack.compress(block) for _ in range(plain_bytes >> 20)]
    return b"".join([*parts, pack.flush()])


def test_four_concurrent_gzip_bombs_are_refused_within_a_bounded_memory(tmp_path: Path) -> None:
    receiver = ReceiverProcess(f"chdb://{tmp_path / 'wh'}")
    body = bomb(1 << 30)
    answers: list[tuple[int, str]] = []
    threads = [threading.Thread(target=lambda: answers.append(answer(receiver.url, body, {"Content-Encoding": "gzip"})))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    peak = peak_rss_bytes(receiver.proc.pid)
    receiver.stop()
    assert [status for status, _ in answers] == [413] * 4, answers
    assert peak < 1 << 30, f"the receiver peaked at {peak >> 20} MiB"


def test_bad_bodies_get_a_4xx_naming_the_writes_own_line_and_no_server_path(tmp_path: Path) -> None:
    receiver = ReceiverProcess(f"chdb://{tmp_path / 'wh'}")
    good = point(0, 0)
    corrupt = bytearray(gzip.compress(good * 200))
    corrupt[len(corrupt) // 2] ^= 0xFF
    cases = {
        "cut short gzip": (gzip.compress(good * 200)[:-30], {"Content-Encoding": "gzip"}),
        "corrupt gzip": (bytes(corrupt), {"Content-Encoding": "gzip"}),
        "gzip then garbage": (gzip.compress(good) + b"garbage", {"Content-Encoding": "gzip"}),
        "absurd timestamp": (b"vus value=1 99999999999999999999\n", {}),
        "negative duration": (b"http_req_duration,name=a value=-5 1706738701000000000\n", {}),
        "NaN value": (b"vus value=NaN 1706738701000000000\n", {}),
    }
    for what, (body, headers) in cases.items():
        status, text = answer(receiver.url, body, headers)
        assert status == 400, (what, status, text)
        assert "/tmp" not in text and "perfhouse-" not in text, (what, text)
    status, text = answer(receiver.url, b"# comment\nvus value=1 1706738701000000000\nvus value=1 -7\n")
    assert status == 400 and "partial write: 1 lines dropped" in text and "line 3:" in text, text
    status, text = answer(receiver.url, b"vus value=1 1706738701000000001\n\nvus value=2 1e30\n")
    assert status == 400 and "line 3:" in text, text  # the write's own line number, not the batch file's
    # a client that goes away before its answer: no traceback on the receiver's stderr
    where = urlsplit(receiver.url)
    for _ in range(5):
        with socket.create_connection((where.hostname, where.port)) as sock:
            sock.sendall(b"POST /write?db=perfhouse HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n" + good[:40])
            sock.shutdown(socket.SHUT_RDWR)
    assert answer(receiver.url, point(0, 1))[0] == 204
    receiver.proc.send_signal(signal.SIGTERM)
    _, stderr = receiver.proc.communicate(timeout=120)
    assert receiver.proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    assert wh.backend.query("SELECT count() AS n FROM k6_points WHERE metric = 'vus'")[0]["n"] == 2
