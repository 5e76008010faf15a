"""Prometheus scraping during a run: the exposition parser, and samples from a local endpoint in the run."""

from __future__ import annotations

import math
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from orchestrator.demo_api import DemoAPI
from orchestrator.run import RunSettings, run_tool
from orchestrator.scrape import Sample, ScrapeSourceError, container_samples, parse_exposition
from orchestrator.spec import load_spec
from tests.conftest import ROOT, need
from tests.support.localhttp import serving
from warehouse.store import Warehouse

EXPOSITION = """# HELP process_cpu_seconds_total Total user and system CPU time.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
# a free comment
http_requests_total{method="GET",path="/a \\"quoted\\"\\\\x",code="200"} 1027 1700000000123
pool_in_use{pool="db",} 3
temperature NaN
limit_bytes +Inf

broken{oops} 1
"""


def test_exposition_samples_skip_comments_and_unescape_labels() -> None:
    samples, problems = parse_exposition(EXPOSITION)
    assert samples[:3] == [
        Sample("process_cpu_seconds_total", {}, 12.5),
        Sample("http_requests_total", {"method": "GET", "path": '/a "quoted"\\x', "code": "200"}, 1027.0,
               1700000000123),
        Sample("pool_in_use", {"pool": "db"}, 3.0),
    ]
    assert math.isnan(samples[3].value) and samples[4].value == math.inf
    assert len(samples) == 5
    assert len(problems) == 1 and problems[0].startswith("line 10:")


class Exposition(BaseHTTPRequestHandler):
    scrapes = 0

    def do_GET(self) -> None:
        Exposition.scrapes += 1
        body = (
            "# HELP sut_connections Open connections.\n# TYPE sut_connections gauge\n"
            f'sut_connections{{pool="db"}} {Exposition.scrapes}\nsut_cpu_ratio 0.25\n'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def exposition() -> Iterator[str]:
    with serving(Exposition, "/metrics") as url:
        yield url


@pytest.mark.integration
def test_samples_from_a_local_endpoint_land_in_the_run(tmp_path: Path, exposition: str,
                                                       demo_api: DemoAPI) -> None:
    need("k6")
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    spec = load_spec(ROOT / "examples" / "shop.yaml")
    unreachable = "http://127.0.0.1:9/metrics"
    outcome = run_tool(spec, "k6", wh, "smoke", {"api": demo_api.url}, runs_dir=tmp_path / "runs",
                       settings=RunSettings(scrape=(exposition, unreachable), scrape_interval_s=0.3))
    assert outcome.status == "completed"
    rows = wh.infra_samples(outcome.run_id)
    assert outcome.infra_samples == len(rows) >= 4  # at least a scrape at the start and one at the end
    assert {r.source for r in rows} == {exposition}
    assert {r.metric for r in rows} == {"sut_connections", "sut_cpu_ratio"}
    connections = [r for r in rows if r.metric == "sut_connections"]
    assert all(r.labels == {"pool": "db"} for r in connections)
    assert [r.value for r in connections] == sorted(r.value for r in connections)
    assert any(n.startswith(f"scrape {unreachable}:") for n in outcome.notes), "a dead endpoint is one note"


def test_an_unknown_kind_of_source_is_refused_before_anything_runs(tmp_path: Path) -> None:
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    spec = load_spec(ROOT / "examples" / "shop.yaml")
    with pytest.raises(ScrapeSourceError, match="expected http"):
        run_tool(spec, "k6", wh, "smoke", settings=RunSettings(scrape=("ftp://127.0.0.1/metrics",)))
    assert wh.runs() == []


def test_docker_stats_become_cadvisor_style_samples() -> None:
    stats = {
        "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000_000}, "system_cpu_usage": 20_000, "online_cpus": 2},
        "precpu_stats": {"cpu_usage": {"total_usage": 2_999_999_000}, "system_cpu_usage": 18_000},
        "memory_stats": {"usage": 1024, "limit": 4096},
        "networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 20}},
    }
    samples = {(s.metric, tuple(sorted(s.labels.items()))): s.value for s in container_samples("db", stats)}
    db = (("container", "db"),)
    assert samples[("container_cpu_usage_seconds_total", db)] == 3.0
    assert samples[("container_cpu_ratio", db)] == pytest.approx(1000 / 2000 * 2)
    assert samples[("container_memory_usage_bytes", db)] == 1024
    assert samples[("container_network_transmit_bytes_total", (("container", "db"), ("interface", "eth0")))] == 20
