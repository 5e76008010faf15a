"""Receiver benchmark (a command, not a test): points/s `perfhouse receive` stores against `ingest` of the same points.

    python benchmarks/receive.py [--points 400000] [--clients 8] [--write-lines 10000] [--work DIR] [--tiny]

Captures what a real k6 run sends with `--out influxdb` (its writes, as they arrive), replicates them with
shifted timestamps (every copy distinct, like one long run) to about `--points` points, then from ONE run
prints: points/s of `perfhouse ingest --format influx-line` of those points as one file (child process),
points/s the receiver (`perfhouse receive`, a child process) stores when `--clients` clients post the same
points as k6-sized writes at once, each waiting for its acknowledgement: overall, and sustained (from the first
acknowledgement to the last, so without the store worker's start), and the sustained ratio against the target.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import add_tiny, find_tool, tiny_sizes  # noqa: E402

TARGET = 0.5
INGEST = """
import json, sys, time
from warehouse.store import Warehouse
wh = Warehouse.open(sys.argv[1])
t = time.perf_counter()
r = wh.ingest(sys.argv[2], fmt="influx-line")
print(json.dumps({"seconds": time.perf_counter() - t, "points": r.points, "rows": r.rows}))
"""


def capture_k6_writes(work: Path) -> list[bytes]:
    """The bodies a real k6 run POSTs to /write (a few seconds on the demo API)."""
    from orchestrator.demo_api import DemoAPI

    bodies: list[bytes] = []

    class Capture(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.startswith("/write"):
                bodies.append(body)
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    script = work / "probe.js"
    with DemoAPI() as api:
        script.write_text(
            'import http from "k6/http";\n'
            'export const options = { vus: 2, duration: "3s" };\n'
            f'export default function () {{ http.get("{api.url}/products?category=books"); '
            f'http.get("{api.url}/nope"); }}\n',
            encoding="utf-8",
        )
        subprocess.run([find_tool("k6", "benchmarks/receive.py"), "run", "--quiet", "--out", f"influxdb=http://127.0.0.1:{server.server_address[1]}/b",
                        str(script)], check=True, capture_output=True, timeout=300)
    server.shutdown()
    return bodies


def replicate(seed: list[bytes], points: int, write_lines: int) -> list[bytes]:
    """Copies of the seed's points one after the other in time until about `points` points, cut into writes of
    about `write_lines` lines, each cut between two timestamps (as k6 never splits a request's points)."""
    seed_lines = [line for body in seed for line in body.splitlines() if line.strip()]
    stamps = [int(line.rsplit(b" ", 1)[1]) for line in seed_lines]
    span = max(stamps) - min(stamps) + 1_000_000_000
    out: list[bytes] = []
    current: list[bytes] = []
    last, total, copy = b"", 0, 0
    while total < points:
        for line in seed_lines:
            head, _, ts = line.rpartition(b" ")
            stamp = str(int(ts) + copy * span).encode()
            if len(current) >= write_lines and stamp != last:
                out.append(b"\n".join(current) + b"\n")
                current = []
            current.append(head + b" " + stamp)
            last = stamp
            total += 1
        copy += 1
    out.append(b"\n".join(current) + b"\n")
    return out


def post(port: int, body: bytes) -> tuple[int, float]:
    """The receiver's answer to one write, and when it came."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request("POST", "/write?db=bench&precision=ns", body=body)
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter()
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=400_000)
    parser.add_argument("--clients", type=int, default=8,
                        help="writes in flight at once (k6 sends up to 4 at once per generator)")
    parser.add_argument("--write-lines", type=int, default=10_000,
                        help="lines per write (k6 at ~800 requests/s sends about this many each second)")
    parser.add_argument("--work", type=Path, default=None)
    add_tiny(parser)
    args = tiny_sizes(parser.parse_args(), points=20_000, clients=2, write_lines=4_000)  # three stores of two writes
    with tempfile.TemporaryDirectory(prefix="perfhouse-bench-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        writes = replicate(capture_k6_writes(work), args.points, args.write_lines)
        points = sum(w.count(b"\n") for w in writes)
        lp = work / "points.lp"
        lp.write_bytes(b"".join(writes))
        print(f"{points} points in {len(writes)} writes of ~{len(writes[0]) >> 10} KiB (real k6 writes, replicated)")

        child = subprocess.run([sys.executable, "-c", INGEST, f"chdb://{work / 'wh-ingest'}", str(lp)],
                               capture_output=True, text=True, check=True, cwd=ROOT)
        ingest = json.loads(child.stdout)
        ingest_rate = ingest["points"] / ingest["seconds"]

        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "--warehouse", f"chdb://{work / 'wh-receive'}", "receive",
             "--listen", "127.0.0.1:0", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )
        assert proc.stderr is not None
        first = proc.stderr.readline()
        port = int(first.split(" at ")[1].split()[0].rsplit(":", 1)[1])
        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            answers = list(pool.map(lambda body: post(port, body), writes))
        seconds = time.perf_counter() - started
        statuses = [status for status, _ in answers]
        # Sustained: from the first acknowledgement to the last, the points of the writes acknowledged after
        # the first store (the worker's start and the first flush interval are left out).
        first = min(at for _, at in answers)
        later = [(w.count(b"\n"), at) for w, (_, at) in zip(writes, answers, strict=True) if at > first + 0.05]
        sustained_s = max(at for _, at in later) - first if later else seconds
        proc.terminate()
        out, err = proc.communicate(timeout=600)
        received = json.loads(out.strip().splitlines()[-1])
        if set(statuses) != {204} or received["points"] != ingest["points"]:
            raise SystemExit(f"receiver answered {sorted(set(statuses))}, stored {received['points']} points "
                             f"of {ingest['points']}: {err[-500:]}")
        receive_rate = received["points"] / seconds
        sustained = sum(n for n, _ in later) / sustained_s if later else receive_rate
        ratio = sustained / ingest_rate
        print(f"ingest of one file:      {ingest_rate:>10,.0f} points/s ({ingest['seconds']:.1f} s)")
        print(f"receive ({args.clients} clients):     {receive_rate:>10,.0f} points/s overall ({seconds:.1f} s, "
              f"{received['batches']} batches, the first store's start included)")
        print(f"receive, sustained:      {sustained:>10,.0f} points/s (from the first acknowledgement to the last)")
        print(f"  receive sustained / file ingest: {ratio:.2f} (target >= {TARGET:g}) {'met' if ratio >= TARGET else 'NOT MET'}")


if __name__ == "__main__":
    main()
