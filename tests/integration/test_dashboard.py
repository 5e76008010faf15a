"""The Streamlit dashboard run by AppTest against a chdb warehouse holding a real k6 run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.tables import ms
from tests.conftest import ROOT
from tests.e2e.recorded_run import Recorded, recorded_warehouse
from warehouse.store import RunInfo, Warehouse, new_run_id

pytestmark = pytest.mark.integration

APP = str(ROOT / "dashboard" / "app.py")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """One real k6 run, plus a failed JMeter run that never sent a request (for filters and the empty case)."""
    recorded = recorded_warehouse(tmp_path_factory.mktemp("dashboard"), seconds=2)
    Warehouse.open(recorded.url).save_run(
        RunInfo(new_run_id("jmeter"), "jmeter", status="failed", name="broken plan", spec_name="shop",
                started_at="2000-01-01 00:00:00.000", ended_at="2000-01-01 00:00:03.000"))
    return recorded


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


def run_app(monkeypatch: pytest.MonkeyPatch, url: str, **params: str) -> AppTest:
    monkeypatch.setenv("PERFHOUSE_WAREHOUSE", url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(params)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> dict[str, tuple[dict[str, Any], pd.DataFrame]]:
    """Altair charts on the page by title: the Vega-Lite spec and the rows drawn.

    AppTest shows an altair chart as a `vega_lite_chart` node; its rows travel beside the spec as an
    Arrow IPC stream (a named dataset)."""
    drawn = {}
    for node in at.get("vega_lite_chart"):
        proto: Any = node.proto
        spec = json.loads(proto.spec)
        raw = proto.datasets[0].data.data if proto.datasets else proto.data.data
        title = spec["title"] if isinstance(spec["title"], str) else spec["title"]["text"]
        drawn[title] = (spec, pa.ipc.open_stream(raw).read_pandas())
    return drawn


def test_runs_page_lists_the_ingested_run_first_with_its_request_count(
        monkeypatch: pytest.MonkeyPatch, recorded: Recorded) -> None:
    at = run_app(monkeypatch, recorded.url)
    assert at.title[0].value == "Runs"
    table = at.dataframe[0].value
    assert len(table) == 2 and table["run_id"].iloc[0] == recorded.run_id  # newest first
    k6 = table.iloc[0]
    assert (k6["tool"], k6["status"], int(k6["requests"])) == ("k6", "imported", recorded.requests)
    assert [s.label for s in at.selectbox] == ["Tool", "Spec", "Status"]
    assert at.selectbox(key="runs_tool").options == ["(all)", "jmeter", "k6"]


@pytest.mark.parametrize(("widget", "value", "expected_tool"),
                         [("runs_tool", "jmeter", "jmeter"), ("runs_spec", "shop", "jmeter"),
                          ("runs_status", "imported", "k6")])
def test_runs_filters_narrow_the_table(monkeypatch: pytest.MonkeyPatch, recorded: Recorded, widget: str,
                                       value: str, expected_tool: str) -> None:
    at = run_app(monkeypatch, recorded.url)
    at.selectbox(key=widget).select(value).run()
    assert not at.exception
    assert list(at.dataframe[0].value["tool"]) == [expected_tool]


def test_selecting_a_run_in_the_table_opens_its_detail_page(
        monkeypatch: pytest.MonkeyPatch, recorded: Recorded) -> None:
    at = run_app(monkeypatch, recorded.url)
    at.session_state["runs_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert not at.exception
    assert at.query_params == {"page": "run", "run": recorded.run_id}
    assert at.title[0].value == f"Run {recorded.run_id}"
    assert at.sidebar.radio[0].value == "run"


def test_run_detail_defaults_to_the_latest_run_and_heads_with_its_figures(
        monkeypatch: pytest.MonkeyPatch, recorded: Recorded) -> None:
    at = run_app(monkeypatch, recorded.url, page="run")
    totals = Warehouse.open(recorded.url).totals(recorded.run_id)
    assert at.title[0].value == f"Run {recorded.run_id}"
    metrics = {m.label: m for m in at.metric}
    assert metrics["Requests"].value == f"{recorded.requests:,}" == f"{totals['count']:,}"
    assert metrics["Errors"].value == f"{totals['errors']:,}" and int(totals["errors"]) > 0
    assert metrics["p95 latency (ms)"].value == ms(totals["p95_ms"])
    assert metrics["SLOs"].value == "FAILED"  # a third of the payments answered 503
    assert metrics["SLOs"].delta == "1 of 3 failed"


def test_run_detail_draws_latency_throughput_and_error_charts(
        monkeypatch: pytest.MonkeyPatch, recorded: Recorded) -> None:
    at = run_app(monkeypatch, recorded.url, page="run", run=recorded.run_id)
    drawn = charts(at)
    assert set(drawn) == {"Latency percentiles over time", "Requests per second", "Errors by cause"}
    latency, latency_rows = drawn["Latency percentiles over time"]
    assert latency["mark"]["type"] == "line"
    assert (latency["encoding"]["x"]["field"], latency["encoding"]["x"]["type"]) == ("t", "temporal")
    assert latency["encoding"]["strokeDash"]["field"] == "percentile"
    assert set(latency_rows["percentile"]) == {"p50", "p95", "p99"}
    assert set(latency_rows["series"]) == {"browse / detail", "browse / list", "checkout / pay"}
    rps, rps_rows = drawn["Requests per second"]
    assert rps["encoding"]["y"]["field"] == "rps"
    assert rps_rows["rps"].sum() == recorded.requests  # 1 s buckets: requests per second add up to the run
    errors, error_rows = drawn["Errors by cause"]
    assert errors["encoding"]["y"]["field"] == "cause"
    failed = Warehouse.open(recorded.url).totals(recorded.run_id)["errors"]
    assert error_rows[["cause", "count"]].values.tolist() == [["HTTP 503", failed]]


def test_run_detail_tables_hold_each_step_each_slo_and_each_error_cause(
        monkeypatch: pytest.MonkeyPatch, recorded: Recorded) -> None:
    at = run_app(monkeypatch, recorded.url, page="run", run=recorded.run_id[:12])
    tables = [d.value for d in at.dataframe]
    slos, steps, errors = tables
    assert sorted(slos["verdict"]) == ["FAIL", "PASS", "PASS"]
    assert list(steps["step"]) == ["browse / detail", "browse / list", "checkout / pay"]
    assert int(steps["count"].sum()) == recorded.requests
    assert list(errors["cause"]) == ["HTTP 503"] and list(errors["step"]) == ["checkout / pay"]


def test_step_and_percentile_pickers_redraw_the_latency_chart(monkeypatch: pytest.MonkeyPatch, recorded: Recorded) -> None:
    at = run_app(monkeypatch, recorded.url, page="run", run=recorded.run_id)
    at.pills(key=f"percentiles:{recorded.run_id}").set_value(["p99_ms"]).run()
    at.multiselect(key=f"steps:{recorded.run_id}").set_value(["checkout / pay"]).run()
    assert not at.exception
    _, rows = charts(at)["Latency percentiles over time"]
    assert set(rows["percentile"]) == {"p99"} and set(rows["series"]) == {"checkout / pay"}


def test_an_unknown_run_in_the_url_warns_and_shows_the_latest(
        monkeypatch: pytest.MonkeyPatch, recorded: Recorded) -> None:
    at = run_app(monkeypatch, recorded.url, page="run", run="no-such-run")
    assert "no run 'no-such-run'" in at.warning[0].value
    assert at.title[0].value == f"Run {recorded.run_id}"


def test_a_run_without_requests_says_so_instead_of_drawing(
        monkeypatch: pytest.MonkeyPatch, recorded: Recorded) -> None:
    jmeter = Warehouse.open(recorded.url).runs(tool="jmeter")[0]["run_id"]
    at = run_app(monkeypatch, recorded.url, page="run", run=jmeter)
    assert {m.label: m.value for m in at.metric}["Requests"] == "0"
    assert "holds no requests" in at.info[0].value
    assert not at.get("vega_lite_chart")


@pytest.mark.parametrize("page", ["runs", "run"])
def test_an_empty_warehouse_gets_a_message_not_a_traceback(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, page: str) -> None:
    at = run_app(monkeypatch, f"chdb://{tmp_path / 'empty'}", page=page)
    assert "holds no runs yet" in at.info[0].value
    assert not at.dataframe and not at.metric and not at.error


def test_an_unusable_warehouse_url_is_an_error_message(monkeypatch: pytest.MonkeyPatch) -> None:
    at = run_app(monkeypatch, "ftp://nowhere/warehouse")
    assert "expected chdb://PATH" in at.error[0].value
