"""kill -9 of perfhouse: its tools and containers die with it, no secret stays on disk, its runs end aborted."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.demo_api import DemoAPI
from orchestrator.runners.docker import OWNER_LABEL as CONTAINER_OWNER_LABEL
from orchestrator.runners.docker import PART_LABEL, RUN_LABEL, TOOL_LABEL, leftovers
from orchestrator.secrets import ENV_FILE
from tests.conftest import need
from tests.integration.test_runner_docker import JMETER_IMAGE, K6_IMAGE, engine, processes_mentioning
from warehouse.engine.owners import OWNER_LABEL, Owner, me, process_start
from warehouse.store import RunInfo, Warehouse, new_run_id

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("docker")]  # one Docker engine: one worker
__all__ = ["engine"]  # the Docker tests' fixture, shared

SECRET = "s3cr3t-never-on-disk"
SPEC = """
name: owned
services:
  api: http://127.0.0.1:8080
journeys:
  - name: browse
    steps:
      - name: list_products
        path: /products
        headers:
          Authorization: Bearer ${env:PERFHOUSE_TEST_SECRET}
profiles:
  long: {executor: constant_vus, vus: 2, duration: 90s}
  fixed: {executor: iterations, vus: 1, iterations: 2}
"""
OUTPUT = {"k6": "k6.json", "jmeter": "jmeter.jtl"}


def dead_owner() -> Owner:
    """The identity of a process that ran on this host and has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    owner = Owner(me().host, proc.pid, process_start(proc.pid) or "")
    proc.communicate(b"")
    return owner


def save(warehouse: Warehouse, owner: str) -> str:
    run_id = new_run_id("k6")
    warehouse.save_run(RunInfo(run_id=run_id, tool="k6", labels={OWNER_LABEL: owner, "team": "a"}, notes="n"))
    return run_id


def test_a_run_whose_perfhouse_died_is_aborted_when_the_warehouse_next_opens(any_warehouse_url: str) -> None:
    warehouse = Warehouse.open(any_warehouse_url)
    dead = save(warehouse, dead_owner().token)
    alive = save(warehouse, me().token)
    elsewhere = save(warehouse, "another-host:4242:1234")
    reused = save(warehouse, Owner(me().host, os.getpid(), "1").token)  # this pid, another process's start
    assert warehouse.orphans_aborted == []

    again = Warehouse.open(any_warehouse_url)
    assert sorted(again.orphans_aborted) == sorted([dead, reused])
    run = again.run(dead)
    assert run.status == "aborted" and run.ended_at
    assert run.notes.startswith("n; aborted: its perfhouse (pid ") and "died while the run went" in run.notes
    assert run.labels == {"team": "a"}, "the owner label goes, the others stay"
    assert again.run(alive).status == "running", "a run whose perfhouse is alive goes on"
    assert again.run(elsewhere).status == "running", "another host's owner cannot be checked from here"
    assert again.run(reused).status == "aborted", "a reused pid is not the owner"
    assert Warehouse.open(any_warehouse_url).orphans_aborted == []


@pytest.fixture
def owned_spec(tmp_path: Path) -> Path:
    path = tmp_path / "owned.yaml"
    path.write_text(SPEC)
    return path


def start_perfhouse(tmp_path: Path, spec: Path, api: DemoAPI, tool: str, *extra: str,
                    profile: str = "long") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "--warehouse", f"chdb://{tmp_path / 'wh'}", "run", str(spec),
         "--profile", profile, "--tool", tool, "--service", f"api={api.url}", "--runs-dir", str(tmp_path / "runs"),
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PERFHOUSE_TEST_SECRET": SECRET})


def started(tmp_path: Path, tool: str, proc: subprocess.Popen[str], seconds: float = 120) -> Path:
    """The run directory, once the tool has begun writing its results."""
    deadline = time.monotonic() + seconds
    while True:
        found = [p for p in (tmp_path / "runs").glob(f"*/{OUTPUT[tool]}") if p.stat().st_size > 0]
        if found:
            return found[0].parent
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"{tool} wrote nothing in {seconds:g}s"
        time.sleep(0.2)


def eventually(check: object, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parents.setdefault(int((entry / "stat").read_text().rpartition(")")[2].split()[1]), []).append(
                    int(entry.name))
    found, todo = [], list(parents.get(pid, []))
    while todo:
        found.append(child := todo.pop())
        todo.extend(parents.get(child, []))
    return found


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def kill_9_and_check(tmp_path: Path, proc: subprocess.Popen[str], directory: Path) -> None:
    """kill -9 perfhouse mid-run; then no process it started runs (tool, live worker, watchdog), no file holds
    the secret, and the run is aborted."""
    started_by_perfhouse = descendants(proc.pid)
    assert started_by_perfhouse
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    eventually(lambda: not any(running(pid) for pid in started_by_perfhouse),
               f"a process perfhouse started outlived it: {[p for p in started_by_perfhouse if running(p)]}")
    runs = str(tmp_path / "runs")
    eventually(lambda: processes_mentioning(runs) == [], "a tool (or the watchdog) outlived perfhouse: "
               f"{processes_mentioning(runs)}")
    assert not (directory / ENV_FILE).exists()
    for file in directory.rglob("*"):
        if file.is_file():
            assert SECRET.encode() not in file.read_bytes(), file
    assert "perfhouse died while the run went" in (directory / "watchdog.log").read_text()
    listed = subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", f"chdb://{tmp_path / 'wh'}",
                             "runs", "--json"], capture_output=True, text=True, timeout=120)
    (run,) = json.loads(listed.stdout)
    assert run["run_id"] == directory.name
    assert run["status"] == "aborted", run
    assert "died while the run went" in run["notes"]


@pytest.mark.parametrize("tool", ["k6", "jmeter"])
def test_kill_9_of_perfhouse_stops_its_local_tool_and_leaves_no_secret(tool: str, tmp_path: Path,
                                                                        owned_spec: Path) -> None:
    need(tool)
    with DemoAPI() as api:
        proc = start_perfhouse(tmp_path, owned_spec, api, tool, "--live", "--live-interval", "1")
        directory = started(tmp_path, tool, proc)
        eventually(lambda: (directory / "live").exists(), "the live ingest began")  # its worker runs too
        assert processes_mentioning(str(directory)), "the tool runs"
        assert not (directory / ENV_FILE).exists(), "a local tool reads its secrets from memory"
        kill_9_and_check(tmp_path, proc, directory)
        if tool == "jmeter":
            assert not [p for p in processes_mentioning("org.apache.jmeter") if str(tmp_path) in p]


@pytest.mark.parametrize("tool", ["k6", "jmeter"])
def test_kill_9_of_perfhouse_removes_its_containers_and_their_secrets(tool: str, engine: None, tmp_path: Path,
                                                                      owned_spec: Path) -> None:
    with DemoAPI() as api:
        proc = start_perfhouse(tmp_path, owned_spec, api, tool, "--runner", "docker",
                               "--k6-image", K6_IMAGE, "--jmeter-image", JMETER_IMAGE)
        directory = started(tmp_path, tool, proc)
        (container,) = leftovers(directory.name)
        assert container.labels[CONTAINER_OWNER_LABEL].split(":")[1] == str(proc.pid)
        kill_9_and_check(tmp_path, proc, directory)
        eventually(lambda: leftovers(directory.name) == [], "the run's container outlived perfhouse")


@contextlib.contextmanager
def labelled_containers(specs: list[tuple[str, str]], directory: Path) -> Iterator[list[object]]:
    """Sleeping k6 containers labelled as perfhouse's, one per (run id, owner token); removed afterwards."""
    import docker

    client = docker.from_env()
    (directory / "sleep.js").write_text('import { sleep } from "k6";\nexport default function () { sleep(120); }\n')
    containers: list[object] = []
    try:
        for run_id, owner in specs:
            labels = {RUN_LABEL: run_id, PART_LABEL: "g1", TOOL_LABEL: "k6", CONTAINER_OWNER_LABEL: owner}
            containers.append(client.containers.run(
                K6_IMAGE, ["run", "--quiet", "--iterations", "1", str(directory / "sleep.js")], detach=True,
                labels=labels, network_mode="host",
                volumes={str(directory): {"bind": str(directory), "mode": "ro"}}))
        yield containers
    finally:
        for container in containers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)  # type: ignore[attr-defined]


def test_a_local_run_finds_a_dead_runs_containers_without_loading_the_docker_sdk(
        engine: None, tmp_path: Path, owned_spec: Path) -> None:
    """The engine on the local socket is asked directly: the same containers as the SDK lists, no SDK imported."""
    from orchestrator.runners.docker import _listed_on_socket

    need("k6")
    dead_run = f"test-dead-sdk-{os.getpid()}"
    with labelled_containers([(dead_run, dead_owner().token)], tmp_path) as (dead,):
        def seen(containers: list[Any]) -> set[tuple[object, ...]]:
            return {(c.id, c.short_id, c.name, c.status, tuple(sorted((c.labels or {}).items())))
                    for c in containers if (c.labels or {}).get(RUN_LABEL) == dead_run}

        assert seen(_listed_on_socket(10.0) or []) == seen(leftovers(dead_run)) != set()
        with DemoAPI() as api:
            proc = subprocess.Popen(
                [sys.executable, "-X", "importtime", "-m", "orchestrator", "--warehouse", f"chdb://{tmp_path / 'wh'}",
                 "run", str(owned_spec), "--profile", "fixed", "--tool", "k6", "--service", f"api={api.url}",
                 "--runs-dir", str(tmp_path / "runs")],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**{k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}, "PERFHOUSE_TEST_SECRET": SECRET})
            out, imports = proc.communicate(timeout=180)
        assert proc.returncode == 0, out + imports[-2000:]
        assert f"note: containers of dead run {dead_run} are still there: {dead.short_id}" in out  # type: ignore[attr-defined]
        loaded = {line.rsplit("|", 1)[-1].strip() for line in imports.splitlines() if line.startswith("import time:")}
        assert "orchestrator.runners.docker" in loaded
        assert "docker" not in loaded, [line for line in imports.splitlines() if "docker" in line]


def test_the_next_run_names_containers_of_a_dead_run_and_cleanup_removes_only_those(
        engine: None, tmp_path: Path, owned_spec: Path) -> None:
    """What the watchdog could not remove (it was killed too) is named by the next run and cleaned up."""
    need("k6")
    dead_run, live_run = f"test-dead-{os.getpid()}", f"test-alive-{os.getpid()}"
    with labelled_containers([(dead_run, dead_owner().token), (live_run, me().token)], tmp_path) as (dead, alive):
        with DemoAPI() as api:
            proc = start_perfhouse(tmp_path, owned_spec, api, "k6", profile="fixed")
            out, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, out
        assert f"note: containers of dead run {dead_run} are still there: {dead.short_id}" in out  # type: ignore[attr-defined]
        assert live_run not in out, "a run whose perfhouse is alive is not called dead"

        cleaned = subprocess.run([sys.executable, "-m", "orchestrator", "cleanup", "--json"], capture_output=True,
                                 text=True, timeout=120)
        assert cleaned.returncode == 0, cleaned.stderr
        mine = {c["run_id"]: c for c in json.loads(cleaned.stdout) if c["run_id"] in (dead_run, live_run)}
        assert mine[dead_run]["owner"] == "dead" and mine[dead_run]["action"] == "stopped and removed"
        assert mine[live_run]["owner"] == "alive" and mine[live_run]["action"] == "listed"
        assert leftovers(dead_run) == []
        assert [c.id for c in leftovers(live_run)] == [alive.id]  # type: ignore[attr-defined]


@pytest.mark.parametrize("released", [False, True])
def test_the_watchdog_undoes_what_it_was_told_only_when_perfhouse_does_not_release_it(
        released: bool, tmp_path: Path) -> None:
    from orchestrator.watchdog import Watchdog

    # a shell wrapper that starts the real program without exec, as JMeter 5's bin/jmeter starts java
    sleeper = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; wait"], start_new_session=True,
                               stdout=subprocess.PIPE, text=True)
    assert sleeper.stdout is not None
    program = int(sleeper.stdout.readline())
    secret = tmp_path / ENV_FILE
    secret.write_text("perfhouse.env.TOKEN=x\n")
    log = tmp_path / "watchdog.log"
    watchdog = Watchdog(log)
    watchdog.guard_group(sleeper.pid)
    watchdog.guard_file(secret)
    try:
        if released:
            watchdog.close()  # the run ended in order
        else:
            assert watchdog._proc.stdin is not None
            watchdog._proc.stdin.close()  # what the end of perfhouse does to the pipe
            watchdog._proc.wait(timeout=30)
        if released:
            assert sleeper.poll() is None and running(program) and secret.exists() and not log.exists()
        else:
            assert sleeper.wait(timeout=30) == -signal.SIGKILL
            eventually(lambda: not running(program), "the wrapper's program outlived the group kill", 30)
            assert not secret.exists()
            assert f"killed process group {sleeper.pid}; removed {secret}" in log.read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sleeper.pid, signal.SIGKILL)
        sleeper.wait()


def test_cleanup_marks_the_runs_of_a_dead_perfhouse_aborted(engine: None, tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'wh'}"
    warehouse = Warehouse.open(url)
    dead = save(warehouse, dead_owner().token)
    getattr(warehouse.backend, "release", lambda: None)()
    cleaned = subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", url, "cleanup", "--run",
                              f"no-such-run-{os.getpid()}"], capture_output=True, text=True, timeout=120)
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"run {dead}: its perfhouse died while it went; marked aborted" in cleaned.stdout
    assert Warehouse.open(url).run(dead).status == "aborted"
