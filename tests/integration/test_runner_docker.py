"""The Docker runner against the real engine: k6 and JMeter in containers, split k6, clean stops."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.demo_api import DemoAPI
from orchestrator.run import RunSettings, run_tool
from orchestrator.runners import RunnerOptions
from orchestrator.runners.docker import PART_LABEL, RUN_LABEL, TOOL_LABEL, leftovers
from orchestrator.spec import load_spec
from tests.conftest import ROOT, need, unavailable
from warehouse.store import Warehouse

DOCKER_SETUP = "../shared/tools/start-dockerd, ../shared/tools/build-test-images"  # named when a Docker test cannot run under CI

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("docker")]  # one Docker engine: one worker

K6_IMAGE = "perfhouse-test/k6:local"
JMETER_IMAGE = "perfhouse-test/jmeter:local"
TEST_IMAGES = RunnerOptions(images={"k6": K6_IMAGE, "jmeter": JMETER_IMAGE})

ONE_JOURNEY = """
name: split
services:
  api: http://127.0.0.1:8080
journeys:
  - name: browse
    steps:
      - name: list_products
        path: /products
        checks:
          - status: 200
      - name: health
        path: /health
profiles:
  fixed: {executor: iterations, vus: 3, iterations: 4}
  long: {executor: constant_vus, vus: 3, duration: 60s}
"""


@pytest.fixture(scope="module")
def engine() -> None:
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:
        unavailable(f"the Docker engine is not reachable ({exc})", DOCKER_SETUP)
    for image in (K6_IMAGE, JMETER_IMAGE):
        try:
            client.images.get(image)
        except Exception:
            unavailable(f"test image {image} is missing: run ../shared/tools/build-test-images", DOCKER_SETUP)


@pytest.fixture
def split_spec(tmp_path: Path) -> Path:
    path = tmp_path / "split.yaml"
    path.write_text(ONE_JOURNEY)
    return path


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(cmdline)
    return found


def test_k6_and_jmeter_run_in_containers_and_land_in_the_warehouse(engine: None, tmp_path: Path,
                                                                    demo_api: DemoAPI) -> None:
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    spec = load_spec(ROOT / "examples" / "shop.yaml")
    settings = RunSettings(runner="docker", options=TEST_IMAGES)
    for tool in ("k6", "jmeter"):
        outcome = run_tool(spec, tool, wh, "smoke", {"api": demo_api.url}, runs_dir=tmp_path / "runs",
                           settings=settings)
        assert outcome.status == "completed", outcome.notes
        assert outcome.totals["count"] == 12  # smoke: 2 journeys x 2 VUs' share x 3 iterations x 2 steps
        console = outcome.directory / f"{tool}-console.log"
        assert console.stat().st_size > 0, "the container's output is streamed into the run's console log"
        assert leftovers(outcome.run_id) == []
    runs = wh.runs()
    assert sorted(r.tool for r in runs) == ["jmeter", "k6"]
    assert {r.status for r in runs} == {"completed"}
    assert wh.run(runs[0].run_id).labels["runner"] == "docker"


def test_three_k6_generators_send_what_one_sends_into_one_run(engine: None, tmp_path: Path,
                                                              split_spec: Path, demo_api: DemoAPI) -> None:
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    spec = load_spec(split_spec)
    single = run_tool(spec, "k6", wh, "fixed", {"api": demo_api.url}, runs_dir=tmp_path / "runs",
                      settings=RunSettings(runner="docker", options=TEST_IMAGES))
    split = run_tool(spec, "k6", wh, "fixed", {"api": demo_api.url}, runs_dir=tmp_path / "runs",
                     settings=RunSettings(runner="docker", options=TEST_IMAGES, generators=3))
    assert single.status == split.status == "completed", split.notes
    one, three = single.totals["count"], split.totals["count"]
    assert one == 3 * 4 * 2  # 3 VUs x 4 iterations x 2 steps
    assert abs(three - one) <= 0.05 * one
    assert len(wh.runs()) == 2, "the three generators' outputs form ONE run"
    per_generator = wh.backend.query(
        "SELECT generator, count() AS n FROM requests WHERE run_id = {r:String} GROUP BY generator "
        "ORDER BY generator", {"r": split.run_id})
    assert [row["generator"] for row in per_generator] == ["g1", "g2", "g3"]
    assert all(row["n"] > 0 for row in per_generator)
    assert len(split.ingested) == 3
    assert leftovers(split.run_id) == []


def test_three_jmeter_containers_send_exactly_what_one_sends_into_one_run(engine: None, tmp_path: Path,
                                                                         split_spec: Path, demo_api: DemoAPI) -> None:
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    spec = load_spec(split_spec)
    single = run_tool(spec, "jmeter", wh, "fixed", {"api": demo_api.url}, runs_dir=tmp_path / "runs",
                      settings=RunSettings(runner="docker", options=TEST_IMAGES))
    split = run_tool(spec, "jmeter", wh, "fixed", {"api": demo_api.url}, runs_dir=tmp_path / "runs",
                     settings=RunSettings(runner="docker", options=TEST_IMAGES, generators=3, live=True,
                                          live_interval_s=0.5))
    assert single.status == split.status == "completed", split.notes
    assert single.totals["count"] == split.totals["count"] == 3 * 4 * 2  # exact: each part runs whole threads
    assert all("/live/" in r.path for r in split.ingested), "live: the parts' JTLs arrive in chunks only"
    assert len(wh.runs()) == 2, "the three containers' outputs form ONE run"
    per_generator = wh.backend.query(
        "SELECT generator, count() AS n FROM requests WHERE run_id = {r:String} GROUP BY generator "
        "ORDER BY generator", {"r": split.run_id})
    assert [(row["generator"], row["n"]) for row in per_generator] == [("g1", 8), ("g2", 8), ("g3", 8)]
    assert sorted(p.name for p in split.directory.glob("jmeter-g*-console.log")) == [
        "jmeter-g1-console.log", "jmeter-g2-console.log", "jmeter-g3-console.log"]
    assert leftovers(split.run_id) == []


def test_split_k6_over_local_processes_too(tmp_path: Path, split_spec: Path, demo_api: DemoAPI) -> None:
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    split = run_tool(load_spec(split_spec), "k6", wh, "fixed", {"api": demo_api.url}, runs_dir=tmp_path / "runs",
                     settings=RunSettings(generators=3))
    assert split.status == "completed" and split.totals["count"] == 24
    assert sorted(p.name for p in split.directory.glob("k6-g*.json")) == ["k6-g1.json", "k6-g2.json", "k6-g3.json"]


def perfhouse_run(tmp_path: Path, spec: Path, api: DemoAPI, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "--warehouse", f"chdb://{tmp_path / 'wh'}", "run", str(spec),
         "--profile", "long", "--service", f"api={api.url}", "--runs-dir", str(tmp_path / "runs"),
         "--runner", "docker", "--k6-image", K6_IMAGE, "--jmeter-image", JMETER_IMAGE, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(pattern: str, where: Path, seconds: float = 60) -> None:
    start = time.monotonic()
    while not [p for p in where.glob(pattern) if p.stat().st_size > 0]:
        assert time.monotonic() - start < seconds, f"nothing matched {pattern} in {where}"
        time.sleep(0.2)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_containers_keeps_results_and_marks_the_run_aborted(
        engine: None, tmp_path: Path, split_spec: Path, sig: signal.Signals) -> None:
    with DemoAPI() as api:
        proc = perfhouse_run(tmp_path, split_spec, api, "--generators", "2")
        wait_for("*/k6-g*.json", tmp_path / "runs")
        time.sleep(2)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    (run,) = wh.runs()
    assert run.status == "aborted" and run.requests > 0
    assert leftovers(run.run_id) == []
    assert processes_mentioning(run.run_id) == []


def test_the_timeout_stops_jmeter_in_its_container_and_keeps_what_it_wrote(
        engine: None, tmp_path: Path, split_spec: Path) -> None:
    with DemoAPI() as api:
        proc = perfhouse_run(tmp_path, split_spec, api, "--tool", "jmeter", "--timeout", "12")
        out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, out + err
    assert "stopped by the 12s timeout" in out
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    (run,) = wh.runs()
    assert run.status == "aborted" and run.requests > 0
    assert leftovers(run.run_id) == []
    assert processes_mentioning(run.run_id) == []


def test_a_missing_image_is_one_line_naming_the_option(engine: None, tmp_path: Path, split_spec: Path) -> None:
    with DemoAPI() as api:
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "--warehouse", f"chdb://{tmp_path / 'wh'}", "run", str(split_spec),
             "--profile", "fixed", "--service", f"api={api.url}", "--runner", "docker",
             "--k6-image", "perfhouse-test/absent:never"], capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 5 and len(lines) == 1, proc.stderr
    assert "perfhouse-test/absent:never is not present" in lines[0] and "--k6-image" in lines[0]


@pytest.fixture
def sut_container(engine: None) -> Iterator[str]:
    """A named container standing in for a system under test whose stats are sampled."""
    import docker

    name = f"perfhouse-test-sut-{os.getpid()}"
    container = docker.from_env().containers.run(
        JMETER_IMAGE, entrypoint=["/usr/bin/sh", "-c", "read line"], detach=True, stdin_open=True,
        network_mode="host", name=name, labels={"perfhouse.test": "sut"})
    try:
        yield name
    finally:
        container.remove(force=True)


def test_docker_stats_of_a_named_container_land_in_the_run(tmp_path: Path, sut_container: str,
                                                           demo_api: DemoAPI) -> None:
    need("k6")
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    spec = load_spec(ROOT / "examples" / "shop.yaml")
    source = f"docker://{sut_container}"
    outcome = run_tool(spec, "k6", wh, "smoke", {"api": demo_api.url}, runs_dir=tmp_path / "runs",
                       settings=RunSettings(scrape=(source,), scrape_interval_s=0.5))
    assert outcome.status == "completed", outcome.notes
    rows = wh.infra_samples(outcome.run_id)
    metrics = {r.metric for r in rows}
    assert {"container_cpu_usage_seconds_total", "container_memory_usage_bytes"} <= metrics
    assert {r.source for r in rows} == {source}
    assert all(r.labels["container"] == sut_container for r in rows)
    memory = [r.value for r in rows if r.metric == "container_memory_usage_bytes"]
    assert memory and all(v > 0 for v in memory)


SLEEPING_K6 = """import { sleep } from "k6";
export const options = { vus: 1, iterations: 1 };
export default function () { sleep(120); }
"""


def perfhouse_cleanup(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", "cleanup", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def exists(container: Any) -> bool:
    import docker.errors

    try:
        container.reload()
    except docker.errors.NotFound:
        return False
    return True


def test_cleanup_stops_and_removes_one_runs_leftover_containers_and_leaves_other_runs_alone(
        engine: None, tmp_path: Path) -> None:
    """What a `kill -9`ed perfhouse leaves: a running and a never-started container of its run."""
    import docker

    client = docker.from_env()
    (tmp_path / "sleep.js").write_text(SLEEPING_K6)
    killed, other = f"test-cleanup-{uuid.uuid4().hex[:8]}", f"test-other-{uuid.uuid4().hex[:8]}"

    def labelled(run_id: str, generator: str) -> dict[str, str]:
        return {RUN_LABEL: run_id, PART_LABEL: generator, TOOL_LABEL: "k6"}

    sleeping = {"command": ["run", "--quiet", str(tmp_path / "sleep.js")], "network_mode": "host",
                "volumes": {str(tmp_path): {"bind": str(tmp_path), "mode": "ro"}}}
    containers = []
    try:
        running = client.containers.run(K6_IMAGE, detach=True, labels=labelled(killed, "g1"), **sleeping)
        containers.append(running)
        created = client.containers.create(K6_IMAGE, detach=True, labels=labelled(killed, "g2"), **sleeping)
        containers.append(created)
        bystander = client.containers.run(K6_IMAGE, detach=True, labels=labelled(other, "g1"), **sleeping)
        containers.append(bystander)

        listed = perfhouse_cleanup("--dry-run", "--all", "--json")
        assert listed.returncode == 0, listed.stderr
        mine = {c["id"]: c for c in json.loads(listed.stdout) if c["run_id"] in (killed, other)}
        assert mine == {
            running.short_id: {"id": running.short_id, "name": running.name, "run_id": killed, "tool": "k6",
                               "generator": "g1", "state": "running", "action": "would stop and remove", "owner": "unknown"},
            created.short_id: {"id": created.short_id, "name": created.name, "run_id": killed, "tool": "k6",
                               "generator": "g2", "state": "created", "action": "would remove",
                               "owner": "unknown"},
            bystander.short_id: {"id": bystander.short_id, "name": bystander.name, "run_id": other, "tool": "k6",
                                 "generator": "g1", "state": "running", "action": "would stop and remove", "owner": "unknown"},
        }
        assert all(exists(c) for c in containers), "a dry run removes nothing"
        hosts = ("--docker-host", "unix:///var/run/docker.sock", "--docker-host", "unix:///run/docker.sock")
        by_hosts = perfhouse_cleanup("--dry-run", "--json", *hosts)
        assert by_hosts.returncode == 0, by_hosts.stderr
        assert sorted(c["id"] for c in json.loads(by_hosts.stdout) if c["run_id"] in (killed, other)) == sorted(
            mine), "the engines given are cleaned, one engine named twice lists its containers once"
        unnamed = perfhouse_cleanup()
        assert unnamed.returncode == 0, unnamed.stderr
        assert "listed (their perfhouse is alive or unknown); name a dead run with --run RUN_ID" in unnamed.stdout
        assert all(exists(c) for c in containers), "without --run or --all only containers of dead owners go"

        cleaned = perfhouse_cleanup("--run", killed)
        assert cleaned.returncode == 0, cleaned.stderr
        lines = cleaned.stdout.splitlines()
        assert any(running.short_id in line and "stopped and removed" in line for line in lines), cleaned.stdout
        assert any(created.short_id in line and line.endswith(" removed") for line in lines), cleaned.stdout
        assert lines[-1] == "2 containers: 2 removed, 0 failed"
        assert bystander.short_id not in cleaned.stdout
        assert not exists(running) and not exists(created) and leftovers(killed) == []
        assert exists(bystander) and bystander.status == "running", "another run's container is left alone"

        again = perfhouse_cleanup("--run", killed)
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == f"no perfhouse containers of run {killed}: nothing to clean up"
    finally:
        for container in containers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


def test_cleanup_without_a_docker_engine_is_one_line_and_exit_1(tmp_path: Path) -> None:
    proc = perfhouse_cleanup("--dry-run", env={"DOCKER_HOST": f"unix://{tmp_path / 'no-engine.sock'}"})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("perfhouse: error: the Docker engine is not reachable") and "DOCKER_HOST" in lines[0]
    assert proc.stdout == ""
    proc = perfhouse_cleanup("--dry-run", "--docker-host", f"unix://{tmp_path / 'no-engine.sock'}")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and "no-engine.sock is not reachable" in lines[0], proc.stderr


def test_generators_spread_over_docker_hosts_come_back_through_the_archive_api(
        engine: None, tmp_path: Path, split_spec: Path, demo_api: DemoAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """One engine under two URLs stands in for two hosts: each part runs on the engine of its URL, with nothing
    mounted (the script goes in and the results come out through the engine's archive API)."""
    import orchestrator.runners.docker as docker_runner

    hosts = ("unix:///var/run/docker.sock", "unix:///run/docker.sock")
    if not all(Path(h.removeprefix("unix://")).exists() for h in hosts):
        unavailable("the Docker engine's socket is not at both /var/run/docker.sock and /run/docker.sock", DOCKER_SETUP)
    reached: list[str] = []
    mounts: list[dict[str, object]] = []
    client_at, create_args = docker_runner.client_at, docker_runner._create_args

    def recording_client(url: str) -> object:
        reached.append(url)
        return client_at(url)

    def recording_args(*args: object, **kwargs: object) -> dict[str, object]:
        made = create_args(*args, **kwargs)  # type: ignore[arg-type]
        mounts.append(made["volumes"])
        return made

    monkeypatch.setattr(docker_runner, "client_at", recording_client)
    monkeypatch.setattr(docker_runner, "_create_args", recording_args)
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    spec = load_spec(split_spec)
    options = RunnerOptions(images=TEST_IMAGES.images, docker_hosts=hosts)
    split = run_tool(spec, "k6", wh, "fixed", {"api": demo_api.url}, runs_dir=tmp_path / "runs",
                     settings=RunSettings(runner="docker", options=options, generators=2))
    assert split.status == "completed", split.notes
    assert set(reached) == set(hosts)
    assert mounts == [{}, {}]
    per_generator = wh.backend.query(
        "SELECT generator, count() AS n FROM requests WHERE run_id = {r:String} GROUP BY generator "
        "ORDER BY generator", {"r": split.run_id})
    assert [row["generator"] for row in per_generator] == ["g1", "g2"]
    assert split.totals["count"] == 3 * 4 * 2  # 3 VUs x 4 iterations x 2 steps, over both parts
    assert leftovers(split.run_id) == []
