"""What a newcomer meets first: a mistyped tool or spec name, an empty folder, `latest` after importing history,
a suite's verdicts. Each says what it found and what to do, with the exit status of its kind."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.run import ToolRun
from orchestrator.suite import EntryResult, SuiteEntry
from tests.conftest import ROOT
from warehouse.analysis.slo import Verdict
from warehouse.errors import ExitStatus
from warehouse.store import RunInfo, Warehouse

pytestmark = pytest.mark.integration


def cli(*args: str, cwd: Path | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.parametrize("command", ["run", "generate"])
def test_an_unknown_tool_is_a_usage_error_naming_the_nearest(command: str) -> None:
    code, out = cli(command, str(ROOT / "examples" / "shop.yaml"), "--tool", "k7", "--profile", "ci")
    assert code == ExitStatus.USAGE
    assert "unknown tool 'k7'; did you mean 'k6'?" in out and "--tool" in out


def test_trends_of_an_unknown_spec_suggests_the_nearest_and_exits_2(warehouse_url: str) -> None:
    Warehouse.open(warehouse_url).save_run(RunInfo("20260101-000000-k6-aaaa", "k6", "completed", spec_name="shop"))
    code, out = cli("--warehouse", warehouse_url, "trends", "--spec", "shopp")
    assert code == ExitStatus.USAGE
    assert "no run of a spec named 'shopp'" in out and "did you mean 'shop'?" in out
    code, out = cli("--warehouse", warehouse_url, "trends", "--spec", "shop")  # known, nothing completed to trend
    assert code == 0 and "nothing to trend" in out


def test_runs_in_a_new_folder_names_the_warehouse_and_creates_none(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'nowhere'}"
    code, out = cli("--warehouse", url, "runs")
    assert code == 0 and f"no warehouse at {url} yet" in out
    assert not (tmp_path / "nowhere").exists()
    assert cli("--warehouse", url, "runs", "--json") == (0, "[]\n")


def test_runs_of_an_empty_warehouse_say_which_one(warehouse_url: str) -> None:
    Warehouse.open(warehouse_url)
    code, out = cli("--warehouse", warehouse_url, "runs")
    assert code == 0 and out == f"no runs in the warehouse {warehouse_url}\n"


def test_latest_is_the_run_recorded_last_not_the_one_started_last(warehouse_url: str) -> None:
    wh = Warehouse.open(warehouse_url)
    wh.save_run(RunInfo("20260101-120000-k6-aaaa", "k6", "completed", started_at="2026-01-01 12:00:00.000"))
    # older history imported a day later: its run is recorded last, though it started years before
    wh.save_run(RunInfo("20260102-090000-k6-bbbb", "k6", "imported", started_at="2020-05-01 08:00:00.000"))
    wh.save_run(RunInfo("hand-made-id", "k6", "imported", started_at="2019-01-01 00:00:00.000"))
    assert wh.resolve("latest") == "20260102-090000-k6-bbbb"


def test_the_suite_table_shows_each_runs_verdict_never_pass_for_no_slos_or_aborted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import orchestrator.suite

    suite = tmp_path / "suite.yaml"
    (tmp_path / "shop.yaml").write_text((ROOT / "examples" / "shop.yaml").read_text(encoding="utf-8"))
    suite.write_text("suite: nightly\nruns:\n  - {spec: shop.yaml, profile: ci}\n", encoding="utf-8")
    held = Verdict("p95 < 500", "overall", "p95", 500.0, 120.0, True)
    runs = [ToolRun("k6", "r-none", "completed", tmp_path), ToolRun("k6", "r-stop", "aborted", tmp_path),
            ToolRun("k6", "r-ok", "completed", tmp_path, verdicts=[held])]
    entry = SuiteEntry(suite, "ci")

    def fake(*_: object, **__: object) -> list[EntryResult]:
        return [EntryResult(entry, runs, exit_status=ExitStatus.ABORTED)]

    monkeypatch.setattr(orchestrator.suite, "run_suite", fake)
    code, out = cli("--warehouse", f"chdb://{tmp_path / 'wh'}", "run", str(suite))
    assert code == ExitStatus.ABORTED
    lines = {line.split()[2]: line.split()[-1] for line in out.splitlines() if line.split()[2:3] != []
             and line.split()[2].startswith("r-")}
    assert lines == {"r-none": "SLOS", "r-stop": "ABORTED", "r-ok": "PASSED"}
    assert " pass" not in out


def test_run_warns_before_it_starts_of_steps_too_thin_to_judge(tmp_path: Path) -> None:
    import subprocess
    import sys

    from orchestrator.demo_api import DemoAPI
    from tests.conftest import need

    need("k6")
    spec = tmp_path / "thin.yaml"
    spec.write_text(ABORTING.replace("duration: 60s", "duration: 1s").replace(
        "  - {metric: p95, threshold: 1ms, abort_on_fail: true}", "  - {metric: p95, threshold: 5s}").replace(
        "        path: /products", "        path: /products\n        think_time: 100ms"), encoding="utf-8")
    with DemoAPI() as api:
        proc = subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", f"chdb://{tmp_path / 'wh'}",
                               "run", str(spec), "--profile", "long", "--service", f"api={api.url}",
                               "--runs-dir", str(tmp_path / "runs"), "--progress-interval", "0"],
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # 2 VUs for 1 s, each iteration at least 100 ms: at most 20 requests, before anything of the run is printed
    assert proc.stderr.splitlines()[0] == (
        "perfhouse: warning: profile 'long' gives 1 step(s) fewer requests than the 200 a regression verdict needs, "
        "so they will be INCONCLUSIVE: browse/list (at most 20); lengthen the profile or raise its load")
    assert "warning" not in proc.stdout


ABORTING = """\
name: aborting
services:
  api: http://127.0.0.1:1
journeys:
  - name: browse
    steps:
      - name: list
        path: /products
profiles:
  long:
    executor: constant_vus
    vus: 2
    duration: 60s
slos:
  - {metric: p95, threshold: 1ms, abort_on_fail: true}
"""


def test_a_run_stopped_by_abort_on_fail_says_so_not_completed(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from orchestrator.demo_api import DemoAPI
    from tests.conftest import need

    need("k6")
    spec = tmp_path / "aborting.yaml"
    spec.write_text(ABORTING, encoding="utf-8")
    with DemoAPI() as api:  # k6 evaluates the threshold every few seconds and stops long before the 60 s
        proc = subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", f"chdb://{tmp_path / 'wh'}",
                               "run", str(spec), "--profile", "long", "--service", f"api={api.url}",
                               "--runs-dir", str(tmp_path / "runs"), "--progress-interval", "0"],
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == ExitStatus.SLO_FAILED, proc.stdout + proc.stderr
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("k6 run ")]
    assert line.endswith(": stopped early by an SLO with abort_on_fail: k6 crossed its threshold "
                         "('http_req_duration'), FAILED"), line
    assert "completed" not in line
    listed = subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", f"chdb://{tmp_path / 'wh'}", "runs",
                             "--json"], capture_output=True, text=True, timeout=120)
    (run,) = json.loads(listed.stdout)
    assert "stopped early by an SLO with abort_on_fail" in run["notes"]
