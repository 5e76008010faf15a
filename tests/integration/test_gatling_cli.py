"""Gatling runs through the commands a team uses: ingest, runs, report (md, html, junit, json), compare and trends, on
the embedded warehouse. Gatling's own test file, and a history of runs of one simulation written in Gatling 3.11's
layout, the last one 40 % slower on one step."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

DATA = ROOT / "tests" / "data" / "gatling"
T0 = 1_767_225_600_000  # 2026-01-01 in ms
STEPS = {"Home": 80.0, "Search": 120.0, "Checkout / Pay": 200.0}  # step -> typical response time (ms)


def perfhouse(warehouse: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", warehouse, *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "CI": "true"})


def simulation_log(path: Path, day: int, seed: int, slower: str = "", requests: int = 400) -> Path:
    """A run of shop.ShopSimulation as Gatling 3.11 writes it: one scenario, groups as paths, a few KOs."""
    rng = random.Random(seed)
    start = T0 + day * 86_400_000
    lines = [f"RUN\tshop.ShopSimulation\tshopsimulation\t{start}\t \t3.11.5", f"USER\tshoppers\tSTART\t{start}"]
    for i in range(requests):
        for step, typical in STEPS.items():
            *groups, name = step.split(" / ")
            took = int(rng.gauss(typical * (1.4 if step == slower else 1.0), typical * 0.02))
            begin = start + i * 100 + rng.randrange(50)
            ko = rng.random() < 0.01
            lines.append(f"REQUEST\t{','.join(groups)}\t{name}\t{begin}\t{begin + took}\t{'KO' if ko else 'OK'}\t"
                         f"{'status.find.is(200), but actually found 503' if ko else ' '}")
        if i % 50 == 0:
            lines.append(f"GROUP\tCheckout\t{start + i * 100}\t{start + i * 100 + 250}\t200\tOK")
    lines.append(f"USER\tshoppers\tEND\t{start + requests * 100 + 500}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_gatling_runs_report_compare_and_trend(tmp_path: Path) -> None:
    wh = f"chdb://{tmp_path / 'wh'}"
    paths = [simulation_log(tmp_path / f"day{day}.log", day, seed=day, slower="Search" if day == 5 else "")
             for day in range(6)]
    done = perfhouse(wh, "ingest", *map(str, paths), "--json")  # a run per file
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["tool"], r["rows"], r["rejected"]) for r in results] == [("gatling", 3 * 400, 0)] * 6  # GROUPs: none
    runs = [r["run_id"] for r in results]

    listed = perfhouse(wh, "runs")
    assert listed.returncode == 0 and listed.stdout.count("shopsimulation") == 6 and "gatling" in listed.stdout

    compared = perfhouse(wh, "compare", runs[4], runs[5], "--json")
    assert compared.returncode == 0, compared.stderr
    comparison = json.loads(compared.stdout)
    assert comparison["verdict"] == "WORSE"
    rows = {r["step"]: r["verdict"] for r in comparison["steps"] if not r["overall"]}
    assert rows["Search"] == "WORSE"
    assert rows["Home"] in ("SAME", "INCONCLUSIVE") and rows["Checkout / Pay"] in ("SAME", "INCONCLUSIVE")

    trend = perfhouse(wh, "trends", "--step", "Search", "--json")
    assert trend.returncode == 0, trend.stderr
    [series] = json.loads(trend.stdout)["series"]
    assert (series["tool"], series["journey"], series["spec_name"]) == ("gatling", "shoppers", "shop.ShopSimulation")
    assert [p["run_id"] for p in series["points"]] == runs
    assert [c["run_id"] for c in series["change_points"]] == [runs[5]]  # the 40 % slower run

    for fmt in ("md", "junit"):
        report = perfhouse(wh, "report", runs[5], "--format", fmt, "-o", str(tmp_path / f"report.{fmt}"))
        assert report.returncode in (0, 8), (fmt, report.stderr)
        assert "Traceback" not in report.stderr
    markdown = (tmp_path / "report.md").read_text()
    assert "Checkout / Pay" in markdown and "shoppers" in markdown
    assert "status.find.is(200), but actually found 503" in markdown  # KO messages are the run's errors


def test_gatlings_own_file_reports_its_percentiles(tmp_path: Path) -> None:
    """Gatling's LogFileReaderSpec: percentiles 70 → 5000 and 99 → 8860 of the 3.3 file, through `report`."""
    wh = f"chdb://{tmp_path / 'wh'}"
    done = perfhouse(wh, "ingest", str(DATA / "gatling-3.3.log"), "--json")
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    report = perfhouse(wh, "report", run_id, "--format", "json", "--percentiles", "70,99")
    assert report.returncode == 0, report.stderr
    totals = json.loads(report.stdout)["runs"][0]["totals"]
    assert (totals["count"], totals["errors"], totals["max_ms"]) == (8, 0, 9000)
    assert (totals["p70_ms"], totals["p99_ms"]) == (5000, pytest.approx(8860))


def test_a_gatling_results_directory_imports_a_run_per_simulation_log(tmp_path: Path) -> None:
    """Gatling's results/ holds a directory per run: its simulation.log beside the HTML report's files, which are
    skipped as files that are not results."""
    results = tmp_path / "results"
    for day in (1, 2):
        run_dir = results / f"shopsimulation-2026010{day}120000000"
        (run_dir / "js").mkdir(parents=True)
        simulation_log(run_dir / "simulation.log", day, seed=day, requests=20)
        (run_dir / "index.html").write_text("<html><body>Gatling's report</body></html>\n")
        (run_dir / "js" / "stats.js").write_text("var stats = {};\n")
    done = perfhouse(f"chdb://{tmp_path / 'wh'}", "ingest", str(results), "--recursive", "--json")
    assert done.returncode == 0, done.stderr
    outcomes = [json.loads(line) for line in done.stdout.splitlines()]
    ingested = sorted((o["path"], o["rows"]) for o in outcomes if o["status"] == "ingested")
    assert [(Path(p).parent.name, rows) for p, rows in ingested] == [
        ("shopsimulation-20260101120000000", 60), ("shopsimulation-20260102120000000", 60)]
    assert {o["status"] for o in outcomes if not o["path"].endswith("simulation.log")} == {"skipped"}
