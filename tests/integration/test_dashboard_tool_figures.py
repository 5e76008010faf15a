"""The dashboard's run page for runs that hold a tool's own figures instead of requests (AppTest on a chdb
warehouse): a Locust run imported from its `--csv` files and a JMeter backend-listener run show their steps'
counts, failures and the tool's percentiles, marked as the tool's."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from warehouse.ingest.history import RunMeta
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

APP = str(ROOT / "dashboard" / "app.py")
GOLDEN = ROOT / "tests" / "golden" / "report"


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A warehouse holding a Locust run of its --csv files (the statistics and history of one prefix) and a
    JMeter backend-listener run: (url, Locust run, JMeter run)."""
    directory = tmp_path_factory.mktemp("figures")
    results = directory / "results"
    results.mkdir()
    for name in ("locust_stats.csv", "locust_stats_history.csv"):
        (results / name.replace("locust", "shop")).write_bytes((GOLDEN / name).read_bytes())
    url = f"chdb://{directory / 'wh'}"
    wh = Warehouse.open(url)
    locust = [o.run_id for o in wh.import_files([results], RunMeta(name="shop with locust"))]
    assert len(set(locust)) == 1
    jmeter = wh.ingest(GOLDEN / "backend-listener.lp", meta=RunMeta(name="shop with jmeter"))
    return url, locust[0], jmeter.run_id


def run_app(monkeypatch: pytest.MonkeyPatch, url: str, **params: str) -> AppTest:
    monkeypatch.setenv("PERFHOUSE_WAREHOUSE", url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(params)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def chart_titles(at: AppTest) -> list[str]:
    titles = []
    for node in at.get("vega_lite_chart"):
        proto: Any = node.proto
        spec = json.loads(proto.spec)
        titles.append(spec["title"] if isinstance(spec["title"], str) else spec["title"]["text"])
    return titles


def chart_rows(at: AppTest, title: str) -> Any:
    for node in at.get("vega_lite_chart"):
        proto: Any = node.proto
        if title in proto.spec:
            return pa.ipc.open_stream(proto.datasets[0].data.data).read_pandas()
    raise AssertionError(f"no chart {title!r}")


def test_a_locust_csv_run_shows_locusts_counts_failures_and_percentiles_per_step(
        monkeypatch: pytest.MonkeyPatch, figures: tuple[str, str, str]) -> None:
    url, locust, _ = figures
    at = run_app(monkeypatch, url, page="run", run=locust)
    assert at.title[0].value == f"Run {locust}"
    assert "holds Locust's own figures" in at.info[0].value
    assert "Locust's own figures" in [h.value for h in at.subheader]
    assert any("not perfhouse's exact percentiles" in c.value for c in at.caption)
    with open(GOLDEN / "locust_stats.csv", newline="") as fh:
        theirs = {row["Name"]: row for row in csv.DictReader(fh)}
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == "0"  # no requests in the warehouse: the tool's figures are apart
    assert metrics["Requests (Locust)"] == theirs["Aggregated"]["Request Count"]
    assert metrics["Failures (Locust)"] == theirs["Aggregated"]["Failure Count"]
    table = next(d.value for d in at.dataframe if "failure_pct" in d.value.columns)
    rows = {r["step"]: r for r in table.to_dict("records")}
    assert set(rows) == {"list products", "missing page", "Aggregated (overall)"}
    for name, row in theirs.items():
        shown = rows[name if name != "Aggregated" else "Aggregated (overall)"]
        assert (shown["count"], shown["failures"]) == (int(row["Request Count"]), int(row["Failure Count"]))
        assert (shown["p50_ms"], shown["p95_ms"], shown["p99_ms"]) == (float(row["50%"]), float(row["95%"]),
                                                                      float(row["99%"]))
    assert rows["missing page"]["failure_pct"] == 100.0
    assert chart_titles(at) == ["Locust's percentiles over time"]  # the history of the whole run
    drawn = chart_rows(at, "Locust's percentiles over time")
    with open(GOLDEN / "locust_stats_history.csv", newline="") as fh:
        p95 = [float(r["95%"]) for r in csv.DictReader(fh) if r["Name"] == "Aggregated" and r["95%"] != "N/A"]
    assert sorted(drawn[drawn["figure"] == "p95"]["ms"]) == sorted(p95) and len(p95) > 1


def test_a_jmeter_backend_listener_run_shows_jmeters_figures_too(monkeypatch: pytest.MonkeyPatch,
                                                                 figures: tuple[str, str, str]) -> None:
    url, _, jmeter = figures
    at = run_app(monkeypatch, url, page="run", run=jmeter)
    assert "holds JMeter's own figures" in at.info[0].value
    assert "JMeter's own figures" in [h.value for h in at.subheader]
    assert any("highest of the intervals'" in c.value for c in at.caption)
    table = next(d.value for d in at.dataframe if "failure_pct" in d.value.columns)
    rows = {r["step"]: r for r in table.to_dict("records")}
    assert (rows["shop / list products"]["count"], rows["shop / list products"]["failures"]) == (84, 3)
    assert rows["shop / all (overall)"]["count"] == 106 and rows["shop / list products"]["p95_ms"] == 70
    assert {m.label: m.value for m in at.metric}["p95 (ms, JMeter)"] == "66.00"
