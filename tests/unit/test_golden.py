"""Golden files: every generated script is compared with the reviewed one beside its spec.

`pytest tests/unit/test_golden.py --update-golden` rewrites them; review the diff like code.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from orchestrator.generators import GenerationOptions, generate
from orchestrator.spec import load_spec

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "spec.yaml").exists())
OUTPUTS = [("k6", "5.6", "script.js"), ("jmeter", "5.6", "plan.jmx"), ("jmeter", "2.13", "plan-2.13.jmx")]


def render(case: str, tool: str, jmeter_version: str) -> str:
    spec = load_spec(GOLDEN / case / "spec.yaml")
    script = generate(spec, tool, GenerationOptions(profile="golden", jmeter_version=jmeter_version))
    # the spec path is relative to the repository so goldens do not depend on where it is checked out
    return script.content


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("tool", "version", "filename"), OUTPUTS)
def test_generated_script_matches_golden(
    case: str, tool: str, version: str, filename: str, request: pytest.FixtureRequest
) -> None:
    actual = render(case, tool, version)
    golden = GOLDEN / case / filename
    if request.config.getoption("--update-golden"):
        golden.write_text(actual, encoding="utf-8")
    assert golden.exists(), f"{golden} is missing: run pytest --update-golden and review it"
    assert actual == golden.read_text(encoding="utf-8"), f"{golden} differs: review, then --update-golden"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("version", ["5.6", "2.13"])
def test_jmx_is_well_formed_xml(case: str, version: str) -> None:
    root = ET.fromstring(render(case, "jmeter", version).encode())
    assert root.tag == "jmeterTestPlan"
    assert root.findall(".//HTTPSamplerProxy")
