"""Reports of a run with trace context list its slowest samples, linked to their traces, on both backends."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path, PurePosixPath

import pytest

from tests.integration.test_report_golden import check_golden
from warehouse.report.report_formats import FORMATS
from warehouse.report.reports import GroupReport, ReportOptions, build_group_report
from warehouse.report.traces import TRACE_URL_ENV, TRACE_URL_LABEL
from warehouse.store import RunInfo, Warehouse

pytestmark = pytest.mark.integration

JTL = Path(__file__).resolve().parents[1] / "golden" / "report" / "traced.jtl"
RUN = RunInfo(run_id="20260101-100000-jmeter-traced", tool="jmeter", status="completed", name="shop/traced",
              tool_version="5.6.3", spec_name="shop", profile="traced",
              labels={TRACE_URL_LABEL: "https://tempo.example/trace/{trace_id}"},
              started_at="2026-01-01 10:00:00.000", ended_at="2026-01-01 10:00:04.000")
SLOWEST = "144488e03bf528da5d612023dc8eb71e"  # sha256("trace-7")[:32]: the 210 ms sample of traced.jtl


def document(url: str, run: RunInfo) -> GroupReport:
    wh = Warehouse.open(url)
    wh.save_run(dataclasses.replace(run))
    result = wh.ingest(JTL, dataclasses.replace(run))
    assert result.rows == 14 and result.rejected == 0
    return build_group_report(wh, [run.run_id], ReportOptions())


def test_the_slowest_traced_samples_link_to_their_traces(any_warehouse_url: str, request: pytest.FixtureRequest,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRACE_URL_ENV, "http://jaeger.example/trace/{trace_id}")  # the run's own template wins
    doc = document(any_warehouse_url, RUN)
    slowest = doc.runs[0].slowest
    # the sample without a trace id ("null" saved for an unset variable) is not listed
    assert len(slowest) == 10 and all(len(s["trace_id"]) == 32 for s in slowest)
    assert [s["duration_ms"] for s in slowest[:3]] == [210.0, 120.0, 95.0]
    assert slowest[0]["trace_id"] == SLOWEST
    md = FORMATS["md"](doc, PurePosixPath("report.md")).text
    check_golden(request, "traced.md", md)
    html = FORMATS["html"](doc, None).text
    assert f'<a href="https://tempo.example/trace/{SLOWEST}"><code>{SLOWEST}</code></a>' in html
    data = json.loads(FORMATS["json"](doc, None).text)
    assert data["runs"][0]["slowest"][0]["trace_url"] == f"https://tempo.example/trace/{SLOWEST}"


def test_the_environment_gives_the_template_a_run_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"chdb://{tmp_path / 'wh'}"
    plain = dataclasses.replace(RUN, labels={})
    monkeypatch.delenv(TRACE_URL_ENV, raising=False)
    doc = document(url, plain)
    assert doc.runs[0].slowest[0]["trace_url"] == ""
    md = FORMATS["md"](doc, None).text
    assert f"| `{SLOWEST}` |" in md and "](<" not in md  # the ids, unlinked
    monkeypatch.setenv(TRACE_URL_ENV, "http://jaeger.example:16686/trace/{trace_id}")
    again = build_group_report(Warehouse.open(url), [plain.run_id], ReportOptions())
    assert again.runs[0].slowest[0]["trace_url"] == f"http://jaeger.example:16686/trace/{SLOWEST}"


def test_a_run_without_trace_ids_has_no_slowest_samples_section(tmp_path: Path) -> None:
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    result = wh.ingest(JTL.with_name("run.jtl"))
    doc = build_group_report(wh, [result.run_id], ReportOptions())
    assert doc.runs[0].slowest == [] and "Slowest samples" not in FORMATS["md"](doc, None).text


def test_the_run_page_links_the_slowest_samples_to_their_traces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    url = f"chdb://{tmp_path / 'wh'}"
    document(url, RUN)
    monkeypatch.setenv("PERFHOUSE_WAREHOUSE", url)
    monkeypatch.setenv("PERFHOUSE_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.query_params.update(page="run", run=RUN.run_id)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Slowest samples" in [h.value for h in at.subheader]
    frame = next(d.value for d in at.dataframe if "trace_url" in d.value.columns)
    assert frame["trace_id"].iloc[0] == SLOWEST and frame["duration_ms"].iloc[0] == 210.0
    assert frame["trace_url"].iloc[0] == f"https://tempo.example/trace/{SLOWEST}"
    assert len(frame) == 10 and frame["step"].iloc[0] == "shop / detail"
