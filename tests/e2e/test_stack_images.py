"""The team stack run for real: the perfhouse image built from ./Dockerfile as it stands, its containers run as
docker-compose.yml describes them, and Docker Compose itself loading the file.

No image registry can be reached here, so the Dockerfile's base is perfhouse-test/python:local, a stand-in for
python:3.11-slim made from this host's files by scripts/build-python-test-image; `pip install .` inside the
build fetches perfhouse's dependencies from PyPI over the host network. An image built from the same context
(the Dockerfile, the files it copies, the base image) carries that context's digest as a label and is reused.

The demo API and dashboard services run from that image with the compose file's own commands, environment,
network and volumes (`docker run`, since their ports are picked free here rather than the fixed 8080 and
8501); the warehouse they share is the test's ClickHouse HTTP front (tests/support/chfront.py) standing in for
the compose file's ClickHouse server, filled by a real k6 run against the demo API container. Headless
Chromium then opens the dashboard container's pages. The compose file's ClickHouse server, Prometheus,
node-exporter and Grafana images cannot be had here, so those services are not run: their files are checked
in tests/unit/test_stack.py (and the Grafana dashboard's SQL in tests/integration/test_grafana_sql.py).
Docker Compose v2 (the `docker compose` plugin, scripts/install-compose) loads and validates the file.

Containers started here carry the label perfhouse.test.stack with this session's id and are removed by the
test. Screenshots for a person: tests/e2e/artifacts/stack-runs.png and stack-run.png.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect
import pytest

from tests.conftest import ROOT, need, unavailable
from tests.e2e.browser import Chromium
from tests.e2e.test_dashboard_screenshot import free_port, page_state
from tests.support.chfront import start_front_process, stop_front_process
from tests.support.compose import COMPOSE, compose, interpolate, run_arguments, with_option
from warehouse.store import Warehouse

DOCKER_SETUP = "../shared/tools/start-dockerd"  # named when a Docker test cannot run under CI

# the first test to ask for the image may build it: `pip install .` fetches perfhouse's dependencies (minutes)
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800), pytest.mark.xdist_group("docker")]

PYTHON_IMAGE = "perfhouse-test/python:local"
PERFHOUSE_IMAGE = "perfhouse-test/perfhouse:local"
CONTEXT_LABEL = "perfhouse.test.context"
CONTAINER_LABEL = "perfhouse.test.stack"
SESSION = uuid.uuid4().hex[:12]
# The variables a team would set to use these images instead of the defaults of the compose file.
IMAGES = {"PERFHOUSE_IMAGE": PERFHOUSE_IMAGE, "PERFHOUSE_PYTHON_IMAGE": PYTHON_IMAGE}
ARTIFACTS = Path(__file__).parent / "artifacts"


def docker(*args: str, timeout: float = 120, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}"
                             f"{done.stderr[-3000:]}")
    return done


@pytest.fixture(scope="module")
def engine() -> None:
    if shutil.which("docker") is None:
        unavailable("the docker CLI is not installed", DOCKER_SETUP)
    if docker("version", "--format", "{{.Server.Version}}", check=False, timeout=30).returncode != 0:
        unavailable("the Docker engine is not reachable", DOCKER_SETUP)


def _ignored(relative: str, patterns: list[str]) -> bool:
    parts = relative.split("/")
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        if fnmatch.fnmatch(relative, pattern) or any(fnmatch.fnmatch(part, bare) for part in parts):
            return True
    return False


def context_digest(base_image_id: str, build_args: dict[str, str]) -> str:
    """What the image is built from: the Dockerfile, the files its COPY lines send (less .dockerignore's),
    the base image and the build arguments."""
    dockerfile = (ROOT / "Dockerfile").read_bytes()
    patterns = [p for p in (ROOT / ".dockerignore").read_text(encoding="utf-8").split() if not p.startswith("#")]
    digest = hashlib.sha256(dockerfile + base_image_id.encode() + json.dumps(build_args, sort_keys=True).encode())
    sources = [src for line in dockerfile.decode().splitlines() if line.startswith("COPY ")
               for src in line.split()[1:-1]]
    for source in sources:
        path = ROOT / source
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if not _ignored(relative, patterns):
                digest.update(f"{relative}\0{file.stat().st_mode & 0o111}\0".encode() + file.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


@pytest.fixture(scope="module")
def perfhouse_image(engine: None) -> str:
    """The perfhouse image built from ./Dockerfile, unchanged, on the stand-in base (or the one already built
    from the same context); its id."""
    made = subprocess.run(["bash", str(ROOT / "scripts" / "build-python-test-image")], capture_output=True,
                          text=True, timeout=900)
    assert made.returncode == 0, f"build-python-test-image failed:\n{made.stdout[-2000:]}{made.stderr[-3000:]}"
    base = docker("image", "inspect", "--format", "{{.Id}}", PYTHON_IMAGE).stdout.strip()
    build = compose()["services"]["dashboard"]["build"]
    args = {name: interpolate(str(value), IMAGES) for name, value in build["args"].items()}
    assert args["PYTHON_IMAGE"] == PYTHON_IMAGE
    digest = context_digest(base, args)
    built = docker("image", "ls", "--quiet", "--no-trunc", "--filter", f"label={CONTEXT_LABEL}={digest}").stdout.split()
    if built:
        return built[0]
    image = interpolate(compose()["services"]["dashboard"]["image"], IMAGES)
    argv = ["build", "--network", "host", "--label", f"{CONTEXT_LABEL}={digest}", "--tag", image,
            "--file", str(ROOT / build["context"] / build["dockerfile"]), "--quiet"]
    for name, value in args.items():
        argv += ["--build-arg", f"{name}={value}"]
    # the engine here has no BuildKit front end (no buildx): the classic builder, host network for pip
    done = docker(*argv, str(ROOT / build["context"]), timeout=1800, env={**os.environ, "DOCKER_BUILDKIT": "0"})
    image_id = done.stdout.strip().splitlines()[-1]
    # earlier builds of this test (other contexts) are dropped unless something still uses them
    for line in docker("image", "ls", "--no-trunc", "--filter", f"label={CONTEXT_LABEL}",
                       "--format", "{{.ID}}").stdout.split():
        if line != image_id:
            docker("image", "rm", line, check=False)
    return image_id


@contextlib.contextmanager
def container(image: str, options: list[str], command: list[str]) -> Iterator[str]:
    """A detached container of the image, labelled as this session's; removed on exit. Its id."""
    started = docker("run", "--detach", "--label", f"{CONTAINER_LABEL}={SESSION}", *options, image, *command)
    ident = started.stdout.strip()
    try:
        yield ident
    finally:
        docker("rm", "--force", ident, check=False)


def wait_for_http(url: str, ident: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        running = docker("inspect", "--format", "{{.State.Running}}", ident).stdout.strip()
        if running != "true" or time.monotonic() > deadline:
            logs = docker("logs", ident, check=False)
            raise AssertionError(f"{url} did not answer (container running: {running}):\n"
                                 f"{logs.stdout[-3000:]}{logs.stderr[-3000:]}")
        time.sleep(0.3)


@pytest.fixture
def warehouse_front(tmp_path: Path) -> Iterator[int]:
    """The test's ClickHouse server: chfront in a child process; its port."""
    proc, port = start_front_process(tmp_path / "clickhouse")
    try:
        yield port
    finally:
        assert stop_front_process(proc) == 0


def on_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1", url
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{port}"))


def test_the_perfhouse_image_serves_the_demo_api_and_a_dashboard_showing_a_k6_run(
        perfhouse_image: str, warehouse_front: int, tmp_path: Path) -> None:
    chromium = need("chromium")
    need("k6")
    services = compose()["services"]
    project = tmp_path / "project"  # the directory of the compose file: .perfhouse/runs is written here
    (project / ".perfhouse" / "runs").mkdir(parents=True)

    # The compose file's warehouse (database, user) on the test's server instead of :8123.
    dashboard = services["dashboard"]
    compose_url = next(arg for arg in dashboard["command"] if arg.startswith("clickhouse://"))
    url = on_port(compose_url, warehouse_front)
    database = urlsplit(url).path.strip("/")
    client = clickhouse_connect.get_client(host="127.0.0.1", port=warehouse_front, compress=False)
    try:  # what the compose ClickHouse service's CLICKHOUSE_DB does on its first start
        client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    finally:
        client.close()

    demo = services["demo-api"]
    api_port, dashboard_port = free_port(), free_port()
    with container(perfhouse_image, run_arguments(demo, project),
                   with_option(demo["command"], "--port", str(api_port))) as api_container:
        api = f"http://127.0.0.1:{api_port}"
        wait_for_http(f"{api}/health", api_container)

        env = {k: v for k, v in os.environ.items() if k not in ("PERFHOUSE_RUNS_DIR", "PERFHOUSE_WAREHOUSE")}
        ran = subprocess.run(
            [sys.executable, "-m", "orchestrator", "--warehouse", url, "run", str(ROOT / "examples" / "shop.yaml"), "--profile", "smoke",
             "--tool", "k6", "--service", f"api={api}"], cwd=project, env=env, capture_output=True, text=True,
            timeout=300)
        assert ran.returncode in (0, 3), f"perfhouse run exited {ran.returncode}:\n{ran.stdout}\n{ran.stderr}"
        verdict = "PASSED" if ran.returncode == 0 else "FAILED"  # 3: an SLO of the spec failed
        (run,) = (r.to_dict() for r in Warehouse.open(url).run_list())
        assert run["tool"] == "k6" and run["requests"] > 0, run
        assert (project / ".perfhouse" / "runs" / run["run_id"]).is_dir()

        command = with_option(dashboard["command"], "--port", str(dashboard_port))
        command = [url if arg == compose_url else arg for arg in command]
        with container(perfhouse_image, run_arguments(dashboard, project), command) as dashboard_container:
            base = f"http://127.0.0.1:{dashboard_port}"
            wait_for_http(f"{base}/_stcore/health", dashboard_container)
            with Chromium(chromium, tmp_path / "chromium", 1400, 1000) as browser:
                browser.open(f"{base}/?page=runs")
                runs = browser.wait_for(page_state(tables=1), timeout_s=90)
                # the table is drawn on a canvas; its cells' text is in the grid's accessibility table
                runs["listed"] = browser.evaluate(
                    "[...document.querySelectorAll('[data-testid=\"stDataFrame\"] [role=\"gridcell\"]')]"
                    ".map(cell => cell.textContent.trim())")
                runs_shot = browser.screenshot(tmp_path / "stack-runs.png")
                browser.open(f"{base}/?page=run&run={run['run_id']}")
                one = browser.wait_for(page_state(charts=2, tables=2, metrics=5), timeout_s=90)  # no errors: no error chart
                run_shot = browser.screenshot(tmp_path / "stack-run.png")
                # the run's directory, mounted read-only where the compose environment points the dashboard
                one["text"] = browser.evaluate("document.body.textContent")
            logs = docker("logs", dashboard_container, check=False)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / ".gitignore").write_text("# screenshots for people to look at, never committed\n*\n")
        for shot in (runs_shot, run_shot):
            shutil.copy(shot, ARTIFACTS / shot.name)

    assert docker("ps", "--all", "--quiet", "--filter", f"label={CONTAINER_LABEL}={SESSION}").stdout.strip() == ""
    dashboard_log = logs.stdout + logs.stderr
    assert runs["exceptions"] == [] and one["exceptions"] == [], (runs, one, dashboard_log[-3000:])
    assert "Traceback" not in dashboard_log, dashboard_log[-3000:]
    assert runs["title"] == "Runs" and run["run_id"] in runs["listed"] and verdict in runs["listed"], runs
    assert one["title"] == f"Run {run['run_id']}", one
    assert one["metrics"][0] == f"Requests {run['requests']:,}", one
    assert one["metrics"][4].startswith(f"Verdict {verdict}"), one
    # the run's directory and its files, read through the read-only mount where the compose environment
    # points the dashboard (PERFHOUSE_RUNS_DIR)
    assert f"In {dashboard['environment']['PERFHOUSE_RUNS_DIR']}/{run['run_id']}" in one["text"], one["text"][-2000:]
    scripts = [p.name for p in (project / ".perfhouse" / "runs" / run["run_id"]).iterdir() if p.suffix == ".js"]
    assert scripts and all(name in one["text"] for name in scripts), (scripts, one["text"][-2000:])


def test_the_python_stand_in_is_cpython_at_usr_local_with_pip_alone(perfhouse_image: str) -> None:
    """The base the image was built on: python:3.11-slim's layout, none of the host's packages or paths."""
    probe = ("import json, sys, sysconfig, importlib.metadata as m; print(json.dumps({'prefix': sys.prefix, "
             "'version': sys.version_info[:2], 'packages': sorted(d.metadata['Name'] for d in m.distributions()), "
             "'scripts': sysconfig.get_path('scripts'), 'path': [p for p in sys.path if p and not p.startswith('/usr/local')]}))")
    shown = json.loads(docker("run", "--rm", "--network", "none", "--label", f"{CONTAINER_LABEL}={SESSION}",
                              PYTHON_IMAGE, "python3", "-c", probe).stdout)
    assert shown == {"prefix": "/usr/local", "version": [3, 11], "packages": ["pip", "setuptools"],
                     "scripts": "/usr/local/bin", "path": []}, shown
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", PYTHON_IMAGE).stdout)
    assert config["Cmd"] == ["python3"] and "LANG=C.UTF-8" in config["Env"]
    assert any(e.startswith("PATH=/usr/local/bin:") for e in config["Env"]), config["Env"]
    # and the perfhouse image on it: perfhouse installed, run as the unprivileged user the Dockerfile adds
    user = docker("run", "--rm", "--network", "none", "--label", f"{CONTAINER_LABEL}={SESSION}", perfhouse_image,
                  "sh", "-c", "id -un && perfhouse --help >/dev/null && echo ok").stdout.split()
    assert user == ["perfhouse", "ok"], user


def test_docker_compose_loads_the_file_with_the_images_a_team_names(engine: None, tmp_path: Path) -> None:
    """`docker compose config`: Compose's own loader validates the file, merges the shared perfhouse service
    and interpolates the image variables; what it yields for the perfhouse services is what the test above ran."""
    if docker("compose", "version", check=False, timeout=30).returncode != 0:
        unavailable("the docker compose plugin is not installed (scripts/install-compose)", DOCKER_SETUP)
    env = {**os.environ, **IMAGES}
    shown = docker("compose", "--file", str(COMPOSE), "config", "--format", "json", env=env)
    config = json.loads(shown.stdout)
    raw = compose()["services"]
    assert set(config["services"]) == set(raw)
    for name in ("dashboard", "demo-api"):
        service = config["services"][name]
        assert service["image"] == PERFHOUSE_IMAGE
        assert service["build"]["args"] == {"PYTHON_IMAGE": PYTHON_IMAGE}
        assert service["command"] == raw[name]["command"] and service["network_mode"] == "host"
    assert config["services"]["dashboard"]["environment"] == raw["dashboard"]["environment"]
    (runs,) = config["services"]["dashboard"]["volumes"]
    assert runs["source"] == str(ROOT / ".perfhouse" / "runs") and runs["read_only"] is True
    plain = json.loads(docker("compose", "--file", str(COMPOSE), "config", "--format", "json",
                              env={k: v for k, v in os.environ.items() if k not in IMAGES}).stdout)
    assert plain["services"]["clickhouse"]["image"] == interpolate(raw["clickhouse"]["image"])
    assert plain["services"]["dashboard"]["build"]["args"] == {"PYTHON_IMAGE": "python:3.11-slim"}

    broken = tmp_path / "docker-compose.yml"  # and it refuses what the schema test refuses
    broken.write_text(COMPOSE.read_text(encoding="utf-8").replace("network_mode: host", "network_mod: host", 1))
    refused = docker("compose", "--file", str(broken), "config", "--quiet", check=False)
    assert refused.returncode != 0 and "network_mod" in refused.stderr, refused.stderr
