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
    """An operator that finishes at once without running anything: applied, waited for, and failed for want of
    results (none came back to the receiver)."""
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
                       settings=RunSettings(runner="k8s", generators=4, receive_listen="127.0.0.1:0"))
    assert outcome.status == "failed", outcome.notes
    assert any("no results came back to the receiver" in n for n in outcome.notes)
    calls = log.read_text().splitlines()
    applied = [c for c in calls if c.startswith("apply")]
    assert [Path(c.split()[2]).name for c in applied] == ["configmap.yaml", "testrun.yaml"]
    testrun = yaml.safe_load((outcome.directory / "k8s" / "testrun.yaml").read_text())
    assert testrun["spec"]["parallelism"] == 4
    assert testrun["metadata"]["labels"]["perfhouse.run"] == outcome.run_id
    assert any(c.startswith("get testrun") for c in calls)
    (run,) = wh.runs()
    assert run.status == "failed" and run.run_id == outcome.run_id


# A kubectl whose "cluster" is this machine and whose k6-operator is played by the script itself: `apply` keeps
# the ConfigMap's script and, for a TestRun, starts `parallelism` k6 processes as the operator starts its runner
# pods (the TestRun's arguments, an execution segment each, the runner's env with the downward API's pod name
# and $(VAR) references resolved as Kubernetes does); `get testrun` reports the stage from those processes;
# `delete` stops them. Each "pod" also writes k6 JSON beside it, so the test can compare what came back.
FAKE_OPERATOR = r'''#!PYTHON
import json, os, re, shlex, signal, subprocess, sys
from pathlib import Path
import yaml

state = Path(os.environ["FAKE_K8S_STATE"])
state.mkdir(parents=True, exist_ok=True)
args = sys.argv[1:]
with open(state / "calls.log", "a") as log:
    log.write(" ".join(args) + "\n")


def pods(name):
    path = state / f"{name}.pods.json"
    return json.loads(path.read_text()) if path.exists() else None


if args[:2] == ["config", "current-context"]:
    print("fake-cluster")
elif args[0] == "apply":
    doc = yaml.safe_load(Path(args[2]).read_text())
    name = doc["metadata"]["name"]
    if doc["kind"] == "ConfigMap":
        for file, text in doc["data"].items():
            (state / file).write_text(text)
    else:
        spec = doc["spec"]
        n = spec["parallelism"]
        sequence = ",".join(["0", *(f"{i}/{n}" for i in range(1, n)), "1"])
        started = []
        for i in range(n):
            pod = f"{name}-{i + 1}-x7k2p"
            env = dict(os.environ)
            for var in spec["runner"].get("env", []):
                if "valueFrom" in var:
                    assert var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
                    env[var["name"]] = pod
                else:
                    env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), var["value"])
            start = "0" if i == 0 else f"{i}/{n}"
            end = "1" if i + 1 == n else f"{i + 1}/{n}"
            argv = ["k6", "run", "--quiet", *shlex.split(spec.get("arguments", "")), "--execution-segment",
                    f"{start}:{end}", "--execution-segment-sequence", sequence, "--address", "127.0.0.1:0",
                    "--out", f"json={state / (pod + '.json')}", str(state / spec["script"]["configMap"]["file"])]
            rc = state / f"{pod}.rc"
            proc = subprocess.Popen(["sh", "-c", shlex.join(argv) + f" > {state / pod}.log 2>&1; echo $? > {rc}"],
                                    env=env, start_new_session=True)
            started.append({"pod": pod, "pid": proc.pid, "rc": str(rc)})
        (state / f"{name}.pods.json").write_text(json.dumps(started))
    print(f"{doc['kind'].lower()}/{name} created")
elif args[:2] == ["get", "testrun"]:
    started = pods(args[2])
    if started is None:
        print(f'Error from server (NotFound): testruns.k6.io "{args[2]}" not found', file=sys.stderr)
        sys.exit(1)
    codes = [Path(p["rc"]).read_text().strip() if Path(p["rc"]).exists() else None for p in started]
    if None in codes:
        print("started")
    else:
        print("finished" if all(c in ("0", "99") for c in codes) else "error")
elif args[:2] == ["delete", "testrun"]:
    for p in pods(args[2]) or []:
        try:
            os.killpg(p["pid"], signal.SIGINT)
        except ProcessLookupError:
            pass
'''


def test_k8s_run_ends_with_one_run_holding_every_pods_requests(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.demo_api import DemoAPI
    from tests.conftest import need

    need("k6")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_OPERATOR.replace("#!PYTHON", f"#!{sys.executable}"))
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    state = tmp_path / "cluster"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_K8S_STATE", str(state))
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    spec = load_spec(ROOT / "examples" / "shop.yaml")
    with DemoAPI() as api:
        outcome = run_tool(spec, "k6", wh, "ci", {"api": api.url}, runs_dir=tmp_path / "runs",
                           settings=RunSettings(runner="k8s", generators=3, receive_listen="127.0.0.1:0"))
    assert outcome.status == "completed", outcome.notes
    assert not any("ingested none" in n for n in outcome.notes)
    testrun = yaml.safe_load((outcome.directory / "k8s" / "testrun.yaml").read_text())
    assert testrun["spec"]["parallelism"] == 3
    assert testrun["spec"]["arguments"].startswith("--out influxdb=http://127.0.0.1:")
    pods = sorted(p.stem for p in state.glob("*.json") if not p.name.endswith(".pods.json"))
    assert len(pods) == 3
    by_pod = wh.backend.query(
        "SELECT generator, count() AS n FROM requests WHERE run_id = {r:String} GROUP BY generator ORDER BY generator",
        {"r": outcome.run_id})
    # every pod's requests, each pod a generator, as many as the pods' own JSON outputs hold
    from_files = {}
    for pod in pods:
        result = wh.ingest(state / f"{pod}.json")
        from_files[pod] = wh.totals(result.run_id)["count"]
    assert {r["generator"]: r["n"] for r in by_pod} == from_files
    assert all(n > 0 for n in from_files.values())
    assert outcome.totals["count"] == sum(from_files.values()) == outcome.to_dict()["rows"]
    assert outcome.verdicts  # the SLOs are judged on what came back
    (run,) = [r for r in wh.runs() if r.run_id == outcome.run_id]
    assert run.status == "completed"
