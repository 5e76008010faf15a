"""The Streamlit dashboard run by AppTest against a chdb warehouse holding real k6 and JMeter runs: every
page (runs, run, compare, trends, live, SQL), its filters, charts and tables."""

from __future__ import annotations

import io
import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard import data
from dashboard.tables import ms
from tests.conftest import ROOT
from tests.e2e.recorded_run import HISTORY_FINGERPRINT, Recorded, record_history, recorded_warehouse
from warehouse.analysis import slo
from warehouse.analysis.compare import compare
from warehouse.analysis.slo import Objective
from warehouse.analysis.trends import trends
from warehouse.ingest.history import RunMeta
from warehouse.store import RunFilter, RunInfo, Warehouse, new_run_id

pytestmark = pytest.mark.integration

APP = str(ROOT / "dashboard" / "app.py")


JMETER_META = RunMeta(name="shop smoke", spec_name="shop", profile="smoke", environment="staging",
                      branch="feature/cart")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, jtl_output: Path) -> Recorded:
    """A real k6 run (newest, with SLOs and scraped samples), a real JMeter run of the shop spec imported with
    its metadata, and a failed JMeter run that never sent a request (for filters and the empty case)."""
    directory = tmp_path_factory.mktemp("dashboard")
    # the JMeter runs are recorded first, so the k6 run is `latest` (the run recorded last)
    wh = Warehouse.open(f"chdb://{directory / 'warehouse'}")
    jmeter = wh.ingest(jtl_output, meta=JMETER_META)
    assert jmeter.rows > 0
    wh.backend.command("ALTER TABLE runs UPDATE started_at = started_at - INTERVAL 1 HOUR WHERE run_id = "
                       "{run:String} SETTINGS mutations_sync = 2", {"run": jmeter.run_id})  # older than the k6 run
    slo.evaluate(wh.backend, jmeter.run_id, [Objective("p95", 5000.0)])
    wh.save_run(RunInfo(new_run_id("jmeter"), "jmeter", status="failed", name="broken plan", spec_name="shop",
                        started_at="2000-01-01 00:00:00.000", ended_at="2000-01-01 00:00:03.000"))
    getattr(wh.backend, "release", lambda: None)()
    recorded = recorded_warehouse(directory, seconds=2)
    # the k6 run's directory as `perfhouse run` keeps it: the script and the raw results beside it
    run_dir = directory / "runs" / recorded.run_id
    run_dir.mkdir(parents=True)
    for name in ("shop.js", "k6.json"):
        shutil.copy(directory / "k6" / name, run_dir / name)
    return recorded


def jmeter_run(url: str) -> str:
    return Warehouse.open(url).run_list(RunFilter(tool="jmeter", status="imported"))[0].run_id


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


def run_app(monkeypatch: pytest.MonkeyPatch, url: str, **params: str) -> AppTest:
    monkeypatch.setenv("PERFHOUSE_WAREHOUSE", url)
    monkeypatch.setenv("PERFHOUSE_RUNS_DIR", str(Path(url.removeprefix("chdb://")).parent / "runs"))
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
        titled = spec if "title" in spec else spec["vconcat"][0]  # a concatenation: its first panel's title
        title = titled["title"] if isinstance(titled["title"], str) else titled["title"]["text"]
        drawn[title] = (spec, pa.ipc.open_stream(raw).read_pandas())
    return drawn


def datasets(at: AppTest, title: str) -> list[pd.DataFrame]:
    """Every dataset of one chart (a concatenation of panels carries one per panel)."""
    for node in at.get("vega_lite_chart"):
        proto: Any = node.proto
        if title in proto.spec:
            return [pa.ipc.open_stream(d.data.data).read_pandas() for d in proto.datasets]
    raise AssertionError(f"no chart {title!r}")


def test_runs_page_lists_runs_newest_first_with_counts_and_verdicts(
        monkeypatch: pytest.MonkeyPatch, recorded: Recorded) -> None:
    at = run_app(monkeypatch, recorded.url)
    assert at.title[0].value == "Runs"
    table = at.dataframe[0].value
    assert list(table["tool"]) == ["k6", "jmeter", "jmeter"]  # newest first
    k6, jmeter, broken = (table.iloc[i] for i in range(3))
    assert (k6["run_id"], k6["status"], int(k6["requests"])) == (recorded.run_id, "imported", recorded.requests)
    totals = Warehouse.open(recorded.url).totals(recorded.run_id)
    assert int(k6["errors"]) == totals["errors"] > 0
    assert [k6["verdict"], jmeter["verdict"], broken["verdict"]] == ["FAILED", "PASSED", "INCOMPLETE"]
    assert (jmeter["profile"], jmeter["environment"], jmeter["branch"]) == ("smoke", "staging", "feature/cart")
    assert [s.label for s in at.selectbox] == ["Spec", "Tool", "Profile", "Branch", "Environment", "Status",
                                               "Verdict"]
    assert at.selectbox(key="runs_tool").options == ["(all)", "jmeter", "k6"]
    assert at.selectbox(key="runs_branch").options == ["(all)", "feature/cart"]


@pytest.mark.parametrize(("widget", "value", "expected"),
                         [("runs_tool", "jmeter", ["jmeter", "jmeter"]), ("runs_spec", "shop", ["jmeter", "jmeter"]),
                          ("runs_profile", "smoke", ["jmeter"]), ("runs_branch", "feature/cart", ["jmeter"]),
                          ("runs_environment", "staging", ["jmeter"]), ("runs_status", "imported", ["k6", "jmeter"]),
                          ("runs_verdict", "FAILED", ["k6"]), ("runs_verdict", "INCOMPLETE", ["jmeter"])])
def test_runs_filters_narrow_the_table(monkeypatch: pytest.MonkeyPatch, recorded: Recorded, widget: str,
                                       value: str, expected: list[str]) -> None:
    at = run_app(monkeypatch, recorded.url)
    at.selectbox(key=widget).select(value).run()
    assert not at.exception
    assert list(at.dataframe[0].value["tool"]) == expected


def test_the_date_filter_keeps_the_runs_started_on_those_days(monkeypatch: pytest.MonkeyPatch,
                                                               recorded: Recorded) -> None:
    import datetime as dt

    at = run_app(monkeypatch, recorded.url)
    at.date_input(key="runs_started").set_value((dt.date(2000, 1, 1), dt.date(2000, 1, 1))).run()
    assert list(at.dataframe[0].value["name"]) == ["broken plan"]
    at.date_input(key="runs_started").set_value((dt.date(2000, 1, 2), dt.date(2000, 1, 3))).run()
    assert not at.dataframe and "No run matches" in at.info[0].value


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
    assert metrics["Request errors"].value == f"{totals['errors']:,}" and int(totals["errors"]) > 0
    assert metrics["p95 latency (ms)"].value == ms(totals["p95_ms"])
    assert metrics["Verdict"].value == "FAILED"  # a third of the payments answered 503
    assert metrics["Verdict"].delta == "SLOs: 1 of 3 failed"


def test_run_detail_draws_latency_throughput_and_error_charts(
        monkeypatch: pytest.MonkeyPatch, recorded: Recorded) -> None:
    at = run_app(monkeypatch, recorded.url, page="run", run=recorded.run_id)
    drawn = charts(at)
    assert set(drawn) == {"Latency percentiles over time", "Requests per second", "Errors by cause",
                          "p95 latency with infrastructure"}
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
    broken = Warehouse.open(recorded.url).run_list(RunFilter(status="failed"))[0].run_id
    at = run_app(monkeypatch, recorded.url, page="run", run=broken)
    assert {m.label: m.value for m in at.metric}["Requests"] == "0"
    assert "holds no requests" in at.info[0].value
    assert not at.get("vega_lite_chart")


@pytest.mark.parametrize("page", ["runs", "run", "live"])
def test_an_empty_warehouse_gets_a_message_not_a_traceback(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, page: str) -> None:
    at = run_app(monkeypatch, f"chdb://{tmp_path / 'empty'}", page=page)
    assert "holds no runs yet" in at.info[0].value or "No run is in progress" in at.info[0].value
    assert not at.dataframe and not at.metric and not at.error


def test_an_unusable_warehouse_url_is_an_error_message(monkeypatch: pytest.MonkeyPatch) -> None:
    at = run_app(monkeypatch, "ftp://nowhere/warehouse")
    assert "expected chdb://PATH" in at.error[0].value


def test_infrastructure_series_are_drawn_on_the_latency_time_axis_with_one_shared_brush(
        monkeypatch: pytest.MonkeyPatch, recorded: Recorded) -> None:
    assert recorded.infra_samples > 0
    at = run_app(monkeypatch, recorded.url, page="run", run=recorded.run_id)
    picker = at.multiselect(key=f"infra:{recorded.run_id}")
    assert "process_cpu_seconds_total" in picker.options  # counters become rates
    spec, _ = charts(at)["p95 latency with infrastructure"]
    top, below = spec["vconcat"]
    assert top["resolve"]["scale"]["y"] == "independent"  # latency on the left axis, the series on the right
    (brush,) = spec["params"]
    assert brush["select"] == {"type": "interval", "encodings": ["x"]} and len(brush["views"]) == 2
    assert below["encoding"]["x"]["field"] == top["layer"][0]["encoding"]["x"]["field"] == "t"
    frames = datasets(at, "p95 latency with infrastructure")
    infra = next(f for f in frames if "series" in f and "value" in f)
    cpu = infra[infra["series"] == "process_cpu_seconds_total"]
    assert len(cpu) > 0 and (cpu["value"] >= 0).all() and set(cpu["unit"]) == {"per second"}
    picker.set_value(["process_threads"]).run()
    frames = datasets(at, "p95 latency with infrastructure")
    assert {"process_threads"} == set(next(f for f in frames if "unit" in f)["series"])


def test_a_run_without_samples_says_how_to_record_them(monkeypatch: pytest.MonkeyPatch, recorded: Recorded) -> None:
    at = run_app(monkeypatch, recorded.url, page="run", run=jmeter_run(recorded.url))
    assert any("perfhouse run --scrape URL" in c.value for c in at.caption)


def test_the_run_page_offers_the_run_directory_files(monkeypatch: pytest.MonkeyPatch, recorded: Recorded) -> None:
    at = run_app(monkeypatch, recorded.url, page="run", run=recorded.run_id)
    buttons = at.get("download_button")
    assert [b.proto.label for b in buttons] == ["Download"] * 3  # the report, the script, then the results
    names = [m.value for m in at.markdown if m.value.startswith("`")]
    assert names == [f"`{recorded.run_id}.html`", "`shop.js`", "`k6.json`"]
    html = data.html_report(recorded.url, recorded.run_id).decode()
    assert html.startswith("<!DOCTYPE html>") and recorded.run_id in html
    imported = run_app(monkeypatch, recorded.url, page="run", run=jmeter_run(recorded.url))
    assert len(imported.get("download_button")) == 1  # the report only
    assert any("No run directory" in c.value for c in imported.caption)


def test_the_jmeter_run_page_shows_the_shop_steps_from_its_jtl(monkeypatch: pytest.MonkeyPatch,
                                                               recorded: Recorded) -> None:
    run_id = jmeter_run(recorded.url)
    at = run_app(monkeypatch, recorded.url, page="run", run=run_id)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Verdict"] == "PASSED"
    steps = at.dataframe[1].value
    assert {"browse / list_products", "checkout / login"} <= set(steps["step"])
    assert int(steps["count"].sum()) == Warehouse.open(recorded.url).totals(run_id)["count"]
    assert "Latency percentiles over time" in charts(at)


def _halves(jtl: Path, directory: Path) -> tuple[Path, Path]:
    lines = jtl.read_bytes().splitlines(keepends=True)
    first, second = directory / "first.jtl", directory / "second.jtl"
    first.write_bytes(b"".join(lines[: len(lines) // 2]))
    second.write_bytes(b"".join(lines[len(lines) // 2 :]))
    return first, second


def test_the_live_page_follows_a_running_run_as_its_results_arrive(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, jtl_output: Path) -> None:
    url = f"chdb://{tmp_path / 'warehouse'}"
    wh = Warehouse.open(url)
    info = RunInfo(new_run_id("jmeter"), "jmeter", name="shop/smoke", spec_name="shop", profile="smoke")
    wh.save_run(info)
    first, second = _halves(jtl_output, tmp_path)
    at = run_app(monkeypatch, url, page="live")
    assert at.subheader[0].value == f"Run {info.run_id}"  # the running run, without being named
    assert "No requests ingested yet" in at.info[0].value

    wh.ingest(first, info)
    time.sleep(data.VERSION_TTL_S)  # the data version is read at most once a second
    at.run()
    assert not at.exception
    seen = int(wh.totals(info.run_id)["count"])
    assert {m.label: m.value for m in at.metric}["Requests"] == f"{seen:,}"
    assert {"Latency percentiles over time", "Requests per second"} <= set(charts(at))

    wh.ingest(second, info)
    wh.finish_run(info, "completed")
    time.sleep(data.VERSION_TTL_S)
    at.run()
    total = int(wh.totals(info.run_id)["count"])
    assert total > seen
    assert {m.label: m.value for m in at.metric}["Requests"] == f"{total:,}"
    assert "The run has ended (completed)" in at.success[0].value


def test_the_live_page_waits_for_a_run_when_none_is_going(monkeypatch: pytest.MonkeyPatch,
                                                          recorded: Recorded) -> None:
    at = run_app(monkeypatch, recorded.url, page="live")
    assert "No run is in progress" in at.info[0].value
    named = run_app(monkeypatch, recorded.url, page="live", run=recorded.run_id)
    assert "The run has ended (imported)" in named.success[0].value


def run_sql(at: AppTest, sql: str, limit: int | None = None) -> AppTest:
    at.text_area(key="sql_text").input(sql)
    if limit is not None:
        at.number_input(key="sql_limit").set_value(limit)
    at.button(key="sql_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_sql_page_runs_a_select_and_offers_its_answer_as_csv(monkeypatch: pytest.MonkeyPatch,
                                                                 recorded: Recorded) -> None:
    at = run_app(monkeypatch, recorded.url, page="sql")
    assert at.title[0].value == "SQL"
    run_sql(at, at.text_area(key="sql_text").value)  # the example: p95 per step of the latest run
    result = at.dataframe[0].value
    assert set(result["step"]) == {"list", "detail", "pay"}
    assert int(result["requests"].sum()) == recorded.requests
    (button,) = at.get("download_button")
    assert button.proto.label == "Download CSV"
    run_sql(at, "SELECT run_id, tool FROM runs FINAL ORDER BY started_at DESC", limit=2)
    assert len(at.dataframe[0].value) == 2
    assert any("cut at the row limit of 2" in c.value for c in at.caption)
    csv = pd.read_csv(io.StringIO(at.dataframe[0].value.to_csv(index=False)))
    assert list(csv.columns) == ["run_id", "tool"]


@pytest.mark.parametrize(("sql", "reason"), [
    ("DROP TABLE requests", "only SELECT is allowed, found DROP"),
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table functions are not allowed (file)"),
    ("SELECT 1; SELECT 2", "one statement only"),
    ("SELECT * FROM runs SETTINGS readonly = 0", "SETTINGS are not allowed"),
    ("SELECT 'UTC' IN system.time_zones", "IN system.time_zones reads a table"),
    ("SELECT hasColumnInTable('system', 'one', 'dummy')", "hasColumnInTable() is not available"),
])
def test_the_sql_page_shows_why_a_query_is_refused(monkeypatch: pytest.MonkeyPatch, recorded: Recorded, sql: str,
                                                   reason: str) -> None:
    at = run_sql(run_app(monkeypatch, recorded.url, page="sql"), sql)
    assert at.error[0].value.startswith("Refused: ") and reason in at.error[0].value
    assert not at.dataframe
    assert Warehouse.open(recorded.url).totals(recorded.run_id)["count"] == recorded.requests


def test_the_sql_page_runs_as_the_warehouse_of_perfhouse_sql_warehouse(monkeypatch: pytest.MonkeyPatch,
                                                                        recorded: Recorded, tmp_path: Path) -> None:
    """On a server, PERFHOUSE_SQL_WAREHOUSE names the read-only user the page connects as; any warehouse URL
    works, so an empty second warehouse shows the page asks it and not the dashboard's."""
    other = f"chdb://{tmp_path / 'other'}"
    Warehouse.open(other).backend.release()  # type: ignore[attr-defined]
    monkeypatch.setenv("PERFHOUSE_SQL_WAREHOUSE", other)
    at = run_sql(run_app(monkeypatch, recorded.url, page="sql"), "SELECT count() AS n FROM runs")
    assert int(at.dataframe[0].value["n"][0]) == 0
    monkeypatch.delenv("PERFHOUSE_SQL_WAREHOUSE")
    at = run_sql(run_app(monkeypatch, recorded.url, page="sql"), "SELECT count() AS n FROM runs FINAL")
    assert int(at.dataframe[0].value["n"][0]) == 3


def test_the_sql_page_reports_a_query_the_warehouse_rejects(monkeypatch: pytest.MonkeyPatch,
                                                            recorded: Recorded) -> None:
    at = run_sql(run_app(monkeypatch, recorded.url, page="sql"), "SELECT no_such_column FROM runs")
    assert at.error[0].value.startswith("The warehouse could not run it: ")


def test_a_run_added_shows_at_the_next_load_without_a_refresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              jtl_output: Path) -> None:
    url = f"chdb://{tmp_path / 'warehouse'}"
    at = run_app(monkeypatch, url)
    assert "holds no runs yet" in at.info[0].value
    result = Warehouse.open(url).ingest(jtl_output, meta=JMETER_META)
    time.sleep(data.VERSION_TTL_S)  # the data version is read at most once a second
    at.run()
    assert list(at.dataframe[0].value["run_id"]) == [result.run_id]
    assert at.selectbox(key="runs_profile").options == ["(all)", "smoke"]


def test_a_run_with_many_steps_charts_the_costliest_eight_first(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    from tests.support.synthetic import STEPS, fill

    url = f"chdb://{tmp_path / 'warehouse'}"
    fill(Warehouse.open(url).backend, runs=2, requests=24_000, seconds=60)
    at = run_app(monkeypatch, url, page="run", run="bench-0001")
    picker = at.multiselect(key="steps:bench-0001")
    assert len(picker.options) == len(STEPS) == 12
    steps = Warehouse.open(url).step_stats("bench-0001")
    costliest = sorted(steps, key=lambda s: s.count * s.avg_ms, reverse=True)[:8]
    assert set(picker.value) == {f"{s.journey} / {s.step}" for s in costliest}
    _, rows = charts(at)["Latency percentiles over time"]
    assert set(rows["series"]) == set(picker.value)


# -- compare and trends over a history of comparable runs ------------------------------------------------------

@dataclass(frozen=True)
class History:
    url: str
    runs: list[str]  # the k6 runs, oldest first
    jmeter: str  # run with the newest k6 run in one invocation


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, recorded: Recorded, jtl_output: Path) -> History:
    """Eight runs of one fingerprint made from the recorded k6 run, the last three 60 % slower, the newest in one
    invocation with a real JMeter run."""
    directory = tmp_path_factory.mktemp("history")
    raw = Path(recorded.url.removeprefix("chdb://")).parent / "k6" / "k6.json"
    url = f"chdb://{directory / 'warehouse'}"
    wh = Warehouse.open(url)
    runs = record_history(url, raw, directory)
    jmeter = RunInfo("20260107-100000-jmeter-history", "jmeter", status="completed", name="shop ci",
                     spec_name="shop", profile="ci", fingerprint="fp-dashboard-jmeter", group_id="invocation-7",
                     started_at="2026-01-01 17:00:00.000", ended_at="2026-01-01 17:00:03.000")
    wh.save_run(jmeter)
    assert wh.ingest(jtl_output, jmeter).rows > 0
    return History(url, runs, jmeter.run_id)


def test_the_compare_page_shows_what_compare_decides_and_both_runs_distributions(
        monkeypatch: pytest.MonkeyPatch, history: History) -> None:
    a, b = history.runs[4], history.runs[5]
    at = run_app(monkeypatch, history.url, page="compare", run=b, baseline=a)
    assert at.title[0].value == "Compare" and at.radio(key="compare_mode").value == "runs"
    assert (at.selectbox(key="compare_a").value, at.selectbox(key="compare_b").value) == (a, b)
    expected = compare(Warehouse.open(history.url), a, b)
    table = at.dataframe[0].value
    rows = [*expected.steps, expected.overall]
    assert list(table["step"]) == [s.label for s in rows]
    assert list(table["verdict"]) == [str(s.verdict) for s in rows] and list(table["reason"]) == [s.reason for s in rows]
    assert table["p95_b_ms"].tolist() == pytest.approx([s.b.p95 for s in rows])
    assert "WORSE" in set(table["verdict"])  # 60 % slower: what compare says, the page says
    assert at.metric[0].value == str(expected.verdict)
    drawn = charts(at)["Latency distribution (share of requests at or below)"][1]
    assert sorted(set(drawn["run"])) == [f"A {a} (k6)", f"B {b} (k6)"]
    for run_id, side in ((a, expected.overall.a), (b, expected.overall.b)):
        mine = drawn[drawn["run"].str.contains(run_id)]
        assert len(mine) == 103  # min, 101 quantiles, max: not every request
        assert mine.loc[mine["fraction"] == 0.95, "ms"].item() == pytest.approx(side.p95)
        assert mine["fraction"].tolist() == sorted(mine["fraction"]) and mine["ms"].is_monotonic_increasing
    at.selectbox(key="compare_step").select("checkout/pay").run()
    step = charts(at)["Latency distribution (share of requests at or below)"][1]
    pay = next(s for s in expected.steps if s.label == "checkout/pay")
    mine = step[step["run"].str.contains(b)]
    assert mine.loc[mine["fraction"] == 0.95, "ms"].item() == pytest.approx(pay.b.p95)


def test_the_compare_page_defaults_run_a_to_the_baseline_of_run_b(monkeypatch: pytest.MonkeyPatch,
                                                                  history: History) -> None:
    at = run_app(monkeypatch, history.url, page="compare", run=history.runs[6])
    assert at.selectbox(key="compare_a").value == history.runs[5]  # the latest passed run before it (auto)
    assert any("(auto)" in c.value for c in at.caption)


def test_the_compare_page_puts_k6_against_jmeter_of_one_invocation(monkeypatch: pytest.MonkeyPatch,
                                                                   history: History) -> None:
    at = run_app(monkeypatch, history.url, page="compare", group="invocation-7")
    assert at.radio(key="compare_mode").value == "group" and at.selectbox(key="compare_group").value == "invocation-7"
    expected = compare(Warehouse.open(history.url), group="invocation-7")
    assert (expected.a.run_id, expected.b.run_id) == (history.runs[7], history.jmeter)
    table = at.dataframe[0].value
    assert list(table["verdict"]) == [str(s.verdict) for s in [*expected.steps, expected.overall]]
    assert any("the tools measure differently" in c.value for c in at.caption)
    drawn = charts(at)["Latency distribution (share of requests at or below)"][1]
    assert sorted(set(drawn["run"])) == [f"A {history.runs[7]} (k6)", f"B {history.jmeter} (jmeter)"]


def test_the_trends_page_draws_each_step_with_its_change_points_and_the_baseline(
        monkeypatch: pytest.MonkeyPatch, history: History) -> None:
    at = run_app(monkeypatch, history.url, page="trends", fingerprint=HISTORY_FINGERPRINT)
    assert at.title[0].value == "Trends" and at.selectbox(key="trends_metric").value == "p95"
    expected = trends(Warehouse.open(history.url).backend, "p95", fingerprint=HISTORY_FINGERPRINT)
    layers = datasets(at, "p95 per step over the history")  # the lines, the change points, the baseline
    points, changes, baseline = (next(d for d in layers if column in d) for column in ("value", "kind", "label"))
    assert sorted(set(points["step"])) == sorted(s.label for s in expected.series)
    overall = points[points["step"] == "overall"]
    assert overall["run_id"].tolist() == history.runs
    assert overall["value"].tolist() == pytest.approx([p.value for p in expected.series[0].points])
    found = {(c.run_id, s.label) for s in expected.series for c in s.changes}
    assert (history.runs[5], "overall") in found  # the step up to 60 % slower starts at the sixth run
    assert set(zip(changes["run_id"], changes["step"], strict=True)) == found
    assert set(changes.loc[changes["run_id"] == history.runs[5], "kind"]) == {"worse"}
    assert baseline["run_id"].tolist() == [history.runs[6]]  # the newest run's automatic baseline
    assert at.dataframe[0].value["run_id"].tolist() == changes["run_id"].tolist()
    at.selectbox(key="trends_metric").select("rps").run()
    assert not at.exception and at.query_params["metric"] == "rps"
    assert "rps per step over the history" in charts(at)


def test_the_runs_page_filters_by_group_and_fingerprint(monkeypatch: pytest.MonkeyPatch, history: History) -> None:
    at = run_app(monkeypatch, history.url)
    assert len(at.dataframe[0].value) == 9
    at.text_input(key="runs_fingerprint").input(HISTORY_FINGERPRINT[:14]).run()
    assert list(at.dataframe[0].value["run_id"]) == history.runs[::-1]
    at.text_input(key="runs_fingerprint").input("").run()
    at.text_input(key="runs_group").input("invocation-7").run()
    assert sorted(at.dataframe[0].value["run_id"]) == sorted([history.runs[7], history.jmeter])


def test_the_sidebar_names_a_server_warehouse_without_its_password(monkeypatch: pytest.MonkeyPatch,
                                                                  clickhouse_server: str) -> None:
    """The warehouse URL in the sidebar (and in screenshots of it) hides the password it carries."""
    port = clickhouse_server.rsplit(":", 1)[1].split("/", 1)[0]
    at = run_app(monkeypatch, f"clickhouse://perfhouse:s3cret-pw@127.0.0.1:{port}/default")
    shown = " ".join(str(c.value) for c in at.sidebar.caption)
    assert f"clickhouse://perfhouse:***@127.0.0.1:{port}/default" in shown and "s3cret-pw" not in shown


def test_the_run_page_shows_the_gate_outcome_of_a_set_of_repeats(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """A set of three repeats judged WORSE as one: each of its runs' pages says so and names the set; a run never
    gated says how to gate it."""
    import numpy as np

    from tests.integration.test_gate_repeat import seed_set
    from warehouse.analysis.gate import gate_set

    url = f"chdb://{tmp_path / 'warehouse'}"
    wh = Warehouse.open(url)
    rng = np.random.default_rng(20261207)
    history = [seed_set(wh, tmp_path, rng, f"h{day:02d}", day, 1)[0] for day in range(1, 11)]
    slower = seed_set(wh, tmp_path, rng, "slower", 12, 3, {"view": 1.25})
    assert gate_set(wh, slower).outcome == "FAILED: regression"
    getattr(wh.backend, "release", lambda: None)()
    at = run_app(monkeypatch, url, page="run", run=slower[1])
    shown = at.error[0].value
    assert "Gate: **FAILED: regression** (exit status 8) against baseline `h10-0`" in shown
    assert re.search(r"rows: [1-9][0-9]* WORSE", shown), shown
    assert "one set of 3 repeats" in shown and all(f"`{r}`" in shown for r in slower)
    at = run_app(monkeypatch, url, page="run", run=history[0])
    assert not at.error and any("Not gated" in c.value for c in at.caption)
