"""`perfhouse dashboard` served for real and photographed by headless Chromium: every page draws.

The screenshots are for a person to look at: tests/e2e/artifacts/dashboard-run.png (copied to
/tmp/perfhouse-dashboard.png), dashboard-run-full.png (the whole run page), dashboard-runs.png,
dashboard-compare.png, dashboard-trends.png, dashboard-live.png and dashboard-sql.png. A page showing a Streamlit exception fails the test.
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
from tests.e2e.recorded_run import HISTORY_FINGERPRINT, record_history, recorded_warehouse
from warehouse.store import RunInfo, Warehouse, new_run_id

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).parent / "artifacts"
COPY = Path("/tmp/perfhouse-dashboard.png")
WIDTH, HEIGHT, FULL_HEIGHT = 1400, 1000, 2600

# Drawn: three Vega charts rendered to SVG, five headline metrics, and Streamlit no longer running the script.
# Any page: what is drawn so far, and whether it has reached what the page must show (CHARTS, TABLES, METRICS).
STATE = """(() => {
  const q = s => [...document.querySelectorAll(s)];
  const state = {
    charts: q('[data-testid="stVegaLiteChart"] svg.marks').length,
    metrics: q('[data-testid="stMetric"]').map(m => m.innerText.replace(/\\s+/g, ' ').trim()),
    tables: q('[data-testid="stDataFrame"]').length,
    running: q('[data-testid="stStatusWidget"]').length > 0,
    exceptions: q('[data-testid="stException"]').map(e => e.innerText),
    alerts: q('[data-testid="stAlertContainer"]').map(e => e.innerText.trim()),
    title: (q('h1')[0] || {}).innerText || '',
    subtitle: (q('h3')[0] || {}).innerText || '',
  };
  state.ready = state.exceptions.length > 0 || (state.charts >= CHARTS && state.tables >= TABLES
    && state.metrics.length >= METRICS && !state.running);
  return state;
})()"""
RUN_QUERY = "[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Run query')"
HAS_RUN_QUERY = f"Boolean({RUN_QUERY})"
CLICK_RUN_QUERY = f"{RUN_QUERY}.click()"


def page_state(charts: int = 0, tables: int = 0, metrics: int = 0) -> str:
    return STATE.replace("CHARTS", str(charts)).replace("TABLES", str(tables)).replace("METRICS", str(metrics))


# The run page: its charts, five headline metrics and the SLO, step and error tables.
PAGE_STATE = page_state(charts=3, tables=3, metrics=5)


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


def live_run(url: str, jtl: Path) -> str:
    """A JMeter run still going (status running) with its first results ingested, as `--live` leaves it."""
    wh = Warehouse.open(url)
    info = RunInfo(new_run_id("jmeter"), "jmeter", name="shop/smoke", spec_name="shop", profile="smoke")
    wh.save_run(info)
    wh.ingest(jtl, info)
    return info.run_id


def test_every_page_screenshot_shows_its_charts_and_no_exception(tmp_path: Path, jtl_output: Path) -> None:
    need("k6")
    chromium = need("chromium")
    recorded = recorded_warehouse(tmp_path, seconds=8, vus=6)
    live_id = live_run(recorded.url, jtl_output)
    history = record_history(recorded.url, tmp_path / "k6" / "k6.json", tmp_path)
    names = ("run", "run-full", "runs", "compare", "trends", "live", "sql")
    shots = {name: tmp_path / f"dashboard-{name}.png" for name in names}
    states = {}
    with serve_dashboard(recorded.url, tmp_path / "dashboard.log") as base, \
            Chromium(chromium, tmp_path / "chromium", WIDTH, HEIGHT) as browser:
        browser.open(f"{base}/?page=run&run={recorded.run_id}")
        state = browser.wait_for(PAGE_STATE, timeout_s=90)
        browser.screenshot(shots["run"])
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": WIDTH, "height": FULL_HEIGHT, "deviceScaleFactor": 1, "mobile": False})
        states["run-full"] = browser.wait_for(page_state(charts=4, tables=3, metrics=5), timeout_s=30)
        browser.screenshot(shots["run-full"])
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
        browser.open(f"{base}/?page=runs")
        states["runs"] = browser.wait_for(page_state(tables=1), timeout_s=30)
        browser.screenshot(shots["runs"])
        browser.open(f"{base}/?page=compare&run={history[5]}&baseline={history[4]}")
        states["compare"] = browser.wait_for(page_state(charts=1, tables=1, metrics=1), timeout_s=60)
        browser.screenshot(shots["compare"])
        browser.open(f"{base}/?page=trends&fingerprint={HISTORY_FINGERPRINT}")
        states["trends"] = browser.wait_for(page_state(charts=1, tables=1), timeout_s=60)
        browser.screenshot(shots["trends"])
        browser.open(f"{base}/?page=live")
        states["live"] = browser.wait_for(page_state(charts=2, metrics=5), timeout_s=60)
        browser.screenshot(shots["live"])
        browser.open(f"{base}/?page=sql")
        browser.wait_for(HAS_RUN_QUERY, timeout_s=30)
        browser.evaluate(CLICK_RUN_QUERY)
        states["sql"] = browser.wait_for(page_state(tables=1), timeout_s=60)
        browser.screenshot(shots["sql"])

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("# screenshots for people to look at, never committed\n*\n")
    for path in shots.values():
        shutil.copy(path, ARTIFACTS / path.name)
    shutil.copy(shots["run"], COPY)
    for name in names[1:]:
        shutil.copy(shots[name], COPY.with_name(f"perfhouse-dashboard-{name}.png"))

    assert state["exceptions"] == [] and all(s["exceptions"] == [] for s in states.values()), states
    failures = ("The warehouse could not", "Refused")
    assert not [a for s in states.values() for a in s["alerts"] if a.startswith(failures)], states
    assert state["title"] == f"Run {recorded.run_id}"
    assert state["metrics"][0] == f"Requests {recorded.requests:,}"
    assert state["metrics"][4].startswith("Verdict FAILED")  # a third of the payments answered 503
    assert states["run-full"]["charts"] >= 4  # latency, throughput, errors, infrastructure overlay
    assert states["runs"]["title"] == "Runs"
    assert states["compare"]["title"] == "Compare" and states["compare"]["metrics"][0].startswith("Verdict WORSE")
    assert states["trends"]["title"] == "Trends"
    for name in ("compare", "trends"):
        with Image.open(shots[name]) as image:
            assert colourful_fraction(image) > 0.001, name  # the distributions or the trend lines are drawn
    assert states["live"]["title"] == "Live" and states["live"]["subtitle"] == f"Run {live_id}"
    assert states["live"]["metrics"][4].startswith("Verdict INCOMPLETE")  # still running
    assert states["sql"]["title"] == "SQL"
    assert shots["run"].stat().st_size > 40_000
    with Image.open(shots["run"]) as image:
        assert image.size == (WIDTH, HEIGHT)
        assert len(image.convert("RGB").getcolors(maxcolors=WIDTH * HEIGHT) or []) > 500  # not one colour
        assert colourful_fraction(image) > 0.02  # the throughput area chart alone covers more than this
    with Image.open(shots["live"]) as image:
        assert colourful_fraction(image) > 0.01  # the live latency and throughput charts are drawn
