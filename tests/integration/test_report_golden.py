"""Reports are deterministic for a given warehouse state: a fixed run (a checked-in JTL of a stepped load, fixed
metadata, scraped samples and SLOs) renders to the reviewed Markdown, JSON and JUnit files in
tests/golden/report/, on both backends. `pytest tests/integration/test_report_golden.py --update-golden` rewrites
them; review the diff like code."""

from __future__ import annotations

import dataclasses
import math
import random
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath

import pytest

from warehouse.analysis.baseline import pin
from warehouse.analysis.compare import compare
from warehouse.analysis.slo import Objective
from warehouse.errors import DataError
from warehouse.report.report_formats import FORMATS, Rendered
from warehouse.report.reports import (
    ABORTED,
    NO_SLOS,
    GroupReport,
    ReportOptions,
    build_group_report,
    comparison_of,
    run_verdict,
)
from warehouse.store import RunInfo, Warehouse

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "report"
RUN = RunInfo(run_id="20260101-100000-jmeter-golden", tool="jmeter", status="completed", name="shop/capacity",
              tool_version="5.6.3", spec_name="shop", profile="capacity", environment="staging",
              started_at="2026-01-01 10:00:00.000", ended_at="2026-01-01 10:00:21.000")
OBJECTIVES = [
    Objective("p95", 100.0),
    Objective("p99.9", 400.0, journey="shop", step="detail"),
    Objective("error_rate", 0.05, journey="shop", step="pay"),
    Objective("p75", 60.0, step="list"),
]
THREADS = {0: 1, 1: 2, 2: 4, 3: 8}  # the load of each 5 s step of run.jtl


def infra_rows() -> list[tuple[str, str, str, dict[str, str], float]]:
    rows = []
    cpu_seconds = 0.0
    for second in range(21):
        threads = THREADS[min(second // 5, 3)]
        cpu_seconds += 0.1 * threads
        ts = f"2026-01-01 10:00:{second:02d}.500"
        rows.append((ts, "http://127.0.0.1:9100/metrics", "sut_cpu_ratio", {"host": "app"}, threads / 8))
        rows.append((ts, "http://127.0.0.1:9100/metrics", "process_cpu_seconds_total", {}, round(cpu_seconds, 3)))
        rows.append((ts, "http://127.0.0.1:9100/metrics", "sut_pool_size", {}, 32.0))
    return rows


def golden_document(url: str) -> GroupReport:
    wh = Warehouse.open(url)
    wh.save_run(dataclasses.replace(RUN))
    result = wh.ingest(GOLDEN / "run.jtl", dataclasses.replace(RUN))
    assert result.rows == 150 and result.rejected == 0
    wh.add_infra_samples(RUN.run_id, infra_rows())
    wh.evaluate_slos(RUN.run_id, OBJECTIVES)
    return build_group_report(wh, wh.run_group(RUN.run_id), ReportOptions((50, 75, 95, 99, 99.9), apdex_t_ms=50))


def golden_document_again(url: str) -> GroupReport:
    """The same warehouse reported a second time (nothing re-ingested)."""
    return build_group_report(Warehouse.open(url), [RUN.run_id], ReportOptions((50, 75, 95, 99, 99.9), 50))


def check_golden(request: pytest.FixtureRequest, name: str, text: str) -> None:
    golden = GOLDEN / name
    if request.config.getoption("--update-golden"):
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"{golden} is missing: run pytest --update-golden and review it"
    assert text == golden.read_text(encoding="utf-8"), f"{golden} differs: review, then --update-golden"


def render(fmt: str, doc: GroupReport) -> Rendered:
    return FORMATS[fmt](doc, PurePosixPath("report.md") if fmt == "md" else None)


def test_reports_of_a_fixed_warehouse_state_match_the_golden_files(any_warehouse_url: str,
                                                                   request: pytest.FixtureRequest) -> None:
    doc = golden_document(any_warehouse_url)
    report = doc.runs[0]
    assert report.verdict == "FAILED"
    assert report.capacity is not None and report.capacity["knee"] == 2  # 4 threads broke p95 < 100 ms
    md = render("md", doc)
    check_golden(request, "report.md", md.text)
    assert sorted(md.files) == [f"report_files/{k}.png" for k in
                                ("bottlenecks", "capacity", "infrastructure", "latency", "throughput")]
    assert all(data.startswith(b"\x89PNG") for data in md.files.values())
    assert render("html", doc).text == render("html", golden_document_again(any_warehouse_url)).text
    check_golden(request, "report.json", render("json", doc).text)
    check_golden(request, "report.junit.xml", render("junit", doc).text)

    aborted = dataclasses.replace(report, run=dataclasses.replace(report.run, status="aborted"))
    aborted.verdict = run_verdict("aborted", aborted.slos)
    assert aborted.verdict == ABORTED
    check_golden(request, "report-aborted.junit.xml", render("junit", GroupReport([aborted])).text)
    none = dataclasses.replace(report, slos=[])
    none.verdict = run_verdict("completed", [])
    assert none.verdict == NO_SLOS
    check_golden(request, "report-no-slos.junit.xml", render("junit", GroupReport([none])).text)


def test_junit_is_the_form_ci_servers_read(tmp_path: Path) -> None:
    """Checked against the golden files themselves: testsuite counts agree with their testcases."""
    for name in ("report.junit.xml", "report-aborted.junit.xml", "report-no-slos.junit.xml"):
        root = ET.parse(GOLDEN / name).getroot()
        assert root.tag == "testsuites"
        for suite in root.iter("testsuite"):
            cases = suite.findall("testcase")
            assert int(suite.get("tests", -1)) == len(cases)
            for kind, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
                assert int(suite.get(attr, -1)) == sum(1 for c in cases if c.find(kind) is not None), (name, kind)


def test_a_group_is_reported_side_by_side_and_a_comparison_when_attached(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'warehouse'}"
    golden_document(url)
    wh = Warehouse.open(url)
    other = dataclasses.replace(RUN, run_id="20260101-100000-jmeter-other", tool_version="5.6.2")
    slower = tmp_path / "other.jtl"
    lines = (GOLDEN / "run.jtl").read_text(encoding="utf-8").splitlines()
    slower.write_text("\n".join([lines[0], *(",".join([r.split(",")[0], str(int(r.split(",")[1]) + 5),
                                                          *r.split(",")[2:]]) for r in lines[1:])]) + "\n")
    wh.save_run(other)
    wh.ingest(slower, dataclasses.replace(other))
    doc = build_group_report(wh, [RUN.run_id, other.run_id])
    assert doc.verdict == "FAILED"  # the first run failed its SLOs; the second has none
    assert doc.comparison is not None and doc.comparison.notes == ["No comparison: the runs share no group"]
    doc.comparison = comparison_of(compare(wh, RUN.run_id, other.run_id))
    md = render("md", doc).text
    assert "Runs of one invocation, side by side:" in md
    assert f"## jmeter · `{RUN.run_id}`: FAILED" in md and f"## jmeter · `{other.run_id}`: NO SLOS" in md
    assert md.count("### SLOs") == 2
    assert f"Against baseline `{RUN.run_id}` (named): **INCONCLUSIVE**" in md
    assert "| shop/list | 48 → 48 | " in md and "- **shop/list**: INCONCLUSIVE: too few samples" in md
    assert set(render("md", doc).files) >= {"report_files/run1-latency.png", "report_files/run2-latency.png"}
    page = render("html", doc).text
    assert "Against the baseline" in page and page.count('data-chart="latency"') == 2
    data = render("json", doc).text
    assert '"baseline_run": "' + RUN.run_id + '"' in data
    suites = ET.fromstring(render("junit", doc).text.split("\n", 1)[1]).findall("testsuite")
    assert [s.get("skipped") for s in suites] == ["0", "1"]


def test_a_run_without_requests_reports_its_verdict_in_every_format(tmp_path: Path) -> None:
    wh = Warehouse.open(f"chdb://{tmp_path / 'warehouse'}")
    empty = dataclasses.replace(RUN, run_id="20260101-100000-k6-empty", tool="k6", status="aborted")
    wh.save_run(empty)
    doc = build_group_report(wh, wh.run_group(empty.run_id))
    assert doc.verdict == ABORTED and doc.runs[0].totals["count"] == 0 and doc.runs[0].capacity is None
    for fmt in ("md", "html", "json", "junit"):
        assert render(fmt, doc).text
    assert "**Verdict: ABORTED**" in render("md", doc).text
    assert 'errors="1"' in render("junit", doc).text  # nothing was judged: the run errored


# -- a run against its baseline ------------------------------------------------------------------------------

FINGERPRINT = "fp-golden-compare"
BASELINE_RUN = dataclasses.replace(RUN, run_id="20260101-090000-jmeter-baseline", name="shop/ci", profile="ci",
                                   fingerprint=FINGERPRINT, started_at="2026-01-01 09:00:00.000",
                                   ended_at="2026-01-01 09:00:20.000")
CURRENT_RUN = dataclasses.replace(BASELINE_RUN, run_id="20260101-100000-jmeter-current",
                                  started_at="2026-01-01 10:00:00.000", ended_at="2026-01-01 10:00:20.000")
STEPS = {"list": 20.0, "detail": 40.0, "pay": 30.0}  # median ms of each step in the baseline
PER_STEP = 1500


def compared_jtl(path: Path, start_ms: int, seed: int, slower: dict[str, float], failing: dict[str, float]) -> Path:
    """A JMeter 5 JTL of PER_STEP samples per step over 20 s, lognormal durations (whole ms, as JMeter writes):
    `slower` scales a step's durations, `failing` is the share of its samples answered 500."""
    rng = random.Random(seed)
    lines = [(GOLDEN / "run.jtl").read_text(encoding="utf-8").splitlines()[0]]
    for i in range(PER_STEP):
        for step, median in STEPS.items():
            elapsed = max(1, round(median * slower.get(step, 1.0) * math.exp(rng.gauss(0, 0.25))))
            failed = rng.random() < failing.get(step, 0.0)
            code, message, ok = ("500", "Internal Server Error", "false") if failed else ("200", "OK", "true")
            lines.append(f"{start_ms + i * 13},{elapsed},{step},{code},{message},shop 1-1,text,{ok},,512,120,4,4,"
                         f"http://127.0.0.1:8080/{step},{max(1, elapsed - 1)},0,1")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def compared_document(url: str, tmp: Path, baseline: str | None = None) -> GroupReport:
    """The current run (detail 30 % slower, pay failing 8 %) reported against the baseline of its history."""
    wh = Warehouse.open(url)
    for run, seed, slower, failing in ((BASELINE_RUN, 1, {}, {}),
                                       (CURRENT_RUN, 2, {"detail": 1.3}, {"pay": 0.08})):
        wh.save_run(dataclasses.replace(run))
        start = 1767258000000 if run is BASELINE_RUN else 1767261600000
        result = wh.ingest(compared_jtl(tmp / f"{run.run_id}.jtl", start, seed, slower, failing),
                           dataclasses.replace(run))
        assert result.rows == PER_STEP * len(STEPS) and result.rejected == 0
    return build_group_report(wh, [CURRENT_RUN.run_id], ReportOptions(baseline=baseline))


def test_a_run_reported_against_its_baseline_matches_the_golden_files(any_warehouse_url: str, tmp_path: Path,
                                                                      request: pytest.FixtureRequest) -> None:
    doc = compared_document(any_warehouse_url, tmp_path)
    comparison = doc.runs[0].comparison
    assert comparison is not None and comparison.baseline_run == BASELINE_RUN.run_id and comparison.how == "auto"
    verdicts = {r.label: r.verdict for r in comparison.rows}
    assert verdicts == {"shop/detail": "WORSE", "shop/list": "SAME", "shop/pay": "WORSE", "overall": "WORSE"}
    assert comparison.verdict == "WORSE"
    # the figures are the analysis' own: what `compare` decides for the same pair
    analysed = compare(Warehouse.open(any_warehouse_url), CURRENT_RUN.run_id, baseline="auto")
    assert [(s.label, str(s.verdict), s.reason) for s in [*analysed.steps, analysed.overall]] == [
        (r.label, r.verdict, r.reason) for r in comparison.rows]
    detail = next(r for r in comparison.rows if r.step == "detail")
    assert detail.figures["p95_ms"]["change"] == pytest.approx(analysed.steps[0].deltas()["p95_ms"].relative)
    check_golden(request, "compared.md", render("md", doc).text)
    check_golden(request, "compared.json", render("json", doc).text)
    page = render("html", doc).text
    assert "<h2>Against the baseline</h2>" in page and f"Against baseline {BASELINE_RUN.run_id} (auto): WORSE" in page


def test_a_report_says_in_one_line_when_there_is_no_baseline(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'warehouse'}"
    compared_document(url, tmp_path)
    wh = Warehouse.open(url)
    first = build_group_report(wh, [BASELINE_RUN.run_id])  # the oldest run of its fingerprint
    md = render("md", first).text
    section = md.split("## Against the baseline\n\n", 1)[1]
    assert section.strip().splitlines() == [
        f"No baseline: no earlier completed run of fingerprint {FINGERPRINT} passed its SLOs and gate: "
        f"run {BASELINE_RUN.run_id} has no baseline yet"]
    assert "Against the baseline" not in render("md", build_group_report(wh, [CURRENT_RUN.run_id],
                                                                         ReportOptions(baseline="none"))).text
    named = build_group_report(wh, [BASELINE_RUN.run_id], ReportOptions(baseline=CURRENT_RUN.run_id))
    assert named.runs[0].comparison is not None and named.runs[0].comparison.how == "named"
    with pytest.raises(DataError, match="no baseline is pinned"):
        build_group_report(wh, [CURRENT_RUN.run_id], ReportOptions(baseline="pinned"))
    pin(wh, BASELINE_RUN.run_id)
    pinned = build_group_report(wh, [CURRENT_RUN.run_id]).runs[0].comparison
    assert pinned is not None and (pinned.baseline_run, pinned.how) == (BASELINE_RUN.run_id, "pinned")
