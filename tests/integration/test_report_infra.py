"""Infrastructure in the report: a real k6 run with --scrape of a local Prometheus endpoint whose CPU gauge
rises with the load; the report charts the series on the latency's time axis and names it as correlated."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path, PurePosixPath

import pytest

from orchestrator.run import RunSettings, run_tool
from orchestrator.spec import load_spec
from tests.conftest import need
from tests.support.localhttp import serving
from warehouse.report.report_formats import figures, render_html, render_markdown
from warehouse.report.reports import ReportOptions, build_group_report
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

SPEC = """
name: busy
services:
  api: {url}
journeys:
  - name: probe
    steps:
      - name: work
        path: /work
profiles:
  ramp:
    executor: ramping_vus
    stages:
      - duration: 9s
        target: 12
"""


class _Busy(BaseHTTPRequestHandler):
    """/work takes 20 ms per open client connection (k6 keeps one per VU; 20 ms, so that the latency the load adds
    stands well above what a loaded machine adds); /metrics exposes the connections as a CPU ratio, and a
    constant."""

    connections = 0
    lock = threading.Lock()
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        with _Busy.lock:
            _Busy.connections += 1

    def finish(self) -> None:
        with _Busy.lock:
            _Busy.connections -= 1
        super().finish()

    def do_GET(self) -> None:
        with _Busy.lock:
            load = _Busy.connections
        if self.path == "/metrics":
            self._answer(f"# TYPE sut_cpu_ratio gauge\nsut_cpu_ratio {load / 16}\n"
                         f"# TYPE sut_threads gauge\nsut_threads 64\n".encode(), "text/plain; version=0.0.4")
            return
        time.sleep(0.020 * load)
        self._answer(b'{"ok": true}', "application/json")

    def _answer(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_scraped_cpu_series_that_rises_with_the_load_is_charted_and_named_correlated(tmp_path: Path) -> None:
    need("k6")
    with serving(_Busy) as url:
        spec_file = tmp_path / "busy.yaml"
        spec_file.write_text(SPEC.format(url=url), encoding="utf-8")
        wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
        outcome = run_tool(load_spec(spec_file), "k6", wh, "ramp", runs_dir=tmp_path / "runs",
                           settings=RunSettings(scrape=(f"{url}/metrics",), scrape_interval_s=0.25))
    assert outcome.status == "completed", outcome.notes
    doc = build_group_report(wh, wh.run_group(outcome.run_id), ReportOptions())
    report = doc.runs[0]
    assert report.verdict == "NO SLOS"
    series = {s.name: s for s in report.infra.series}
    assert set(series) == {"sut_cpu_ratio", "sut_threads"}
    cpu = series["sut_cpu_ratio"]
    assert cpu.correlated and cpu.correlation is not None and cpu.correlation >= 0.6, cpu.correlation
    assert series["sut_threads"].correlation is None and not series["sut_threads"].correlated
    assert report.infra.correlated == ["sut_cpu_ratio"]
    # on the latency's time axis: the series is bucketed like the timeline (scrapes also precede the first
    # request and follow the last one)
    shared = {p.t for p in cpu.points} & {r.t for r in report.timeline}
    assert len(shared) >= len(report.timeline) - 2 >= 6

    chart = next(f for f in figures(report) if f.key == "infrastructure").chart.to_dict()
    charted = {row.get("series") for data in chart["datasets"].values() for row in data}
    assert "sut_cpu_ratio" in charted

    markdown = render_markdown(doc, PurePosixPath("report.md"))
    assert "Correlated with latency (Pearson r ≥ 0.6 against P95 per bucket): `sut_cpu_ratio`." in markdown.text
    assert "![Infrastructure and latency](report_files/infrastructure.png)" in markdown.text
    assert markdown.files["report_files/infrastructure.png"].startswith(b"\x89PNG")
    page = render_html(doc).text
    assert 'data-chart="infrastructure"' in page and "sut_cpu_ratio" in page
