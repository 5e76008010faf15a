"""The requests a profile can give each step, estimated before a run, and the warning for steps a verdict
cannot judge."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.sampling import thin_steps, warning
from orchestrator.spec import load_spec

SPEC = """\
name: est
services:
  api: http://127.0.0.1:1
journeys:
  - name: browse
    weight: 3
    steps:
      - name: list
        path: /products
        think_time: 100ms
  - name: checkout
    weight: 1
    steps:
      - name: pay
        path: /pay
        think_time: {{uniform: [200ms, 400ms]}}
      - name: done
        path: /done
profiles:
  {profile}
"""


def at_most(tmp_path: Path, profile: str, needed: int = 200) -> dict[str, int]:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(profile=profile), encoding="utf-8")
    return {t.label: t.at_most for t in thin_steps(load_spec(path), "p", needed)}


@pytest.mark.parametrize(("profile", "expected"), [
    # 4 VUs by weight 3:1 for 10 s; an iteration of checkout waits at least 200 ms: 1 VU × 10 s / 0.2 s = 50
    ("p: {executor: constant_vus, vus: 4, duration: 10s}", {"checkout/pay": 50, "checkout/done": 50}),
    # browse: 3 VUs × 10 s / 0.1 s = 300 requests at most, enough; a ramp 0 → 4 over 10 s is half the VU-seconds
    ("p: {executor: ramping_vus, stages: [{duration: 10s, target: 4}]}", {"browse/list": 150, "checkout/pay": 25,
                                                                          "checkout/done": 25}),
    ("p: {executor: iterations, vus: 2, iterations: 30}", {"browse/list": 30, "checkout/pay": 30,
                                                           "checkout/done": 30}),
    # 8 iterations/s by weight: browse 6/s, checkout 2/s, for 20 s
    ("p: {executor: constant_arrival_rate, rate: 8, time_unit: 1s, duration: 20s, pre_allocated_vus: 4, max_vus: 8}",
     {"browse/list": 120, "checkout/pay": 40, "checkout/done": 40}),
])
def test_each_profile_kind_is_estimated(tmp_path: Path, profile: str, expected: dict[str, int]) -> None:
    assert at_most(tmp_path, profile) == expected


def test_enough_requests_warn_of_nothing(tmp_path: Path) -> None:
    assert at_most(tmp_path, "p: {executor: constant_vus, vus: 40, duration: 60s}") == {}


def test_the_warning_names_the_steps_with_what_they_get_and_need(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(profile="p: {executor: constant_vus, vus: 4, duration: 10s}"), encoding="utf-8")
    line = warning(load_spec(path), "p")
    assert line.startswith("warning: profile 'p' gives 2 step(s) fewer requests than the 200 a regression verdict")
    assert "checkout/pay (at most 50), checkout/done (at most 50)" in line and "\n" not in line
