"""`perfhouse report --format html` opened in headless Chromium with the network cut off: the page loads nothing,
runs no script, and draws every chart (each one's marks are drawn and fill its box).

The screenshots are for a person to look at: tests/e2e/artifacts/report-*.png.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import need
from tests.e2e.browser import Chromium
from tests.e2e.recorded_run import recorded_warehouse
from tests.e2e.test_dashboard_screenshot import colourful_fraction
from tests.integration.test_report_golden import RUN, golden_document

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).parent / "artifacts"
WIDTH, HEIGHT = 1200, 4400
OFFLINE = ("--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>")

# Every chart: its SVG, the marks drawn in it (paths with a shape, bars, symbols), and its size on the page.
PAGE_STATE = """(() => {
  const charts = [...document.querySelectorAll('figure.chart')].map(f => {
    const svg = f.querySelector('svg');
    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    const marks = svg ? [...svg.querySelectorAll('g.role-mark path, g.role-mark rect, g.role-mark line')]
      .filter(m => (m.getAttribute('d') || '').length > 8 || m.tagName !== 'path').length : 0;
    return {key: f.dataset.chart, marks, x: box.left, y: box.top, width: box.width, height: box.height};
  });
  const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
  return {
    ready: document.readyState === 'complete',
    charts,
    scripts: document.scripts.length,
    resources: performance.getEntriesByType('resource').map(r => r.name),
    duplicateIds: ids.length - new Set(ids).size,
    title: document.title,
  };
})()"""


def report_html(warehouse_url: str, run_id: str, out: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", warehouse_url, "report", run_id,
                           "--format", "html", "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


def look_at(page: Path, shot: Path, profile: Path) -> dict:
    with Chromium(need("chromium"), profile, WIDTH, HEIGHT, flags=OFFLINE) as browser:
        browser.open(page.resolve().as_uri())
        state = browser.wait_for(PAGE_STATE, timeout_s=60, settle_s=0.5)
        browser.screenshot(shot)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("# screenshots for people to look at, never committed\n*\n")
    shutil.copy(shot, ARTIFACTS / shot.name)
    return dict(state)


def assert_drawn(state: dict, page: Path, shot: Path, charts: set[str]) -> None:
    assert state["scripts"] == 0 and state["resources"] == [], "the report fetched or ran something"
    assert state["duplicateIds"] == 0, "SVG ids collide between charts"
    assert {c["key"] for c in state["charts"]} == charts
    for chart in state["charts"]:
        assert chart["marks"] > 0, f"chart {chart['key']} is empty"
        assert chart["width"] > 300 and chart["height"] > 100, chart
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and "<link" not in text and ' src="' not in text
    with Image.open(shot) as image:
        assert image.size == (WIDTH, HEIGHT)
        for chart in state["charts"]:  # each chart's own box on the screenshot holds coloured marks
            box = (chart["x"], chart["y"], chart["x"] + chart["width"], chart["y"] + chart["height"])
            assert box[3] <= HEIGHT, f"chart {chart['key']} lies below the screenshot"
            assert colourful_fraction(image.crop(tuple(round(v) for v in box))) > 0.001, chart["key"]


def test_html_report_of_a_real_run_draws_every_chart_offline(tmp_path: Path) -> None:
    need("k6")
    recorded = recorded_warehouse(tmp_path, seconds=4, vus=4)
    page = report_html(recorded.url, recorded.run_id, tmp_path / "report.html")
    shot = tmp_path / "report-k6.png"
    state = look_at(page, shot, tmp_path / "chromium")
    assert state["title"].startswith("Load test report")
    assert recorded.infra_samples > 0  # the recorded shop's own /metrics, scraped during the run
    assert_drawn(state, page, shot, {"latency", "throughput", "bottlenecks", "infrastructure"})


def test_html_report_with_infrastructure_and_capacity_draws_every_chart_offline(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'warehouse'}"
    golden_document(url)  # the golden tests' stepped JMeter run with scraped samples
    page = report_html(url, RUN.run_id, tmp_path / "report.html")
    shot = tmp_path / "report-stepped.png"
    state = look_at(page, shot, tmp_path / "chromium")
    assert_drawn(state, page, shot, {"latency", "throughput", "bottlenecks", "infrastructure", "capacity"})
