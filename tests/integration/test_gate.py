"""`perfhouse gate` and `run --gate` on real k6 runs against the demo API: exit statuses, JUnit XML checked
against tests/schemas/junit.xsd and read back by junitparser, and the Markdown job summary.

The runs are recorded once for the module (one warehouse): a passing run, a run of the same journeys against
a slower API (a regression, gated by `run --gate`), a run whose SLO is breached, and a run stopped by SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import junitparser
import pytest
import xmlschema

from orchestrator.demo_api import DemoAPI
from tests.conftest import ROOT, need
from warehouse.errors import ExitStatus
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

SPEC = """\
name: gate-shop
services:
  api: http://127.0.0.1:1
journeys:
  - name: browse
    weight: 1
    steps:
      - name: list
        path: /products
        checks:
          - status: 200
      - name: view
        path: /products/1
        checks:
          - status: 200
profiles:
  ci:
    executor: constant_vus
    vus: 20
    duration: 5s
  long:
    executor: constant_vus
    vus: 2
    duration: 120s
slos:
  - metric: p95
    threshold: {p95}
  - metric: error_rate
    threshold: 1%
"""
SCHEMA = xmlschema.XMLSchema(ROOT / "tests" / "schemas" / "junit.xsd")


@dataclass
class Recorded:
    warehouse: str
    tmp: Path
    passed: str  # run id of each
    regressed: str
    breached: str
    aborted: str
    died: str
    regressed_exit: int
    regressed_output: str
    regressed_junit: Path


def perfhouse(warehouse: str, *args: str, env: dict[str, str] | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", warehouse, *args],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def latest_run(warehouse: str) -> str:
    return Warehouse.open(warehouse).runs(limit=1)[0].run_id


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    need("k6")
    tmp = tmp_path_factory.mktemp("gate")
    warehouse = f"chdb://{tmp / 'warehouse'}"
    ok_spec, breach_spec = tmp / "shop.yaml", tmp / "shop-strict.yaml"
    ok_spec.write_text(SPEC.format(p95="500ms"))
    breach_spec.write_text(SPEC.format(p95="1ms"))  # the same journeys: the same fingerprint
    runs = ["--runs-dir", str(tmp / "runs"), "--progress-interval", "0"]
    with DemoAPI(delay_ms=(1.0, 4.0)) as fast, DemoAPI(delay_ms=(60.0, 80.0)) as slow:
        proc = perfhouse(warehouse, "run", str(ok_spec), "--profile", "ci", "--service", f"api={fast.url}", *runs)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        passed = latest_run(warehouse)
        junit = tmp / "regressed.xml"
        proc = perfhouse(warehouse, "run", str(ok_spec), "--profile", "ci", "--service", f"api={slow.url}",
                         "--gate", "--junit", str(junit), *runs)
        regressed, regressed_exit, regressed_output = latest_run(warehouse), proc.returncode, proc.stdout + proc.stderr
        proc = perfhouse(warehouse, "run", str(breach_spec), "--profile", "ci", "--service", f"api={fast.url}",
                         *runs)
        assert proc.returncode == ExitStatus.SLO_FAILED, proc.stdout + proc.stderr
        breached = latest_run(warehouse)
        aborted = interrupted_run(warehouse, ok_spec, fast.url, runs, tmp)
        died = run_whose_tool_dies(warehouse, ok_spec, fast.url, runs, tmp)
    yield Recorded(warehouse, tmp, passed, regressed, breached, aborted, died, regressed_exit, regressed_output,
                   junit)


def started_run(warehouse: str, spec: Path, url: str, runs: list[str], tmp: Path) -> tuple[subprocess.Popen[str], Path]:
    """A long run started in the background, returned once k6 has written results, with its directory."""
    before = set((tmp / "runs").iterdir())
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "--warehouse", warehouse, "run", str(spec),
                             "--profile", "long", "--service", f"api={url}", *runs],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start = time.monotonic()
    while True:
        written = [p for d in set((tmp / "runs").iterdir()) - before for p in d.glob("k6*.json") if p.stat().st_size]
        if written:
            return proc, written[0].parent
        assert time.monotonic() - start < 60 and proc.poll() is None, proc.stderr and proc.stderr.read()
        time.sleep(0.2)


def run_whose_tool_dies(warehouse: str, spec: Path, url: str, runs: list[str], tmp: Path) -> str:
    """A run whose k6 process is killed (SIGKILL) midway: the run's tool died, perfhouse did not."""
    proc, directory = started_run(warehouse, spec, url, runs, tmp)
    time.sleep(1)
    (pid,) = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _is_k6_of(p, directory)]
    os.kill(pid, signal.SIGKILL)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == ExitStatus.ERROR, err
    return latest_run(warehouse)


def _is_k6_of(proc: Path, directory: Path) -> bool:
    try:
        argv = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(argv) and Path(argv[0].decode(errors="replace")).name == "k6" and str(directory).encode() in b" ".join(argv)


def interrupted_run(warehouse: str, spec: Path, url: str, runs: list[str], tmp: Path) -> str:
    """A run stopped by SIGTERM once k6 has written results: perfhouse marks it aborted."""
    proc, _ = started_run(warehouse, spec, url, runs, tmp)
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == ExitStatus.ABORTED, err
    return latest_run(warehouse)


def read_junit(path: Path) -> dict[str, junitparser.TestCase]:
    SCHEMA.validate(str(path))  # raises with the offending element when the XML is not JUnit as CI reads it
    xml = junitparser.JUnitXml.fromfile(str(path))
    return {f"{case.classname}::{case.name}": case for suite in xml for case in suite}


def test_a_passing_run_with_no_baseline_yet_exits_0_and_says_the_checks_were_skipped(
    recorded: Recorded,
) -> None:
    summary = recorded.tmp / "summary-pass.md"
    proc = perfhouse(recorded.warehouse, "gate", recorded.passed, "--junit", str(recorded.tmp / "pass.xml"),
                     "--summary", str(summary))
    assert proc.returncode == ExitStatus.OK, proc.stdout + proc.stderr
    assert "PASSED" in proc.stdout and "regression checks skipped" in proc.stdout
    cases = read_junit(recorded.tmp / "pass.xml")
    slo = {k: c for k, c in cases.items() if k.startswith("perfhouse.slo.")}
    assert len(slo) == 3 and all(c.is_passed for c in slo.values())  # run completed + 2 SLOs
    (regression,) = [c for k, c in cases.items() if k.startswith("perfhouse.regression.")]
    assert regression.is_skipped
    assert "## perfhouse gate: OK" in summary.read_text()


def test_a_regressed_run_gated_at_its_end_exits_with_the_regression_status(recorded: Recorded) -> None:
    assert recorded.regressed_exit == ExitStatus.REGRESSION, recorded.regressed_output
    cases = read_junit(recorded.regressed_junit)
    steps = {k.split("::")[1]: c for k, c in cases.items() if k.startswith("perfhouse.regression.")}
    assert set(steps) == {"browse/list", "browse/view", "overall"}
    assert all(not c.is_passed and c.result[0].type == "Regression" for c in steps.values())
    assert all(c.is_passed for k, c in cases.items() if k.startswith("perfhouse.slo."))  # SLOs still hold


def test_gate_json_names_the_automatic_baseline_and_every_step_worse(recorded: Recorded) -> None:
    # the baseline's reason says whether it passed a gate: gate it here, whichever test of the module ran first
    assert perfhouse(recorded.warehouse, "gate", recorded.passed).returncode == ExitStatus.OK
    proc = perfhouse(recorded.warehouse, "gate", recorded.regressed, "--json")
    assert proc.returncode == ExitStatus.REGRESSION, proc.stderr
    (result,) = json.loads(proc.stdout)
    assert result["baseline"] == {"run_id": recorded.passed, "how": "auto",
                                  "fingerprint": result["run"]["fingerprint"], "note": "",
                                  "why": "the latest comparable run that passed its gate"}
    assert {s["verdict"] for s in result["comparison"]["steps"]} == {"WORSE"}
    assert result["regressions"] == ["browse/list", "browse/view", "overall"]
    assert all(s["p95_shift"] > 0.3 for s in result["comparison"]["steps"])  # 1-4 ms against 60-80 ms (a step gets ~700 requests even on a loaded machine)


def test_a_breached_slo_exits_3_and_outranks_the_regression_checks(recorded: Recorded) -> None:
    step_summary = recorded.tmp / "github-summary.md"
    step_summary.write_text("# earlier step\n")
    proc = perfhouse(recorded.warehouse, "gate", recorded.breached, "--junit", str(recorded.tmp / "breach.xml"),
                     env={"GITHUB_STEP_SUMMARY": str(step_summary)})
    assert proc.returncode == ExitStatus.SLO_FAILED, proc.stdout + proc.stderr
    cases = read_junit(recorded.tmp / "breach.xml")
    failed = [k for k, c in cases.items() if not c.is_passed and not c.is_skipped]
    assert [k for k in failed if k.startswith("perfhouse.slo.")] == ["perfhouse.slo.gate-shop::overall p95 < 1 ms"]
    assert cases["perfhouse.slo.gate-shop::overall p95 < 1 ms"].result[0].type == "SLOBreach"
    # both runs hit the fast API (1-4 ms): on a loaded machine a row may still come out WORSE than the passed
    # run; whether or not it does, the breach decides the exit status
    assert all(cases[k].result[0].type == "Regression" for k in failed if k.startswith("perfhouse.regression."))
    assert {k.split(".")[1] for k in failed} <= {"slo", "regression"}
    text = step_summary.read_text()
    assert text.startswith("# earlier step\n")  # appended, not replaced
    assert "## perfhouse gate: SLO FAILED" in text and "| overall p95 < 1 ms |" in text and "**FAIL**" in text


def test_an_interrupted_run_is_aborted_never_passed_and_the_gate_exits_9(recorded: Recorded) -> None:
    proc = perfhouse(recorded.warehouse, "gate", recorded.aborted, "--junit", str(recorded.tmp / "abort.xml"))
    assert proc.returncode == ExitStatus.RUN_INCOMPLETE, proc.stdout + proc.stderr
    assert "ABORTED" in proc.stdout
    cases = read_junit(recorded.tmp / "abort.xml")
    assert cases["perfhouse.slo.gate-shop::run completed"].result[0].type == "RunIncomplete"
    report = perfhouse(recorded.warehouse, "report", recorded.aborted, "--format", "json")
    assert json.loads(report.stdout)["verdict"] == "ABORTED"


def test_a_run_whose_tool_died_midway_is_incomplete_and_the_gate_exits_9(recorded: Recorded) -> None:
    proc = perfhouse(recorded.warehouse, "gate", recorded.died, "--json")
    assert proc.returncode == ExitStatus.RUN_INCOMPLETE, proc.stdout + proc.stderr
    (result,) = json.loads(proc.stdout)
    assert (result["run"]["status"], result["verdict"], result["outcome"]) == ("failed", "INCOMPLETE", "INCOMPLETE")
    assert all(v["passed"] for v in result["slos"])  # its partial data meets the SLOs, and still does not pass


def test_usage_and_data_errors_exit_2_in_one_line(recorded: Recorded) -> None:
    for args in (["gate", "no-such-run"], ["gate", recorded.regressed, "--baseline", "no-such-run"],
                 ["gate", recorded.passed, "--baseline", "pinned"], ["compare", "a", "b", "c"]):
        proc = perfhouse(recorded.warehouse, *args)
        assert proc.returncode == ExitStatus.USAGE, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.strip()


def test_a_pinned_baseline_is_used_until_unpinned(recorded: Recorded) -> None:
    wh = recorded.warehouse
    proc = perfhouse(wh, "baseline", "pin", recorded.regressed, "--note", "slow on purpose")
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(perfhouse(wh, "baseline", "list", "--json").stdout)
    assert [(p["run_id"], p["note"]) for p in listed] == [(recorded.regressed, "slow on purpose")]
    proc = perfhouse(wh, "compare", recorded.passed, "--json")  # the passing run against the pinned slow one
    result = json.loads(proc.stdout)
    assert result["baseline"] == "pinned" and result["a"]["run_id"] == recorded.regressed
    assert {s["verdict"] for s in result["steps"]} == {"BETTER"}
    assert perfhouse(wh, "baseline", "unpin", recorded.regressed).returncode == 0
    assert json.loads(perfhouse(wh, "baseline", "list", "--json").stdout) == []


def test_runs_show_and_filter_by_group_and_fingerprint(recorded: Recorded) -> None:
    runs = json.loads(perfhouse(recorded.warehouse, "runs", "--json").stdout)
    by_id = {r["run_id"]: r for r in runs}
    ci = {by_id[r]["fingerprint"] for r in (recorded.passed, recorded.regressed, recorded.breached)}
    assert len(ci) == 1 and by_id[recorded.aborted]["fingerprint"] not in ci  # another profile
    assert len({r["group_id"] for r in runs}) == 5 and all(r["group_id"] for r in runs)
    (fingerprint,) = ci
    same = json.loads(perfhouse(recorded.warehouse, "runs", "--fingerprint", fingerprint[:8], "--json").stdout)
    assert {r["run_id"] for r in same} == {recorded.passed, recorded.regressed, recorded.breached}
    group = json.loads(perfhouse(recorded.warehouse, "runs", "--group", by_id[recorded.passed]["group_id"],
                                 "--json").stdout)
    assert [r["run_id"] for r in group] == [recorded.passed]
    table = perfhouse(recorded.warehouse, "runs").stdout
    assert "fingerprint" in table.splitlines()[0] and fingerprint in table


def test_one_invocation_with_two_tools_is_a_group_compared_k6_against_jmeter(tmp_path: Path) -> None:
    need("k6")
    need("jmeter")
    spec = tmp_path / "shop.yaml"
    spec.write_text(SPEC.format(p95="500ms").replace("profiles:\n", "profiles:\n  few:\n    executor: iterations\n"
                                                     "    vus: 2\n    iterations: 20\n"))
    warehouse = f"chdb://{tmp_path / 'warehouse'}"
    with DemoAPI() as api:
        proc = perfhouse(warehouse, "run", str(spec), "--profile", "few", "--tool", "k6,jmeter", "--service",
                         f"api={api.url}", "--runs-dir", str(tmp_path / "runs"), "--progress-interval", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = json.loads(perfhouse(warehouse, "runs", "--json").stdout)
    assert sorted(r["tool"] for r in runs) == ["jmeter", "k6"]
    assert len({r["group_id"] for r in runs}) == 1 and len({r["fingerprint"] for r in runs}) == 2
    (result,) = json.loads(perfhouse(warehouse, "compare", "--group", "latest", "--json").stdout)
    assert (result["a"]["tool"], result["b"]["tool"], result["baseline"]) == ("k6", "jmeter", "group")
    assert {s["journey"] + "/" + s["step"] for s in result["steps"]} == {"browse/list", "browse/view"}
    # tools measure differently: their differences are shown, never judged
    assert result["verdict"] == "NOT JUDGED" and {s["verdict"] for s in result["steps"]} == {"NOT JUDGED"}
    assert any("the tools measure differently" in n for n in result["notes"])
    # `gate latest` judges every run of the invocation: one JUnit suite per run
    junit = tmp_path / "group.xml"
    proc = perfhouse(warehouse, "gate", "latest", "--junit", str(junit))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    suites = list(junitparser.JUnitXml.fromfile(str(junit)))
    assert sorted(s.name.split()[1] for s in suites) == ["jmeter", "k6"]
    group_id = runs[0]["group_id"]
    judged = json.loads(perfhouse(warehouse, "gate", group_id[:8], "--json").stdout)
    assert sorted(r["run"]["tool"] for r in judged) == ["jmeter", "k6"]
    # the group's report carries the same comparison as its section between the tools
    report = json.loads(perfhouse(warehouse, "report", "latest", "--format", "json").stdout)
    section = report["comparison"]
    assert (section["baseline_tool"], section["current_tool"], section["how"]) == ("k6", "jmeter", "group")
    assert [(r["journey"], r["step"], r["verdict"], r["reason"]) for r in section["rows"]] == [
        (s["journey"], s["step"], s["verdict"], s["reason"]) for s in [*result["steps"], result["overall"]]]
    md = perfhouse(warehouse, "report", "latest").stdout
    assert "## Between the tools" in md and "| browse/list | " in md
    assert f"jmeter `{result['b']['run_id']}` against k6 `{result['a']['run_id']}` of the same invocation" in md
    refused = perfhouse(warehouse, "report", "latest", "--baseline", "auto")
    assert refused.returncode == 2 and "a group's report compares its tools' runs" in refused.stderr
