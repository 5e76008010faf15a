"""Runs that hold a tool's own figures instead of requests (interval aggregates): Locust's `--csv` statistics of a
locustfile perfhouse did not write, and JMeter's backend-listener lines. Reports show their per-step counts,
failures and the tool's percentiles, marked as the tool's, in every format (golden files in tests/golden/report/,
on both backends); the gate says it cannot judge them. `--update-golden` rewrites the golden files."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
from pathlib import Path, PurePosixPath

import pytest

from warehouse.analysis.gate import gate, junit_xml
from warehouse.report.report_formats import FORMATS
from warehouse.report.reports import NO_SLOS, GroupReport, ReportOptions, build_group_report
from warehouse.store import RunInfo, Warehouse

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "report"
LOCUST = RunInfo(run_id="20260101-100000-locust-figures", tool="locust", status="imported", name="shop",
                 source="import", started_at="2026-11-30 16:58:38.000", ended_at="2026-11-30 16:58:41.000")
JMETER = RunInfo(run_id="20260101-100000-jmeter-listener", tool="jmeter", status="imported", name="shop listener",
                 source="import", started_at="2026-01-01 10:00:00.000", ended_at="2026-01-01 10:00:10.000")


def check_golden(request: pytest.FixtureRequest, name: str, text: str) -> None:
    golden = GOLDEN / name
    if request.config.getoption("--update-golden"):
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"{golden} is missing: run pytest --update-golden and review it"
    assert text == golden.read_text(encoding="utf-8"), f"{golden} differs: review, then --update-golden"


def locust_files(tmp_path: Path) -> tuple[Path, Path]:
    """The checked-in statistics of a real Locust run, as `locust --csv shop` wrote them."""
    stats, history = tmp_path / "shop_stats.csv", tmp_path / "shop_stats_history.csv"
    shutil.copy(GOLDEN / "locust_stats.csv", stats)
    shutil.copy(GOLDEN / "locust_stats_history.csv", history)
    os.utime(stats, (1_796_057_521, 1_796_057_521))  # the end-of-test table takes its file's time
    return stats, history


def figures_warehouse(url: str, tmp_path: Path) -> Warehouse:
    wh = Warehouse.open(url)
    stats, history = locust_files(tmp_path)
    wh.save_run(dataclasses.replace(LOCUST))
    for path in (history, stats):
        assert wh.ingest(path, dataclasses.replace(LOCUST)).rejected == 0
    wh.save_run(dataclasses.replace(JMETER))
    assert wh.ingest(GOLDEN / "backend-listener.lp", dataclasses.replace(JMETER)).rejected == 0
    return wh


def document(wh: Warehouse, run_id: str) -> GroupReport:
    return build_group_report(wh, [run_id], ReportOptions((50, 90, 95, 99)))


def render(fmt: str, doc: GroupReport) -> str:
    return FORMATS[fmt](doc, PurePosixPath("report.md") if fmt == "md" else None).text


def locust_csv_rows() -> dict[str, dict[str, str]]:
    with open(GOLDEN / "locust_stats.csv", newline="") as fh:
        return {row["Name"]: row for row in csv.DictReader(fh)}


def test_a_locust_csv_run_reports_locusts_own_figures_per_step(any_warehouse_url: str, tmp_path: Path,
                                                               request: pytest.FixtureRequest) -> None:
    wh = figures_warehouse(any_warehouse_url, tmp_path)
    doc = document(wh, LOCUST.run_id)
    report = doc.runs[0]
    assert report.verdict == NO_SLOS and report.totals.count == 0
    figures = report.tool_figures
    assert figures is not None and figures.tool == "locust"
    theirs = locust_csv_rows()
    for step in [*figures.steps, figures.overall]:
        assert step is not None
        row = theirs[step.step]
        assert (step.count, step.failures) == (int(row["Request Count"]), int(row["Failure Count"]))
        assert (step.percentile(95), step.percentile(99.9)) == (float(row["95%"]), float(row["99.9%"]))
        assert step.avg_ms == pytest.approx(float(row["Average Response Time"]))
    assert [s.step for s in figures.steps] == ["list products", "missing page"]
    assert len(figures.timeline) == 4 and figures.timeline[-1].p95_ms == 38  # the history's Aggregated rows

    rendered = FORMATS["md"](doc, PurePosixPath("report.md"))
    md = rendered.text
    assert "## Locust's own figures" in md and "not perfhouse's exact percentiles" in md
    assert "No requests: this run holds Locust's own figures" in md
    assert sorted(rendered.files) == ["report_files/tool-latency.png", "report_files/tool-throughput.png"]
    check_golden(request, "locust-figures.md", md)
    check_golden(request, "locust-figures.json", render("json", doc))
    check_golden(request, "locust-figures.junit.xml", render("junit", doc))
    html = render("html", doc)
    assert "<h2>Locust&#x27;s own figures</h2>" in html and "not perfhouse&#x27;s exact percentiles" in html
    assert 'data-chart="tool-latency"' in html and 'data-chart="tool-throughput"' in html
    assert html == render("html", document(Warehouse.open(any_warehouse_url), LOCUST.run_id))


def test_a_jmeter_backend_listener_run_reports_jmeters_figures_folded_over_its_intervals(
        any_warehouse_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    wh = figures_warehouse(any_warehouse_url, tmp_path)
    doc = document(wh, JMETER.run_id)
    figures = doc.runs[0].tool_figures
    assert figures is not None and figures.tool == "jmeter"
    steps = {s.step: s for s in figures.steps}
    products = steps["list products"]
    assert (products.count, products.failures) == (84, 3)  # 40 + 44 samples, the second interval's 3 ko
    assert products.avg_ms == pytest.approx((40 * 12.5 + 44 * 18.0) / 84)
    assert (products.min_ms, products.max_ms, products.percentile(95)) == (3.0, 90.0, 70.0)  # the worst interval
    assert (steps["login"].count, steps["login"].failures) == (22, 0)
    assert figures.overall is not None and (figures.overall.count, figures.overall.failures) == (106, 3)
    assert [(p.rps, p.failures_per_s) for p in figures.timeline] == [(10.0, 0.0), (11.2, 0.6)]  # per 5 s interval
    md = render("md", doc)
    assert "## JMeter's own figures" in md and "the highest of the intervals'" in md
    check_golden(request, "jmeter-figures.md", md)
    check_golden(request, "jmeter-figures.json", render("json", doc))


def test_the_gate_says_it_cannot_judge_a_run_of_the_tools_figures(tmp_path: Path) -> None:
    wh = figures_warehouse(f"chdb://{tmp_path / 'wh'}", tmp_path)
    result = gate(wh, LOCUST.run_id)
    assert result.comparison is None and int(result.exit_status) == 0
    assert any("the run holds Locust's own figures" in n for n in result.notes)
    assert "regression checks skipped: the run has no request samples to compare" in junit_xml([result])
    as_json = json.loads(render("json", document(wh, LOCUST.run_id)))
    assert as_json["runs"][0]["comparison"]["notes"] == [
        "No comparison: the run holds Locust's own figures (interval aggregates), not the request samples a "
        "comparison tests"]
