"""`perfhouse dashboard` served for real and photographed by headless Chromium: the run page draws its charts.

The screenshots are for a person to look at: tests/e2e/artifacts/dashboard-run.png (copied to
/tmp/perfhouse-dashboard.png), dashboard-run-full.png (the whole run page) and dashboard-runs.png.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from tests.conftest import need
from tests.e2e.browser import Chromium
from tests.e2e.recorded_run import recorded_warehouse

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).parent / "artifacts"
COPY = Path("/tmp/perfhouse-dashboard.png")
WIDTH, HEIGHT, FULL_HEIGHT = 1400, 1000, 2600

# Drawn: three Vega charts rendered to SVG, five headline metrics, and Streamlit no longer running the script.
PAGE_STATE = """(() => {
  const q = s => [...document.querySelectorAll(s)];
  const state = {
    charts: q('[data-testid="stVegaLiteChart"] svg.marks').length,
    metrics: q('[data-testid="stMetric"]').map(m => m.innerText.replace(/\\s+/g, ' ').trim()),
    tables: q('[data-testid="stDataFrame"]').length,
    running: q('[data-testid="stStatusWidget"]').length > 0,
    exceptions: q('[data-testid="stException"]').map(e => e.innerText),
    title: (q('h1')[0] || {}).innerText || '',
  };
  state.ready = state.charts >= 3 && state.metrics.length === 5 && state.tables >= 3 && !state.running;
  return state;
})()"""
RUNS_STATE = """(() => {
  const tables = document.querySelectorAll('[data-testid="stDataFrame"]').length;
  const running = document.querySelectorAll('[data-testid="stStatusWidget"]').length > 0;
  return {ready: tables === 1 && !running, title: (document.querySelector('h1') || {}).innerText || ''};
})()"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_dashboard(warehouse_url: str, log: Path) -> Iterator[str]:
    """`perfhouse --warehouse URL dashboard --port N` in its own process group; yields its base URL."""
    port = free_port()
    argv = [sys.executable, "-m", "orchestrator", "--warehouse", warehouse_url, "dashboard", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"the dashboard exited with {proc.returncode}:\n{log.read_text()}"
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"the dashboard did not answer within 60 s:\n{log.read_text()}"
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # perfhouse and the streamlit server it started
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def colourful_fraction(image: Image.Image) -> float:
    """The share of pixels with a strong colour: the chart areas and lines, not text or backgrounds."""
    _, saturation, value = image.convert("RGB").convert("HSV").split()
    strong = ImageChops.multiply(saturation.point(lambda s: 255 if s > 90 else 0),
                                 value.point(lambda v: 255 if v > 60 else 0))
    return strong.histogram()[255] / (image.width * image.height)


def test_run_page_screenshot_shows_metrics_and_drawn_charts(tmp_path: Path) -> None:
    need("k6")
    chromium = need("chromium")
    recorded = recorded_warehouse(tmp_path, seconds=8, vus=6)
    shot, full, runs = (tmp_path / f"dashboard-{name}.png" for name in ("run", "run-full", "runs"))
    with serve_dashboard(recorded.url, tmp_path / "dashboard.log") as base, \
            Chromium(chromium, tmp_path / "chromium", WIDTH, HEIGHT) as browser:
        browser.open(f"{base}/?page=run&run={recorded.run_id}")
        state = browser.wait_for(PAGE_STATE, timeout_s=90)
        browser.screenshot(shot)
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": WIDTH, "height": FULL_HEIGHT, "deviceScaleFactor": 1, "mobile": False})
        browser.wait_for(PAGE_STATE, timeout_s=30)
        browser.screenshot(full)
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
        browser.open(f"{base}/?page=runs")
        runs_state = browser.wait_for(RUNS_STATE, timeout_s=30)
        browser.screenshot(runs)

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("# screenshots for people to look at, never committed\n*\n")
    for path in (shot, full, runs):
        shutil.copy(path, ARTIFACTS / path.name)
    shutil.copy(shot, COPY)
    shutil.copy(full, COPY.with_name("perfhouse-dashboard-full.png"))
    shutil.copy(runs, COPY.with_name("perfhouse-dashboard-runs.png"))

    assert state["exceptions"] == []
    assert state["title"] == f"Run {recorded.run_id}"
    assert state["metrics"][0] == f"Requests {recorded.requests:,}"
    assert state["metrics"][4].startswith("SLOs FAIL")  # a third of the payments answered 503
    assert runs_state["title"] == "Runs"
    assert shot.stat().st_size > 40_000
    with Image.open(shot) as image:
        assert image.size == (WIDTH, HEIGHT)
        assert len(image.convert("RGB").getcolors(maxcolors=WIDTH * HEIGHT) or []) > 500  # not one colour
        assert colourful_fraction(image) > 0.02  # the throughput area chart alone covers more than this
