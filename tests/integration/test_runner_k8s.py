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


# A kubectl whose "cluster" is this machine and whose k6-operator is played by the script itself: `apply` lays out
# a ConfigMap's keys as files of one directory (as the operator mounts the whole ConfigMap at /test: `data` as text,
# `binaryData` decoded) and, for a TestRun, starts `parallelism` k6 processes as the operator starts its runner pods
# (the TestRun's arguments, an execution segment each, /test/<file> as the script, a working directory elsewhere as
# in the k6 image, and only the runner's env: the downward API's pod name, a Secret's key, $(VAR) references
# resolved as Kubernetes does; a missing Secret or key keeps the pod from starting); `create -f -` stores a Secret
# read from stdin; `get testrun` reports the stage from those processes; `delete testrun` stops them, `delete secret`
# forgets the Secret. Each "pod" also writes k6 JSON beside it, so the test can compare what came back.
FAKE_OPERATOR = r'''#!PYTHON
import base64, json, os, re, shlex, signal, subprocess, sys
from pathlib import Path
import yaml

state = Path(os.environ["FAKE_K8S_STATE"])
state.mkdir(parents=True, exist_ok=True)
secrets = state / "secrets"  # the cluster's store, not perfhouse's: values may lie here
args = sys.argv[1:]
with open(state / "calls.log", "a") as log:
    log.write(" ".join(args) + "\n")


def pods(name):
    path = state / f"{name}.pods.json"
    return json.loads(path.read_text()) if path.exists() else None


def secret_value(ref):
    path = secrets / f"{ref['name']}.json"
    values = json.loads(path.read_text()) if path.exists() else {}
    if ref["key"] not in values:
        raise LookupError(f"couldn't find key {ref['key']} in Secret {ref['name']}")
    return values[ref["key"]]


if args[:2] == ["config", "current-context"]:
    print("fake-cluster")
elif args[0] in ("apply", "create"):
    doc = yaml.safe_load(sys.stdin.read() if args[2] == "-" else Path(args[2]).read_text())
    name = doc["metadata"]["name"]
    if doc["kind"] == "Secret":
        secrets.mkdir(exist_ok=True)
        values = {**{k: base64.b64decode(v).decode() for k, v in doc.get("data", {}).items()},
                  **doc.get("stringData", {})}
        (secrets / f"{name}.json").write_text(json.dumps(values))
    elif doc["kind"] == "ConfigMap":
        mount = state / "configmaps" / name
        mount.mkdir(parents=True, exist_ok=True)
        for key, text in doc.get("data", {}).items():
            (mount / key).write_bytes(text.encode())
        for key, b64 in doc.get("binaryData", {}).items():
            (mount / key).write_bytes(base64.b64decode(b64))
    else:
        spec = doc["spec"]
        mount = state / "configmaps" / spec["script"]["configMap"]["name"]
        home = state / "home"  # the k6 image's working directory: not the mount
        home.mkdir(exist_ok=True)
        n = spec["parallelism"]
        sequence = ",".join(["0", *(f"{i}/{n}" for i in range(1, n)), "1"])
        started = []
        for i in range(n):
            pod = f"{name}-{i + 1}-x7k2p"
            rc = state / f"{pod}.rc"
            env = {"PATH": os.environ["PATH"], "HOME": str(home)}  # a pod sees its own env, not this host's
            try:
                for var in spec["runner"].get("env", []):
                    source = var.get("valueFrom")
                    if source is None:
                        env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), var["value"])
                    elif "secretKeyRef" in source:
                        env[var["name"]] = secret_value(source["secretKeyRef"])
                    else:
                        assert source["fieldRef"]["fieldPath"] == "metadata.name"
                        env[var["name"]] = pod
            except LookupError as exc:  # kubelet: CreateContainerConfigError, the pod never starts
                (state / f"{pod}.log").write_text(str(exc))
                rc.write_text("1")
                started.append({"pod": pod, "pid": 0, "rc": str(rc)})
                continue
            start = "0" if i == 0 else f"{i}/{n}"
            end = "1" if i + 1 == n else f"{i + 1}/{n}"
            argv = ["k6", "run", "--quiet", *shlex.split(spec.get("arguments", "")), "--execution-segment",
                    f"{start}:{end}", "--execution-segment-sequence", sequence, "--address", "127.0.0.1:0",
                    "--out", f"json={state / (pod + '.json')}", str(mount / spec["script"]["configMap"]["file"])]
            proc = subprocess.Popen(["sh", "-c", shlex.join(argv) + f" > {state / pod}.log 2>&1; echo $? > {rc}"],
                                    env=env, cwd=home, start_new_session=True)
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
            os.killpg(p["pid"], signal.SIGINT) if p["pid"] else None
        except ProcessLookupError:
            pass
elif args[:2] == ["delete", "secret"]:
    (secrets / f"{args[2]}.json").unlink(missing_ok=True)
    print(f'secret "{args[2]}" deleted')
'''


def fake_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake kubectl first on PATH; the directory that holds its cluster's state."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_OPERATOR.replace("#!PYTHON", f"#!{sys.executable}"))
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    state = tmp_path / "cluster"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_K8S_STATE", str(state))
    return state


def test_k8s_run_ends_with_one_run_holding_every_pods_requests(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.demo_api import DemoAPI
    from tests.conftest import need

    need("k6")
    state = fake_cluster(tmp_path, monkeypatch)
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


# Test data as teams export it (CRLF, quoted commas, accents), and a token the spec reads from the environment.
DATA_SPEC = """\
name: k8s-data
services:
  api: http://127.0.0.1:8080
data:
  users: {file: data/users.csv, mode: sequential}
journeys:
  - name: login
    data: users
    steps:
      - name: login
        method: POST
        path: /login
        headers:
          Authorization: Bearer ${env:PERFHOUSE_K8S_TOKEN}
        body:
          json: {user: "${user}", note: "${note}"}
        checks:
          - status: 200
profiles:
  ci: {executor: iterations, vus: 2, iterations: 3}  # per VU: six logins over two pods
"""
USERS = 'user,note\r\nalice,"plain"\r\nbob,"with, comma"\r\ncarol,"caf\u00e9"\r\n'


def test_k8s_pods_find_the_data_files_and_read_secrets_from_a_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pods run real k6 on the ConfigMap's files laid out as the operator mounts them, with only the TestRun's
    env (the token from the Secret): the server sees every CSV row and the token; no file perfhouse wrote, no
    kubectl argument and no warehouse byte holds the token; the Secret is gone after the run."""
    import json
    import secrets as random_secrets

    from orchestrator.demo_api import DemoAPI
    from tests.conftest import need

    need("k6")
    state = fake_cluster(tmp_path, monkeypatch)
    spec_dir = tmp_path / "spec"
    (spec_dir / "data").mkdir(parents=True)
    (spec_dir / "data" / "users.csv").write_bytes(USERS.encode())
    (spec_dir / "k8s-data.yaml").write_text(DATA_SPEC)
    token = f"k8s-secret-{random_secrets.token_hex(12)}"
    monkeypatch.setenv("PERFHOUSE_K8S_TOKEN", token)
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    spec = load_spec(spec_dir / "k8s-data.yaml")
    with DemoAPI(record=True) as api:
        outcome = run_tool(spec, "k6", wh, "ci", {"api": api.url}, runs_dir=tmp_path / "runs",
                           settings=RunSettings(runner="k8s", generators=2, receive_listen="127.0.0.1:0"))
        seen = [r for r in api.requests if r.path == "/login"]
    assert outcome.status == "completed", (outcome.notes, [p.read_text() for p in state.glob("*.log")])

    # every row of the CSV reached the server from the pods, with the Secret's token
    assert len(seen) == 6
    sent = [json.loads(r.body) for r in seen]
    # sequential: iteration i of the whole test (over both pods) takes row i modulo the rows
    assert sorted((b["user"], b["note"]) for b in sent) == sorted(
        [("alice", "plain"), ("bob", "with, comma"), ("carol", "café")] * 2)
    assert {r.headers["authorization"] for r in seen} == {f"Bearer {token}"}
    assert outcome.totals["count"] == 6

    # the ConfigMap: the script and its data file, named as the script opens it; the TestRun: a Secret reference
    k8s = outcome.directory / "k8s"
    configmap = yaml.safe_load((k8s / "configmap.yaml").read_text())
    testrun = yaml.safe_load((k8s / "testrun.yaml").read_text())
    assert configmap["data"]["users.csv"] == USERS
    assert token not in json.dumps(configmap) + json.dumps(testrun)
    env = {e["name"]: e for e in testrun["spec"]["runner"]["env"]}
    secret_name = env["PERFHOUSE_K8S_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]
    assert env["PERFHOUSE_K8S_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "PERFHOUSE_K8S_TOKEN"

    # the Secret went to kubectl on stdin before the TestRun, and was deleted after it
    calls = (state / "calls.log").read_text()
    order = [line.split()[:3] for line in calls.splitlines() if line.split()[0] in ("create", "apply", "delete")]
    assert order[0] == ["create", "-f", "-"]
    assert ["delete", "secret", secret_name] in order
    assert order.index(["delete", "secret", secret_name]) > max(i for i, c in enumerate(order) if c[0] == "apply")
    assert not (state / "secrets" / f"{secret_name}.json").exists()
    assert token not in calls
    for root in (tmp_path / "runs", tmp_path / "wh"):
        for file in root.rglob("*"):
            if file.is_file():
                assert token.encode() not in file.read_bytes(), file


def test_a_pod_without_its_secret_does_not_start_and_the_run_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Secret's keys are references the pods cannot start without: a Secret deleted under the run (here: never
    stored by the cluster) fails the run instead of sending requests without the token."""
    state = fake_cluster(tmp_path, monkeypatch)
    kubectl = tmp_path / "bin" / "kubectl"
    kubectl.write_text(kubectl.read_text().replace('(secrets / f"{name}.json").write_text(json.dumps(values))', "pass"))
    spec_dir = tmp_path / "spec"
    (spec_dir / "data").mkdir(parents=True)
    (spec_dir / "data" / "users.csv").write_bytes(USERS.encode())
    (spec_dir / "k8s-data.yaml").write_text(DATA_SPEC)
    monkeypatch.setenv("PERFHOUSE_K8S_TOKEN", "t0ken")
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    outcome = run_tool(load_spec(spec_dir / "k8s-data.yaml"), "k6", wh, "ci", runs_dir=tmp_path / "runs",
                       settings=RunSettings(runner="k8s", generators=1, receive_listen="127.0.0.1:0"))
    assert outcome.status == "failed", outcome.notes
    (log,) = [p for p in state.glob("*.log") if p.name != "calls.log"]
    assert "couldn't find key PERFHOUSE_K8S_TOKEN" in log.read_text()


OWN_SCRIPT = """\
import http from "k6/http";
import { check } from "k6";

export const options = { vus: 2, iterations: 6 };

export default function () {
  const res = http.get(`${__ENV.BASE_URL}/products`, {
    headers: { Authorization: `Bearer ${__ENV.TOKEN}` }, tags: { name: "list" } });
  check(res, { "listed": (r) => r.status === 200 });
}
"""


def test_a_teams_own_k6_script_runs_on_k8s_with_its_variables_from_a_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`perfhouse run shop.js --runner k8s`: the script as it is in the ConfigMap, split over the pods by execution
    segments, its -e values reaching the pods only through the run's Secret; one run holds every pod's requests."""
    import json
    import secrets as random_secrets

    from orchestrator.demo_api import DemoAPI
    from tests.conftest import need

    need("k6")
    state = fake_cluster(tmp_path, monkeypatch)
    script = tmp_path / "shop.js"
    script.write_text(OWN_SCRIPT)
    token = f"own-{random_secrets.token_hex(12)}"
    url = f"chdb://{tmp_path / 'wh'}"
    with DemoAPI(record=True) as api:
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "--warehouse", url, "run", str(script), "--runner", "k8s",
             "--generators", "2", "--receive-listen", "127.0.0.1:0", "--progress-interval", "0",
             "--runs-dir", str(tmp_path / "runs"), "-e", f"BASE_URL={api.url}", "-e", f"TOKEN={token}", "--json"],
            capture_output=True, text=True, timeout=300)
        seen = [r for r in api.requests if r.path == "/products"]
    assert proc.returncode == 0, proc.stdout + proc.stderr + "".join(p.read_text() for p in state.glob("*.log"))
    (outcome,) = json.loads(proc.stdout)
    assert len(seen) == 6 and {r.headers["authorization"] for r in seen} == {f"Bearer {token}"}
    assert outcome["rows"] == 6
    wh = Warehouse.open(url)
    by_pod = wh.backend.query("SELECT generator, count() AS n FROM requests WHERE run_id = {r:String} "
                              "GROUP BY generator", {"r": outcome["run_id"]})
    assert len(by_pod) == 2 and sum(r["n"] for r in by_pod) == 6  # two pods, each its execution segment
    calls = (state / "calls.log").read_text()
    assert token not in calls
    for root in (tmp_path / "runs", tmp_path / "wh"):
        for file in root.rglob("*"):
            if file.is_file():
                assert token.encode() not in file.read_bytes(), file
    assert "create -f -" in calls and "delete secret " in calls  # the Secret, created on stdin, then deleted
    assert (state / "secrets").is_dir() and not list((state / "secrets").glob("*.json"))
