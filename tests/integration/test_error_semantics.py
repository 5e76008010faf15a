"""One journey run by k6 and by JMeter: request errors and failed checks mean the same in both tools' rows.

A local server answers deterministically: every 4th body of `/status` lacks the text a check looks for
(a failed check on a 200, not a request error), `/missing` answers 404 where the step's `expected_statuses` says 404
(no error), and every 5th answer of `/flaky` is a 503 in a step without a status check (a request error).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator.run import run_tool
from orchestrator.spec import load_spec
from tests.conftest import need
from warehouse.report.report_formats import report as render_report
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

VUS, ITERATIONS = 2, 10
REQUESTS = VUS * ITERATIONS  # per step
SPEC = f"""
name: errsem
services:
  api: http://127.0.0.1:9
journeys:
  - name: poll
    steps:
      - name: status
        path: /status
        query: {{q: "a b"}}
        checks:
          - status: 200
          - body_contains: '"ok"'
      - name: gone
        path: /missing
        expected_statuses: 404
        checks:
          - status: 404
      - name: flaky
        path: /flaky
profiles:
  fixed: {{executor: iterations, vus: {VUS}, iterations: {ITERATIONS}}}
slos:
  - {{metric: error_rate, threshold: 10%}}
  - {{metric: check_failure_rate, threshold: 5%}}
  - {{metric: check_failure_rate, threshold: 30%, step: status}}
"""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        with self.server.lock:
            n = next(self.server.counters.setdefault(path, itertools.count(1)))
        status, body = 404, {"error": "no such path"}
        if path == "/status":
            status, body = 200, {"status": "degraded" if n % 4 == 0 else "ok"}
        elif path == "/flaky":
            status, body = (503, {"status": "busy"}) if n % 5 == 0 else (200, {"status": "fine"})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.counters: dict[str, Iterator[int]] = {}


def serve() -> tuple[_Server, str]:
    server = _Server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def run(tool: str, wh: Warehouse, tmp_path: Path) -> str:
    need(tool)
    tmp_path.mkdir()
    spec_path = tmp_path / "errsem.yaml"
    spec_path.write_text(SPEC, encoding="utf-8")
    server, url = serve()  # a fresh server per tool: the same answers in the same order
    try:
        outcome = run_tool(load_spec(spec_path), tool, wh, "fixed", {"api": url}, runs_dir=tmp_path / "runs")
    finally:
        server.shutdown()
        server.server_close()
    assert outcome.status == "completed", outcome.notes
    return outcome.run_id


STEP_FIGURES = ("count", "errors", "check_failures", "checks_total", "checks_failed")


def test_k6_and_jmeter_count_the_same_request_errors_and_failed_checks(
    any_warehouse_url: str, tmp_path: Path
) -> None:
    wh = Warehouse.open(any_warehouse_url)
    runs = {tool: run(tool, wh, tmp_path / tool) for tool in ("k6", "jmeter")}
    steps = {tool: {s.step: tuple(getattr(s, k) for k in STEP_FIGURES) for s in wh.step_stats(run_id)}
             for tool, run_id in runs.items()}
    assert steps["k6"] == steps["jmeter"] == {
        # every 4th body lacks "ok": failed checks on 200s, no request error; 2 checks a request
        "status": (REQUESTS, 0, REQUESTS // 4, 2 * REQUESTS, REQUESTS // 4),
        # the 404 the step expects: neither
        "gone": (REQUESTS, 0, 0, REQUESTS, 0),
        # every 5th answer a 503 where a 2xx/3xx is expected: request errors, and no checks to fail
        "flaky": (REQUESTS, REQUESTS // 5, 0, 0, 0),
    }
    for tool, run_id in runs.items():
        rows = wh.backend.query(
            "SELECT step, status, ok, checks, failed_checks, failed_check, error, method, vu FROM requests "
            "WHERE run_id = {r:String} AND (ok = 0 OR failed_checks > 0)", {"r": run_id})
        assert {(r["step"], r["status"], r["ok"], r["checks"], r["failed_checks"]) for r in rows} == {
            ("status", 200, 1, 2, 1), ("flaky", 503, 0, 0, 0)}, tool
        checks = {r["failed_check"] for r in rows if r["failed_checks"]}
        # k6 names the check; JMeter's CSV has the first failed assertion's message
        assert checks == ({'body contains "ok"'} if tool == "k6" else {'Test failed: text expected to contain /"ok"/'})
        assert {r["method"] for r in rows} == {"GET"} and all(r["vu"] for r in rows), tool
        verdicts = {v.slo: v.passed for v in wh.slo_verdicts(run_id)}
        assert verdicts == {
            "overall error_rate < 10% (request errors)": True,  # 4 of 60
            "overall check_failure_rate < 5% (failed checks)": False,  # 5 of 60
            "status check_failure_rate < 30% (failed checks)": True,  # 5 of 20
        }, tool
        report = render_report(wh, [run_id], "md").text
        assert f"request errors: {REQUESTS // 5} " in report and f"with a failed check: {REQUESTS // 4} " in report
    k6_urls = {r["url"] for r in wh.backend.query(
        "SELECT DISTINCT url FROM requests WHERE run_id = {r:String}", {"r": runs["k6"]})}
    jmeter_urls = {r["url"].split("/", 3)[3] for r in wh.backend.query(
        "SELECT DISTINCT url FROM requests WHERE run_id = {r:String}", {"r": runs["jmeter"]})}
    # k6 reports a named request's name as its URL: the warehouse keeps no URL for it rather than a wrong one
    assert k6_urls == {""} and jmeter_urls == {"status?q=a+b", "missing", "flaky"}
