"""Each profile type produces the load it promises, in every tool, measured from the warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.demo_api import DemoAPI
from orchestrator.errors import GenerationError
from orchestrator.generators import GenerationOptions
from orchestrator.run import run_tool
from orchestrator.spec import load_spec
from orchestrator.tools import generate
from tests.conftest import need
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

SPEC = """\
name: shapes
services: {{api: "http://127.0.0.1:8080"}}
journeys:
  - name: j
    steps:
      - {{name: ping, path: /health, think_time: 100ms}}
profiles:
  {profile}
"""


def per_second(wh: Warehouse, run_id: str) -> list[float]:
    """Requests started in each whole second of the run (of every step), first and last (partial) seconds left
    out."""
    seconds: dict[str, float] = {}
    for bucket in wh.latency_over_time(run_id, bucket_s=1):  # a bucket per second and step
        seconds[bucket.t] = seconds.get(bucket.t, 0.0) + float(bucket.rps)
    return [seconds[t] for t in sorted(seconds)][1:-1]


def measure(tool: str, profile_yaml: str, tmp_path: Path) -> list[float]:
    need(tool)
    path = tmp_path / "shapes.yaml"
    path.write_text(SPEC.format(profile=profile_yaml))
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    with DemoAPI(delay_ms=(0.5, 1.0)) as api:
        outcome = run_tool(load_spec(path), tool, wh, "shape", {"api": api.url}, runs_dir=tmp_path / "runs")
    assert outcome.status == "completed", outcome.notes
    return per_second(wh, outcome.run_id)


@pytest.mark.parametrize("tool", ["k6", "jmeter", "locust"])
def test_ramping_vus_stairs_double_the_rate(tool: str, tmp_path: Path) -> None:
    # 1 VU for 5 s, then 2 VUs for 5 s: with a fixed think time the rate doubles on the second stair
    rates = measure(tool, "shape: {executor: ramping_vus, stages: [{duration: 0s, target: 1}, "
                          "{duration: 5s, target: 1}, {duration: 0s, target: 2}, {duration: 5s, target: 2}]}",
                    tmp_path)
    first, second = rates[:3], rates[-3:]
    ratio = (sum(second) / len(second)) / (sum(first) / len(first))
    assert ratio == pytest.approx(2, rel=0.25), rates


@pytest.mark.parametrize("tool", ["k6", "jmeter", "locust"])
def test_iterations_profile_sends_exactly_vus_times_iterations(tool: str, tmp_path: Path) -> None:
    need(tool)
    path = tmp_path / "shapes.yaml"
    path.write_text(SPEC.format(profile="shape: {executor: iterations, vus: 3, iterations: 4}"))
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    with DemoAPI(delay_ms=(0.5, 1.0)) as api:
        outcome = run_tool(load_spec(path), tool, wh, "shape", {"api": api.url}, runs_dir=tmp_path / "runs")
    assert wh.totals(outcome.run_id)["count"] == 12


MIX = """\
name: mix
services: {{api: "http://127.0.0.1:8080"}}
journeys:
  - name: heavy
    weight: 3
    steps: [{{name: a, path: /health, think_time: 100ms}}]
  - name: light
    weight: 1
    steps: [{{name: b, path: /health, think_time: 100ms}}]
profiles:
  shape: {profile}
"""


def run_mix(tool: str, profile: str, tmp_path: Path) -> tuple[Warehouse, str]:
    need(tool)
    path = tmp_path / "mix.yaml"
    path.write_text(MIX.format(profile=profile))
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    with DemoAPI(delay_ms=(0.5, 1.0)) as api:
        outcome = run_tool(load_spec(path), tool, wh, "shape", {"api": api.url}, runs_dir=tmp_path / "runs")
    assert outcome.status == "completed", outcome.notes
    return wh, outcome.run_id


def journey_counts(wh: Warehouse, run_id: str) -> dict[str, int]:
    return {s.journey: int(s.count) for s in wh.step_stats(run_id)}


@pytest.mark.parametrize("tool", ["k6", "jmeter", "locust"])
def test_constant_arrival_rate_is_held_and_shared_by_weight(tool: str, tmp_path: Path) -> None:
    # one run proves both: the profile's rate of 12 per second is held in every whole second (the journeys' own
    # rates add up to it), and weights 3:1 over journeys of equal cost give three `heavy` for one `light`
    wh, run_id = run_mix(tool, "{executor: constant_arrival_rate, rate: 12, duration: 8s, pre_allocated_vus: 4, "
                               "max_vus: 8}", tmp_path)
    rates = per_second(wh, run_id)
    assert sum(rates) / len(rates) == pytest.approx(12, rel=0.2), rates
    counts = journey_counts(wh, run_id)
    assert counts["heavy"] / counts["light"] == pytest.approx(3, rel=0.25), counts


@pytest.mark.parametrize("tool", ["k6", "jmeter", "locust"])
def test_weights_give_the_journey_mix(tool: str, tmp_path: Path) -> None:
    # weights 3:1, journeys of equal cost: three requests of `heavy` for one of `light`, within 25 %
    counts = journey_counts(*run_mix(tool, "{executor: constant_vus, vus: 4, duration: 6s}", tmp_path))
    assert counts["heavy"] / counts["light"] == pytest.approx(3, rel=0.25), counts


def test_locust_refuses_a_ramping_arrival_rate_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "shapes.yaml"
    path.write_text(SPEC.format(profile="shape: {executor: ramping_arrival_rate, start_rate: 1, "
                                        "stages: [{duration: 5s, target: 8}], pre_allocated_vus: 2, max_vus: 4}"))
    with pytest.raises(GenerationError, match="Locust has no ramping arrival rate"):
        generate(load_spec(path), "locust", GenerationOptions("shape"))


PER_JOURNEY = """\
name: per_journey
services: {api: "http://127.0.0.1:8080"}
journeys:
  - name: browse
    steps: [{name: a, path: /health, think_time: 500ms}]
  - name: buy
    steps: [{name: b, path: /health}]
profiles:
  shape:
    journeys:
      browse: {executor: constant_vus, vus: 2, duration: 20s}
      buy: {executor: constant_arrival_rate, rate: 4, duration: 20s, pre_allocated_vus: 2, max_vus: 4}
"""


@pytest.mark.parametrize("tool", ["k6", "jmeter"])
def test_each_journey_gets_the_load_of_its_own_profile(tool: str, tmp_path: Path) -> None:
    # browse: 2 VUs looping a ~0.5 s iteration for 20 s is 80 iterations; buy: 4 per second for 20 s is 80
    # (20 s, so that JMeter's first second, spent starting up inside the thread groups' time, stays within 10 %)
    need(tool)
    path = tmp_path / "per_journey.yaml"
    path.write_text(PER_JOURNEY)
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    with DemoAPI(delay_ms=(0.5, 1.0)) as api:
        outcome = run_tool(load_spec(path), tool, wh, "shape", {"api": api.url}, runs_dir=tmp_path / "runs")
    assert outcome.status == "completed", outcome.notes
    counts = {s.journey: int(s.count) for s in wh.step_stats(outcome.run_id)}
    assert counts["browse"] == pytest.approx(80, rel=0.10), counts
    assert counts["buy"] == pytest.approx(80, rel=0.10), counts
