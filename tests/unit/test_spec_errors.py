"""A spec with several mistakes tells them all in one round, each located, without the mistakes that only
follow from another (an SLO on a journey that already failed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.errors import SpecError, SpecErrors
from orchestrator.spec import parse_spec

TYPOS = """\
name: shop
services:
  api: http://127.0.0.1:8080
journeys:
  - name: browse
    steps:
      - name: list
        path: /products
        methd: GET
      - name: view
        path: /products/${id}
        extract: {x: {jsonpath: $.a}}
      - name: again
        path: /x/${x}
        timout: 3s
  - name: checkout
    steps:
      - name: pay
        path: /pay
        service: apii
profiles:
  ci:
    executor: constant_vus
    vus: 4
    duraton: 10s
slos:
  - metric: p95
    threshold: 500ms
    journey: browse
  - metric: p96x
    threshold: 1
"""


def test_every_items_mistake_is_told_at_once_and_located() -> None:
    with pytest.raises(SpecErrors) as caught:
        parse_spec(TYPOS, "shop.yaml")
    found = [(e.line, e.field) for e in caught.value.errors]
    assert found == [
        (9, "journeys[0].steps[0].methd"),
        (11, "journeys[0].steps[1].path"),
        (15, "journeys[0].steps[2].timout"),  # ${x} comes from the failed step's extract: no second mistake
        (20, "journeys[1].steps[0].service"),
        (25, "profiles.ci.duraton"),
        (30, "slos[1].metric"),  # slos[0] names the journey that failed: not told again
    ]
    assert str(caught.value).splitlines()[0].startswith("shop.yaml:9:9: journeys[0].steps[0].methd: unknown field")


def test_one_mistake_is_the_plain_error_it_always_was() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(TYPOS.replace("methd", "method").replace("${id}", "1").replace("timout", "timeout")
                   .replace("apii", "api").replace("duraton", "duration"), "shop.yaml")
    assert type(caught.value) is SpecError and caught.value.field == "slos[1].metric"


def test_validate_prints_a_line_per_mistake_and_exits_4(tmp_path: Path) -> None:
    spec = tmp_path / "shop.yaml"
    spec.write_text(TYPOS, encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(spec)])
    lines = result.output.splitlines()
    assert result.exit_code == 4 and len(lines) == 6
    assert all(line.startswith(f"perfhouse: error: {spec}:") for line in lines)
