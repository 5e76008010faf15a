"""Golden files: every generated script is compared with the reviewed one beside its spec.

`pytest tests/unit/test_golden.py --update-golden` rewrites them; review the diff like code.
"""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from orchestrator.errors import GenerationError
from orchestrator.generators import GenerationOptions
from orchestrator.spec import load_spec
from orchestrator.tools import generate

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
OUTPUTS = [("k6", "5.6", "script.js"), ("jmeter", "5.6", "plan.jmx"), ("jmeter", "2.13", "plan-2.13.jmx"),
           ("locust", "5.6", "locustfile.py")]


def _cases() -> list[tuple[str, str]]:
    """(case, profile) for every profile named golden or golden-SUFFIX in tests/golden/*/spec.yaml."""
    out = []
    for directory in sorted(p for p in GOLDEN.iterdir() if (p / "spec.yaml").exists()):
        spec = load_spec(directory / "spec.yaml")
        out += [(directory.name, name) for name in spec.profiles if name.split("-")[0] == "golden"]
    return out


CASES = _cases()


def golden_path(case: str, profile: str, filename: str) -> Path:
    suffix = profile.partition("-")[2]
    stem, _, ext = filename.rpartition(".")
    return GOLDEN / case / (f"{stem}-{suffix}.{ext}" if suffix else filename)


def render(case: str, profile: str, tool: str, jmeter_version: str) -> str:
    spec = load_spec(GOLDEN / case / "spec.yaml")
    return generate(spec, tool, GenerationOptions(profile=profile, tool_version=jmeter_version)).content


@pytest.mark.parametrize(("case", "profile"), CASES)
@pytest.mark.parametrize(("tool", "version", "filename"), OUTPUTS)
def test_generated_script_matches_golden(case: str, profile: str, tool: str, version: str, filename: str,
                                         request: pytest.FixtureRequest) -> None:
    golden = golden_path(case, profile, filename)
    try:
        actual = render(case, profile, tool, version)
    except GenerationError as exc:  # a shape this tool version cannot express is refused, and that is golden too
        actual = f"GenerationError: {exc}\n"
    if request.config.getoption("--update-golden"):
        golden.write_text(actual, encoding="utf-8")
    assert golden.exists(), f"{golden} is missing: run pytest --update-golden and review it"
    assert actual == golden.read_text(encoding="utf-8"), f"{golden} differs: review, then --update-golden"


@pytest.mark.parametrize(("case", "profile"), CASES)
@pytest.mark.parametrize("version", ["5.6", "2.13"])
def test_jmx_is_well_formed_xml(case: str, profile: str, version: str) -> None:
    try:
        content = render(case, profile, "jmeter", version)
    except GenerationError:
        return
    root = ET.fromstring(content.encode())
    assert root.tag == "jmeterTestPlan"
    assert root.findall(".//HTTPSamplerProxy")


@pytest.mark.parametrize(("case", "profile"), CASES)
def test_locustfile_is_valid_python_with_one_user_class_per_journey(case: str, profile: str) -> None:
    try:
        content = render(case, profile, "locust", "5.6")
    except GenerationError:
        return
    tree = ast.parse(content)
    users = [n.name for n in tree.body if isinstance(n, ast.ClassDef) and n.name.startswith("Journey")]
    assert len(users) == len(load_spec(GOLDEN / case / "spec.yaml").journeys)


@pytest.mark.parametrize(("case", "profile"), CASES)
def test_k6_script_reads_as_written_by_hand(case: str, profile: str) -> None:
    """Functions named after journeys; every helper the script defines is called; no empty merges."""
    import re

    script = render(case, profile, "k6", "5.6")
    spec = load_spec(GOLDEN / case / "spec.yaml")
    defined = re.findall(r"^(?:export )?function (\w+)\(", script, flags=re.M)
    for name in defined:
        assert re.search(rf"\b{name}\b", script.replace(f"function {name}(", "")), f"{name} is never used"
    assert "Object.assign({}" not in script and "journey_0" not in script
    assert [f"export function {j.name}()" in script for j in spec.journeys] == [True] * len(spec.journeys)


def test_journey_functions_never_shadow_the_scripts_own_names() -> None:
    from orchestrator.generators.k6 import function_names, scenario_names
    from orchestrator.spec import parse_spec

    journeys = "".join(f"  - {{name: '{n}', steps: [{{name: s, path: /}}]}}\n" for n in
                       ("url", "2fast", "a-b", "a_b", "check", "DATA_0", "shop.v2"))
    spec = parse_spec(f"name: n\nservices: {{api: 'http://h:1'}}\njourneys:\n{journeys}"
                      "profiles: {p: {executor: iterations}}\n", "n.yaml")
    assert list(function_names(spec).values()) == ["journey_url", "journey_2fast", "a_b", "a_b_", "journey_check",
                                                   "journey_DATA_0", "shop_v2"]
    assert scenario_names(spec)["shop.v2"] == "shop_v2"  # k6 refuses dots in scenario names
