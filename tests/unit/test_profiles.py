"""Load profiles: presets written out as stages, and JMeter's stacked thread groups for VU curves."""

from __future__ import annotations

import pytest

from orchestrator.errors import SpecError
from orchestrator.generators.jmeter import vu_layers
from orchestrator.spec import Stage, parse_spec

BASE = """\
name: p
services: {api: "http://127.0.0.1:8080"}
journeys: [{name: j, steps: [{name: s, path: /}]}]
profiles:
"""


def profile(text: str):  # type: ignore[no-untyped-def]
    return parse_spec(BASE + "  x: " + text + "\n", "p.yaml").profiles["x"]


def stages(*pairs: tuple[float, int]) -> tuple[Stage, ...]:
    return tuple(Stage(d, t) for d, t in pairs)


def vu_seconds(groups: list[dict[str, int]], until: float) -> float:
    """Thread-seconds a set of thread groups runs (each thread from its ramp start to the group end)."""
    total = 0.0
    for g in groups:
        for k in range(g["threads"]):
            start = g["delay_s"] + g["ramp_s"] * k / g["threads"]
            total += max(0.0, min(until, g["delay_s"] + g["duration_s"]) - start)
    return total


def test_capacity_preset_is_stairs_at_10_25_50_100_percent() -> None:
    p = profile("{preset: capacity, vus: 100, step: 2m}")
    assert p.executor == "ramping_vus" and p.preset == "capacity"
    assert [s.target for s in p.stages] == [10, 10, 25, 25, 50, 50, 100, 100]
    assert [s.duration_s for s in p.stages][1::2] == [120.0] * 4


def test_spike_preset_returns_to_base() -> None:
    p = profile("{preset: spike, vus: 50}")
    assert [s.target for s in p.stages] == [5, 5, 50, 50, 5, 5]


def test_presets_and_executors_refuse_foreign_fields() -> None:
    with pytest.raises(SpecError, match="preset steady takes vus, duration, ramp; not 'rate'"):
        profile("{preset: steady, vus: 3, rate: 5}")
    with pytest.raises(SpecError, match="constant_vus takes vus, duration; not 'rate'"):
        profile("{executor: constant_vus, vus: 3, duration: 1s, rate: 5}")
    with pytest.raises(SpecError, match="either executor"):
        profile("{vus: 3}")


def test_arrival_rate_profile() -> None:
    p = profile("{executor: constant_arrival_rate, rate: 20, time_unit: 1s, duration: 1m, pre_allocated_vus: 5}")
    assert (p.rate, p.time_unit_s, p.duration_s, p.pre_allocated_vus, p.max_allocated_vus) == (20, 1.0, 60.0, 5, 5)
    assert p.is_arrival_rate and p.max_vus == 5


def test_rising_stages_stack_one_thread_group_each() -> None:
    groups, approximated = vu_layers(stages((10, 4), (20, 4), (5, 10), (30, 10)))
    assert not approximated
    assert groups == [
        {"threads": 4, "delay_s": 0, "ramp_s": 10, "duration_s": 65},
        {"threads": 6, "delay_s": 30, "ramp_s": 5, "duration_s": 35},
    ]


def test_falling_stage_stops_newest_threads_at_its_midpoint_keeping_vu_seconds() -> None:
    curve = stages((0, 8), (20, 8), (10, 2), (20, 2))
    groups, approximated = vu_layers(curve)
    assert approximated
    assert groups == [
        {"threads": 6, "delay_s": 0, "ramp_s": 0, "duration_s": 25},
        {"threads": 2, "delay_s": 0, "ramp_s": 0, "duration_s": 50},
    ]
    # the same VU-seconds as k6's linear ramp-down: 8*20 + (8+2)/2*10 + 2*20
    assert vu_seconds(groups, 50) == pytest.approx(8 * 20 + 5 * 10 + 2 * 20)


def test_stage_of_the_spec_model() -> None:
    assert Stage(1.0, 2) == Stage(duration_s=1.0, target=2)
