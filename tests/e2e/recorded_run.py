"""A real k6 run against a local HTTP server, ingested into a chdb warehouse: what the dashboard tests draw.

The server answers three steps differently so every panel has something to show: `browse/list` is
fast, `browse/detail` takes 2-25 ms, and `checkout/pay` answers 503 to every third request. It also
serves its own process's figures as a Prometheus endpoint (`/metrics`), scraped during the run, so the
run carries real infrastructure samples.
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from orchestrator.scrape import InfraRow, Scraper
from tests.conftest import need
from tests.support.localhttp import serving
from warehouse.analysis import slo
from warehouse.analysis.slo import Objective
from warehouse.store import RunInfo, Warehouse

SCRIPT = """
import http from 'k6/http';
import { sleep } from 'k6';

export const options = {
  stages: [{ duration: '%(ramp)ds', target: %(vus)d }, { duration: '%(hold)ds', target: %(vus)d }],
};

export default function () {
  const base = __ENV.BASE;
  http.get(`${base}/items`, { tags: { journey: 'browse', step: 'list' } });
  http.get(`${base}/items/${__ITER %% 50}`, { tags: { journey: 'browse', step: 'detail' } });
  http.post(`${base}/pay`, '{}', { tags: { journey: 'checkout', step: 'pay' } });
  sleep(0.02);
}
"""

# The latency objectives pass by a wide margin (the demo API answers in a few ms; a loaded 2-core machine has
# stretched its p99 past 100 ms), so that exactly one objective fails, whatever the machine's load.
SLOS = [
    Objective("p95", 5000.0),
    Objective("p99", 3000.0, journey="browse", step="list"),
    Objective("error_rate", 0.01, journey="checkout", step="pay"),  # fails: a third of payments fail
]


class _Shop(BaseHTTPRequestHandler):
    payments = 0
    served = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        if self.path == "/metrics":
            self._answer(200, _exposition(), "text/plain; version=0.0.4")
            return
        with _Shop.lock:
            _Shop.served += 1
        if self.path.startswith("/items/"):
            time.sleep(random.uniform(0.002, 0.025))
        self._answer(200, b'{"items": []}')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with _Shop.lock:
            _Shop.payments += 1
            failed = _Shop.payments % 3 == 0
        self._answer(503 if failed else 201, b'{"error": "busy"}' if failed else b'{"paid": true}')

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _exposition() -> bytes:
    """This process's CPU time, peak memory and thread count, and the shop's GET count, as Prometheus text."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    lines = [
        "# TYPE process_cpu_seconds_total counter",
        f"process_cpu_seconds_total {usage.ru_utime + usage.ru_stime:.6f}",
        "# TYPE process_max_resident_memory_bytes gauge",
        f"process_max_resident_memory_bytes {usage.ru_maxrss * 1024}",
        "# TYPE process_threads gauge",
        f"process_threads {threading.active_count()}",
        "# TYPE shop_get_requests_total counter",
        f'shop_get_requests_total{{service="shop"}} {_Shop.served}',
    ]
    return ("\n".join(lines) + "\n").encode()


@contextmanager
def shop() -> Iterator[str]:
    """The system under test on 127.0.0.1 at a free port; yields its base URL."""
    with serving(_Shop) as url:
        yield url


def record_k6_json(directory: Path, seconds: int = 2, vus: int = 3, infra: list[InfraRow] | None = None) -> Path:
    """Run k6 for about `seconds` against the local shop and return its `--out json` file; the shop's
    `/metrics` scraped every half second meanwhile are appended to `infra`."""
    k6 = need("k6")
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "shop.js"
    ramp = max(1, seconds // 3)
    script.write_text(SCRIPT % {"ramp": ramp, "hold": max(1, seconds - ramp), "vus": vus}, encoding="utf-8")
    out = directory / "k6.json"
    with shop() as base:
        scraper = Scraper((f"{base}/metrics",), interval_s=0.5, timeout_s=2)
        scraper.start()
        try:
            done = subprocess.run([k6, "run", "--quiet", "--no-usage-report", "--out", f"json={out}", "-e",
                                   f"BASE={base}", str(script)], capture_output=True, text=True, timeout=120)
        finally:
            scraper.stop()
    assert not scraper.problems, scraper.problems
    if infra is not None:
        infra.extend(scraper.rows)
    assert done.returncode == 0, f"k6 failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return out


@dataclass(frozen=True)
class Recorded:
    url: str
    run_id: str
    requests: int
    infra_samples: int = 0


def recorded_warehouse(directory: Path, seconds: int = 2, vus: int = 3) -> Recorded:
    """A warehouse in `directory` holding one ingested k6 run with its SLOs evaluated and the shop's
    infrastructure samples."""
    infra: list[InfraRow] = []
    path = record_k6_json(directory / "k6", seconds, vus, infra)
    url = f"chdb://{directory / 'warehouse'}"
    wh = Warehouse.open(url)
    result = wh.ingest(path)
    assert result.rows > 0 and result.rejected == 0, result
    slo.evaluate(wh.backend, result.run_id, SLOS)
    wh.add_infra_samples(result.run_id, infra)
    return Recorded(url, result.run_id, result.rows, len(infra))


HISTORY_FINGERPRINT = "fp-dashboard-history"
FACTORS = (1.0, 1.02, 0.98, 1.01, 0.99, 1.6, 1.62, 1.58)  # each run's durations against the recorded run's


def scaled_k6_json(raw: Path, out: Path, factor: float) -> Path:
    """Recorded k6 output with every request's duration times `factor` (all else as k6 wrote it)."""
    with raw.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in src:
            point = json.loads(line)
            if point.get("type") == "Point" and point.get("metric") == "http_req_duration":
                point["data"]["value"] *= factor
            dst.write(json.dumps(point) + "\n")
    return out


def record_history(url: str, raw: Path, directory: Path, factors: tuple[float, ...] = FACTORS) -> list[str]:
    """A history of comparable runs (one fingerprint, an hour apart from 2026-01-01 10:00, each its own
    invocation `invocation-N`) made from one recorded k6 output, its durations scaled by `factors`: with the
    default ones, the sixth run is 60 % slower than the five before. The run ids, oldest first."""
    wh = Warehouse.open(url)
    runs = []
    for i, factor in enumerate(factors):
        hour = f"2026-01-01 {10 + i:02d}:00"
        info = RunInfo(f"2026010{i}-100000-k6-history", "k6", status="completed", name="shop ci", spec_name="shop",
                       profile="ci", fingerprint=HISTORY_FINGERPRINT, group_id=f"invocation-{i}",
                       started_at=f"{hour}:00.500", ended_at=f"{hour}:03.000")
        wh.save_run(info)
        result = wh.ingest(scaled_k6_json(raw, directory / f"k6-history-{i}.json", factor), info)
        assert result.rows > 0 and result.rejected == 0, result
        runs.append(info.run_id)
    return runs
