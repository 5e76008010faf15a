"""Locust in Docker: `perfhouse run --tool locust --runner docker` runs a generated locustfile in a container of the
image given (perfhouse-test/locust:local, built by scripts/build-locust-test-image) against a server on this host,
and every request Locust counted lands as a row of its step."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.demo_api import DemoAPI
from orchestrator.runners.docker import leftovers
from tests.conftest import unavailable
from warehouse.store import Warehouse

DOCKER_SETUP = "../shared/tools/start-dockerd, scripts/build-locust-test-image"  # named when a Docker test cannot run under CI

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("docker")]  # one Docker engine: one worker

LOCUST_IMAGE = "perfhouse-test/locust:local"

SPEC = """
name: docked
services:
  api: http://127.0.0.1:8080
journeys:
  - name: browse
    steps:
      - name: list_products
        path: /products
        checks:
          - status: 200
      - name: missing
        path: /nope
        expected_statuses: 404
  - name: check
    weight: 2
    steps:
      - name: health
        path: /health
profiles:
  short: {executor: constant_vus, vus: 3, duration: 3s}
"""


STEP_OF = {"GET /products": "list_products", "GET /nope": "missing", "GET /health": "health"}


@pytest.fixture(scope="module")
def locust_image() -> str:
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:
        unavailable(f"the Docker engine is not reachable ({exc})", DOCKER_SETUP)
    try:
        client.images.get(LOCUST_IMAGE)
    except Exception:
        unavailable(f"test image {LOCUST_IMAGE} is missing: run scripts/build-locust-test-image", DOCKER_SETUP)
    return LOCUST_IMAGE


def locust_counts(stats: Path) -> dict[str, tuple[int, int]]:
    """Locust's own end-of-test counts per request name: (requests, failures)."""
    with open(stats, newline="") as fh:
        return {row["Name"]: (int(row["Request Count"]), int(row["Failure Count"])) for row in csv.DictReader(fh)}


def test_a_generated_locustfile_runs_in_docker_and_lands_every_request_locust_counted(
        locust_image: str, tmp_path: Path) -> None:
    spec = tmp_path / "docked.yaml"
    spec.write_text(SPEC)
    url = f"chdb://{tmp_path / 'wh'}"
    with DemoAPI() as api:
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "--warehouse", url, "run", str(spec), "--tool", "locust",
             "--profile", "short", "--service", f"api={api.url}", "--runs-dir", str(tmp_path / "runs"),
             "--runner", "docker", "--locust-image", locust_image, "--json"],
            capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [outcome] = json.loads(proc.stdout)
    assert outcome["status"] == "completed"
    run_id, directory = outcome["run_id"], Path(outcome["directory"])
    assert leftovers(run_id) == []
    wh = Warehouse.open(url)
    run = wh.run(run_id)
    assert (run.tool, run.labels["runner"]) == ("locust", "docker")
    assert (directory / "locust-console.log").stat().st_size > 0  # the container's output, streamed

    ours = {s.step: (int(s.count), int(s.errors)) for s in wh.step_stats(run_id)}
    theirs = locust_counts(directory / "locust_stats.csv")  # Locust names a request by its method and path
    aggregated = theirs.pop("Aggregated")
    assert ours == {STEP_OF[name]: counts for name, counts in theirs.items()}
    assert set(ours) == {"list_products", "missing", "health"}
    assert sum(n for n, _ in ours.values()) == aggregated[0] > 10
    assert ours["missing"][1] == 0  # a 404 the step expects is not a failure, for Locust or the warehouse
