"""The CLI as a user meets it: one-line errors, exit statuses, and nothing stored is ever lost."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from orchestrator.cli import fail_cleanly
from orchestrator.demo_api import DemoAPI
from orchestrator.tools import available
from tests.conftest import ROOT, need
from warehouse.errors import ExitStatus

pytestmark = pytest.mark.integration


def perfhouse(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout)


def runs(warehouse: str) -> list[dict[str, object]]:
    proc = perfhouse("--warehouse", warehouse, "runs", "--json")
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout))


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("perfhouse: error: "), proc.stderr
    return lines[0]


@pytest.fixture
def stored(tmp_path: Path, k6_output: Path) -> str:
    """A warehouse that already holds one run, to show failures lose nothing."""
    url = f"chdb://{tmp_path / 'wh'}"
    proc = perfhouse("--warehouse", url, "ingest", str(k6_output), "--json")
    assert proc.returncode == 0, proc.stderr
    assert len(runs(url)) == 1
    return url


def test_ingest_json_prints_run_id_and_rows(tmp_path: Path, k6_output: Path, jtl_output: Path) -> None:
    url = f"chdb://{tmp_path / 'wh'}"
    proc = perfhouse("--warehouse", url, "ingest", str(k6_output), str(jtl_output), "--json")
    assert proc.returncode == 0, proc.stderr
    first, second = (json.loads(line) for line in proc.stdout.splitlines())
    assert first["rows"] > 10 and first["run_id"] and first["rejected"] == 0
    assert second["rows"] == 12 and second["tool"] == "jmeter"  # smoke: 2 journeys x 3 iterations x 2 steps
    again = json.loads(perfhouse("--warehouse", url, "ingest", str(k6_output), "--json").stdout)
    assert again["duplicate"] and again["run_id"] == first["run_id"]
    assert [r["requests"] for r in runs(url)].count(first["rows"]) == 1


def test_malformed_spec_is_one_line_with_position(tmp_path: Path, stored: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text((ROOT / "examples" / "shop.yaml").read_text().replace("method: POST", "method: PUSH", 1))
    proc = perfhouse("--warehouse", stored, "run", str(spec), "--profile", "ci")
    line = one_line_error(proc)
    assert proc.returncode == 4
    assert re.search(r"bad\.yaml:\d+:\d+: journeys\[1\]\.steps\[0\]\.method: expected one of", line)
    assert len(runs(stored)) == 1


def test_missing_tool_is_one_line(tmp_path: Path, stored: str) -> None:
    proc = perfhouse("--warehouse", stored, "run", str(ROOT / "examples" / "shop.yaml"), "--profile", "ci",
                     "--tool", "jmeter", env={"PATH": "/nonexistent"})
    line = one_line_error(proc)
    assert proc.returncode == 5 and "jmeter is not installed" in line
    assert len(runs(stored)) == 1


def test_unreachable_target_is_one_line(stored: str) -> None:
    need("k6")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    proc = perfhouse("--warehouse", stored, "run", str(ROOT / "examples" / "shop.yaml"), "--profile", "ci",
                     "--service", f"api=http://127.0.0.1:{port}")
    line = one_line_error(proc)
    assert proc.returncode == 6 and f"127.0.0.1:{port} is unreachable" in line
    assert len(runs(stored)) == 1


def test_truncated_results_keep_valid_rows_and_name_the_line(tmp_path: Path, stored: str,
                                                             k6_output: Path) -> None:
    data = k6_output.read_bytes()
    cut = tmp_path / "cut.json"
    cut.write_bytes(data[: len(data) - 40])  # the last line loses its end
    lines = cut.read_bytes().count(b"\n") + 1
    proc = perfhouse("--warehouse", stored, "ingest", str(cut), "--json")
    assert proc.returncode == 7
    result = json.loads(proc.stdout)
    assert result["rejected"] == 1 and result["rows"] > 0
    assert result["rejected_lines"][0]["line"] == lines
    assert f"cut.json:{lines}: rejected: the last line was cut short" in proc.stderr
    assert len(runs(stored)) == 2


def test_empty_and_foreign_files_are_refused_in_one_line(tmp_path: Path, stored: str) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("")
    foreign = tmp_path / "notes.txt"
    foreign.write_text("hello\nworld\n")
    for path, expected in ((empty, "the file is empty"), (foreign, "not a results file perfhouse knows")):
        proc = perfhouse("--warehouse", stored, "ingest", str(path))
        assert proc.returncode == 7 and expected in one_line_error(proc)
    assert len(runs(stored)) == 1


def test_report_of_a_run_in_json_and_markdown(stored: str) -> None:
    run_id = runs(stored)[0]["run_id"]
    doc = json.loads(perfhouse("--warehouse", stored, "report", str(run_id), "--format", "json").stdout)["runs"][0]
    assert doc["run"]["run_id"] == run_id and doc["totals"]["count"] > 0
    step = doc["steps"][0]
    assert {"journey", "step", "count", "errors", "p50_ms", "p95_ms", "p99_ms"} <= step.keys()
    md = perfhouse("--warehouse", stored, "report", "latest").stdout
    assert md.startswith("# Load test report") and "| journey | step |" in md


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    setup = [b for b in blocks if b.startswith("pip install")]
    assert len(setup) == 2, "the README keeps exactly two set-up commands"
    demo, tests = setup
    assert demo.endswith("perfhouse demo")
    assert tests in (ROOT / ".ci" / "run").read_text()


def test_a_warehouse_directory_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    """A file where the embedded warehouse's directory should be: said in one line with the path, exit 1."""
    (tmp_path / "afile").write_text("")
    jtl = tmp_path / "x.jtl"
    jtl.write_text("timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,bytes,grpThreads,"
                   "allThreads,Latency\n1704067200000,10,home,200,OK,shop 1-1,text,true,1,1,1,1\n")
    proc = perfhouse("--warehouse", f"chdb://{tmp_path}/afile/wh", "ingest", str(jtl))
    assert proc.returncode == 1
    assert one_line_error(proc) == f"perfhouse: error: cannot open the embedded warehouse {tmp_path}/afile/wh: Not a directory"


def test_an_unforeseen_file_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """The one boundary turns an OSError no check foresaw into one line and exit status 1, not a traceback."""

    @fail_cleanly
    def command() -> None:
        raise FileNotFoundError(2, "No such file or directory", ".perfhouse/warehouse")

    with pytest.raises(SystemExit) as exited:
        command()
    assert exited.value.code == ExitStatus.ERROR
    assert capsys.readouterr().err == "perfhouse: error: No such file or directory (.perfhouse/warehouse)\n"


def test_readme_demo_runs_every_installed_tool(tmp_path: Path) -> None:
    need("k6")
    need("jmeter")
    proc = perfhouse("demo", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "dashboard:" in proc.stdout
    tools = sorted(str(r["tool"]) for r in runs(f"chdb://{tmp_path / '.perfhouse' / 'warehouse'}"))
    assert tools == sorted(available()) and {"jmeter", "k6"} <= set(tools)


def test_demo_without_jmeter_says_so_in_one_line_and_runs_k6(tmp_path: Path) -> None:
    need("k6")
    k6 = Path(sysconfig.get_path("scripts")) / "k6"  # the binary itself, not a version manager's shim
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "k6").symlink_to(k6 if k6.exists() else Path(need("k6")).resolve())
    proc = perfhouse("demo", cwd=tmp_path, env={"PATH": str(bin_dir)}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stdout.splitlines() if "jmeter is not installed" in line]
    assert len(notes) == 1
    assert [r["tool"] for r in runs(f"chdb://{tmp_path / '.perfhouse' / 'warehouse'}")] == ["k6"]


def test_interrupted_run_keeps_its_results_and_is_marked_aborted(tmp_path: Path) -> None:
    need("k6")
    url = f"chdb://{tmp_path / 'wh'}"
    spec = tmp_path / "long.yaml"
    head = (ROOT / "examples" / "shop.yaml").read_text().partition("profiles:\n")[0]
    spec.write_text(head + "profiles:\n  long: {executor: constant_vus, vus: 2, duration: 60s}\n")
    with DemoAPI() as api:
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "--warehouse", url, "run", str(spec),
                                 "--profile", "long", "--service", f"api={api.url}", "--runs-dir",
                                 str(tmp_path / "runs")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = 30.0
        start = time.monotonic()
        while not list((tmp_path / "runs").glob("*/k6.json")) and time.monotonic() - start < deadline:
            time.sleep(0.2)
        time.sleep(3)
        proc.send_signal(2)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    (run,) = runs(url)
    assert run["status"] == "aborted" and int(str(run["requests"])) > 0


def test_hybrid_suite_runs_groups_in_order_and_lands_every_run(tmp_path: Path) -> None:
    need("k6")
    head = (ROOT / "examples" / "shop.yaml").read_text().partition("profiles:\n")[0]
    (tmp_path / "shop.yaml").write_text(head + "profiles:\n  quick: {executor: iterations, vus: 1, iterations: 2}\n"
                                        "  short: {executor: constant_vus, vus: 1, duration: 2s}\n")
    url = f"chdb://{tmp_path / 'wh'}"
    with DemoAPI() as api:
        (tmp_path / "suite.yaml").write_text(
            "suite: nightly\nmode: hybrid\nruns:\n"
            f"  - {{spec: shop.yaml, profile: quick, group: 1, services: {{api: '{api.url}'}}}}\n"
            f"  - {{spec: shop.yaml, profile: short, group: 1, services: {{api: '{api.url}'}}}}\n"
            f"  - {{spec: shop.yaml, profile: quick, group: 2, services: {{api: '{api.url}'}}}}\n"
        )
        proc = perfhouse("--warehouse", url, "run", str(tmp_path / "suite.yaml"), "--runs-dir",
                         str(tmp_path / "runs"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "wave 1: shop.yaml/quick, shop.yaml/short" in proc.stdout and "wave 2: shop.yaml/quick" in proc.stdout
    landed = runs(url)
    assert sorted(str(r["profile"]) for r in landed) == ["quick", "quick", "short"]
    assert {r["status"] for r in landed} == {"completed"}


def test_the_readme_suite_example_runs_its_groups_in_order(tmp_path: Path) -> None:
    """examples/suite.yaml as the guide shows it, against a demo API on a free port (its URLs pointed there) and
    with the spec's profiles shortened to one iteration: the smoke group, then the CI and demo entries."""
    need("k6")
    need("jmeter")
    head = (ROOT / "examples" / "shop.yaml").read_text().partition("profiles:\n")[0]
    url = f"chdb://{tmp_path / 'wh'}"
    with DemoAPI() as api:
        (tmp_path / "shop.yaml").write_text(
            head.replace("http://127.0.0.1:8080", api.url)
            + "profiles:\n" + "".join(f"  {p}: {{executor: iterations, vus: 1, iterations: 1}}\n"
                                       for p in ("smoke", "ci", "demo")))
        (tmp_path / "suite.yaml").write_text(
            (ROOT / "examples" / "suite.yaml").read_text().replace("http://127.0.0.1:8080", api.url))
        proc = perfhouse("--warehouse", url, "run", str(tmp_path / "suite.yaml"), "--runs-dir", str(tmp_path / "runs"),
                         "--progress-interval", "0", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "wave 1: shop.yaml/smoke" in proc.stdout and "wave 2: shop.yaml/ci, shop.yaml/demo" in proc.stdout
    landed = runs(url)
    assert sorted((str(r["profile"]), str(r["tool"])) for r in landed) == [
        ("ci", "jmeter"), ("ci", "k6"), ("demo", "k6"), ("smoke", "k6")]
    assert {r["status"] for r in landed} == {"completed"}


def test_generate_targets_the_jmeter_on_path_and_says_so(tmp_path: Path) -> None:
    from orchestrator.tools import TOOLS

    jmeter = need("jmeter")
    version = TOOLS["jmeter"].version(jmeter)
    with DemoAPI() as api:
        proc = perfhouse("generate", str(ROOT / "examples" / "shop.yaml"), "--profile", "smoke", "--tool", "jmeter",
                         "--service", f"api={api.url}", "-o", str(tmp_path / "out"), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert f"(for JMeter {version}: the jmeter on PATH, {jmeter})" in proc.stdout
        plan = tmp_path / "out" / "shop.jmx"
        assert f"for JMeter {version}. -->" in plan.read_text(encoding="utf-8").splitlines()[1]
        # the plan loads and runs in that JMeter: every request of the smoke profile is in the JTL
        subprocess.run([jmeter, "-n", "-t", str(plan), "-l", str(tmp_path / "r.jtl"), "-j", str(tmp_path / "j.log")],
                       cwd=tmp_path, capture_output=True, timeout=300, check=True)
    assert len((tmp_path / "r.jtl").read_text().splitlines()) >= 12  # 2 journeys x 2 steps x 3 iterations


def test_generate_without_jmeter_on_path_says_which_version_it_targets(tmp_path: Path) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python").symlink_to(sys.executable)
    proc = subprocess.run([str(bare / "python"), "-m", "orchestrator", "generate", str(ROOT / "examples" / "shop.yaml"),
                           "--profile", "smoke", "--tool", "jmeter", "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, env={**os.environ, "PATH": str(bare)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "(for JMeter 5.6: no jmeter on PATH; --jmeter-version chooses another)" in proc.stdout


def test_jmeter_refuses_abort_on_fail_in_one_line_before_anything_runs(tmp_path: Path) -> None:
    need("jmeter")
    url = f"chdb://{tmp_path / 'wh'}"
    spec = str(ROOT / "tests" / "golden" / "abort" / "spec.yaml")
    with DemoAPI(record=True) as api:
        proc = perfhouse("--warehouse", url, "run", spec, "--profile", "golden", "--tool", "k6,jmeter",
                         "--service", f"api={api.url}", cwd=tmp_path)
        assert api.requests == []
    line = one_line_error(proc)
    assert proc.returncode == 4 and "slos[1] sets abort_on_fail" in line and "--tool k6" in line
    assert runs(url) == []
    proc = perfhouse("generate", spec, "--profile", "golden", "--tool", "jmeter", "-o", str(tmp_path / "out"))
    assert proc.returncode == 4 and "abort_on_fail" in one_line_error(proc)
