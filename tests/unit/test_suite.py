"""Suites: parsing and the waves each mode runs in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.errors import SpecError
from orchestrator.suite import is_suite, load_suite

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "shop.yaml").write_text((ROOT / "examples" / "shop.yaml").read_text())
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


RUNS = """
runs:
  - {spec: shop.yaml, profile: smoke, group: 1}
  - {spec: shop.yaml, profile: ci, tools: [k6, jmeter], group: 2}
  - {spec: shop.yaml, profile: demo, group: 1}
"""


@pytest.mark.parametrize(("mode", "waves"), [
    ("sequential", [["smoke"], ["ci"], ["demo"]]),
    ("parallel", [["smoke", "ci", "demo"]]),
    ("hybrid", [["smoke", "demo"], ["ci"]]),
])
def test_modes_make_waves(tmp_path: Path, mode: str, waves: list[list[str]]) -> None:
    suite = load_suite(write(tmp_path, f"suite: nightly\nmode: {mode}\n" + RUNS))
    assert [[e.profile for e in wave] for wave in suite.waves()] == waves
    assert suite.entries[1].tools == ("k6", "jmeter")
    assert is_suite(tmp_path / "suite.yaml") and not is_suite(tmp_path / "shop.yaml")


def test_bad_suites_are_located(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="mode: expected one of sequential, parallel, hybrid"):
        load_suite(write(tmp_path, "suite: x\nmode: random\n" + RUNS))
    with pytest.raises(SpecError, match=r"runs\[0\].spec: no spec file 'missing.yaml'"):
        load_suite(write(tmp_path, "suite: x\nruns:\n  - {spec: missing.yaml, profile: ci}\n"))


def test_the_guide_shows_the_example_suite_and_it_loads_as_it_says() -> None:
    example = ROOT / "examples" / "suite.yaml"
    readme = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    assert example.read_text(encoding="utf-8") in blocks  # the guide shows the file as it is
    suite = load_suite(example)
    assert suite.name == "nightly" and suite.mode == "hybrid"
    assert [[(e.profile, e.tools) for e in wave] for wave in suite.waves()] == [
        [("smoke", ("k6",))], [("ci", ("k6", "jmeter")), ("demo", ("k6",))]]
    assert suite.entries[2].services == (("api", "http://127.0.0.1:8080"),)
    assert {e.spec for e in suite.entries} == {(ROOT / "examples" / "shop.yaml").resolve()}
