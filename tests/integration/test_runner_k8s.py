"""`perfhouse run --runner k8s`: a clear one-line error without a cluster; with kubectl, apply, wait, clean up."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.run import RunSettings, run_tool
from orchestrator.spec import load_spec
from tests.conftest import ROOT
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

# No cluster can run here, so this stand-in for kubectl records its argv and answers like a cluster
# whose k6-operator finishes every TestRun at once. It tests perfhouse's side of the conversation only.
FAKE_KUBECTL = """#!/bin/sh
echo "$@" >> "$FAKE_KUBECTL_LOG"
case "$*" in
  *"config current-context"*) echo fake-cluster ;;
  *apply*) echo "applied $3" ;;
  *"get testrun"*) echo finished ;;
  *) ;;
esac
"""


def test_without_a_configured_kubectl_the_run_is_refused_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "no-such-kubeconfig")}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--warehouse", f"chdb://{tmp_path / 'wh'}", "run",
         str(ROOT / "examples" / "shop.yaml"), "--profile", "ci", "--runner", "k8s"],
        capture_output=True, text=True, env=env, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("perfhouse: error: --runner k8s needs") and "kubectl" in lines[0]


def test_jmeter_is_refused_by_the_k8s_runner(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--warehouse", f"chdb://{tmp_path / 'wh'}", "run",
         str(ROOT / "examples" / "shop.yaml"), "--profile", "ci", "--runner", "k8s", "--tool", "jmeter"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 5 and "runs k6 only" in proc.stderr


def test_run_applies_configmap_and_testrun_then_waits_for_the_operator(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "kubectl.log"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_KUBECTL_LOG", str(log))
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    spec = load_spec(ROOT / "examples" / "shop.yaml")
    outcome = run_tool(spec, "k6", wh, "ci", runs_dir=tmp_path / "runs",
                       settings=RunSettings(runner="k8s", generators=4))
    assert outcome.status == "completed", outcome.notes
    assert any("ingested none" in n for n in outcome.notes)
    calls = log.read_text().splitlines()
    applied = [c for c in calls if c.startswith("apply")]
    assert [Path(c.split()[2]).name for c in applied] == ["configmap.yaml", "testrun.yaml"]
    testrun = yaml.safe_load((outcome.directory / "k8s" / "testrun.yaml").read_text())
    assert testrun["spec"]["parallelism"] == 4
    assert testrun["metadata"]["labels"]["perfhouse.run"] == outcome.run_id
    assert any(c.startswith("get testrun") for c in calls)
    (run,) = wh.runs()
    assert run["status"] == "completed" and run["run_id"] == outcome.run_id
