"""perfhouse run end to end with real tools: warehouse figures equal the tools' own summaries."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orchestrator.demo_api import DemoAPI
from orchestrator.run import run_tool
from orchestrator.spec import load_spec
from tests.conftest import ROOT, need
from warehouse.analysis import slo
from warehouse.report.report_formats import render_markdown
from warehouse.report.reports import ReportOptions, build_group_report
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration


def short_spec(tmp_path: Path, seconds: int = 4, vus: int = 3) -> Path:
    head, _, tail = (ROOT / "examples" / "shop.yaml").read_text(encoding="utf-8").partition("profiles:\n")
    slos = tail[tail.index("slos:") :]
    path = tmp_path / "shop.yaml"
    path.write_text(
        head + f"profiles:\n  quick: {{executor: constant_vus, vus: {vus}, duration: {seconds}s}}\n" + slos,
        encoding="utf-8",
    )
    return path


def test_k6_percentiles_in_warehouse_equal_k6_summary_export(tmp_path: Path, warehouse_url: str) -> None:
    need("k6")
    spec = load_spec(short_spec(tmp_path))
    wh = Warehouse.open(warehouse_url)
    with DemoAPI() as api:
        outcome = run_tool(spec, "k6", wh, "quick", {"api": api.url}, runs_dir=tmp_path / "runs")
    assert outcome.status == "completed"
    summary = json.loads((outcome.directory / "k6-summary.json").read_text())
    k6 = summary["metrics"]["http_req_duration"]
    totals = wh.totals(outcome.run_id)
    assert totals["count"] == summary["metrics"]["http_reqs"]["count"] > 20
    for ours, theirs in (
        ("p95_ms", "p(95)"),
        ("p90_ms", "p(90)"),
        ("p99_ms", "p(99)"),
        ("p50_ms", "med"),
        ("avg_ms", "avg"),
        ("max_ms", "max"),
    ):
        assert totals[ours] == pytest.approx(k6[theirs], abs=0.01), ours
    # the report shows k6's own figures beside the warehouse's
    doc = build_group_report(wh, [outcome.run_id], ReportOptions(baseline="none"))
    shown = {f.figure: f for f in doc.runs[0].tool_summary}
    assert set(shown) >= {"requests", "request error rate", "avg ms", "p50 ms", "p90 ms", "p95 ms", "max ms"}
    assert shown["requests"].theirs == summary["metrics"]["http_reqs"]["count"] == shown["requests"].warehouse
    assert shown["p95 ms"].theirs == k6["p(95)"] and shown["p95 ms"].difference == pytest.approx(0, abs=0.01)
    assert shown["p95 ms"].to_dict()["k6"] == k6["p(95)"]  # the JSON names the tool's value by the tool
    # k6's rate (over its test's duration) beside the warehouse's (over the requests' span), and what each is
    rate = shown["requests/s"]
    assert rate.theirs == summary["metrics"]["http_reqs"]["rate"] and rate.warehouse == doc.runs[0].totals.throughput
    assert "requests/s over the requests' span" in render_markdown(doc).text
    assert "## k6's own summary" in render_markdown(doc).text
    # per journey and step, the tags k6 wrote join with the spec
    steps = {(s.journey, s.step) for s in wh.step_stats(outcome.run_id)}
    assert steps == {
        ("browse", "list_products"),
        ("browse", "view_product"),
        ("checkout", "login"),
        ("checkout", "add_to_cart"),
    }
    assert {v.slo for v in outcome.verdicts} == {v.slo for v in slo.stored(wh.backend, outcome.run_id)}
    run = wh.run(outcome.run_id)
    assert (run.status, run.tool, run.profile, run.spec_name) == (
        "completed",
        "k6",
        "quick",
        "shop",
    )


def test_jmeter_count_errors_and_average_equal_its_summariser(tmp_path: Path, warehouse_url: str) -> None:
    need("jmeter")
    spec = load_spec(short_spec(tmp_path, seconds=4, vus=2))
    wh = Warehouse.open(warehouse_url)
    with DemoAPI() as api:
        outcome = run_tool(spec, "jmeter", wh, "quick", {"api": api.url}, runs_dir=tmp_path / "runs")
    assert outcome.status == "completed"
    log = (outcome.directory / "jmeter-console.log").read_text()
    line = [m for m in re.finditer(r"summary =\s+(\d+) in .*?Avg:\s+(\d+) .*?Err:\s+(\d+)", log)][-1]
    count, avg, errors = (int(g) for g in line.groups())
    totals = wh.totals(outcome.run_id)
    assert totals["count"] == count > 10
    assert totals["errors"] == errors
    assert avg in (int(totals["avg_ms"]), round(totals["avg_ms"]))  # printed in whole ms
    steps = {(s.journey, s.step, s.service) for s in wh.step_stats(outcome.run_id)}
    assert ("checkout", "add_to_cart", "api") in steps and len(steps) == 4
