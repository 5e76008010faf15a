"""The knee of a capacity test: a real k6 run of the four-step capacity preset against a local server that
slows down once more than a known number of requests are in flight."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from orchestrator.run import RunSettings, run_tool
from orchestrator.spec import load_spec
from tests.conftest import need
from tests.support.localhttp import serving
from warehouse.report.report_formats import render_markdown
from warehouse.report.reports import ReportOptions, build_group_report
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

LIMIT = 6  # more requests in flight than this and every answer takes SLOW_S
FAST_S, SLOW_S = 0.004, 0.08

# Peak 20 VUs: steps at 2, 5, 10 and 20 VUs, each VU always has one request in flight (no think time), so
# the steps of 2 and 5 stay under the limit and the step of 10 is the first past it.
SPEC = """
name: knee
services:
  api: {url}
journeys:
  - name: probe
    steps:
      - name: work
        path: /work
        checks:
          - status: 200
profiles:
  capacity:
    preset: capacity
    vus: 20
    step: 4s
    ramp: 1s
slos:
  - metric: p95
    threshold: 40ms
"""


class _Slowing(BaseHTTPRequestHandler):
    in_flight = 0
    lock = threading.Lock()
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else delayed ACKs add 40 ms to every keep-alive answer

    def do_GET(self) -> None:
        with _Slowing.lock:
            _Slowing.in_flight += 1
            busy = _Slowing.in_flight > LIMIT
        try:
            time.sleep(SLOW_S if busy else FAST_S)
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with _Slowing.lock:
                _Slowing.in_flight -= 1

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_the_knee_of_a_capacity_run_is_the_last_step_under_the_servers_limit(tmp_path: Path) -> None:
    need("k6")
    with serving(_Slowing) as url:
        spec_file = tmp_path / "knee.yaml"
        spec_file.write_text(SPEC.format(url=url), encoding="utf-8")
        wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
        outcome = run_tool(load_spec(spec_file), "k6", wh, "capacity", runs_dir=tmp_path / "runs",
                           settings=RunSettings())
    assert outcome.status == "completed", outcome.notes
    doc = build_group_report(wh, wh.run_group(outcome.run_id), ReportOptions())
    capacity = doc.runs[0].capacity
    assert capacity is not None, "a four-step capacity run is recognised as stepped"
    steps = {s.level: s for s in capacity.steps}
    assert sorted(steps) == [2, 5, 10, 20], json.dumps(capacity.to_dict(), indent=1)
    assert [steps[v].met for v in (2, 5, 10, 20)] == [True, True, False, False], json.dumps(capacity.to_dict(), indent=1)
    assert capacity.knee == 5
    assert steps[10].missed == ["overall p95 < 40 ms"]
    markdown = render_markdown(doc).text
    assert "Knee: 5 VUs" in markdown and "## Capacity" in markdown
