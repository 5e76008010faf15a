"""Every check kind passes in every tool on responses that satisfy it, and fails on ones that do not."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from orchestrator.demo_api import DemoAPI
from orchestrator.generators import GenerationOptions
from orchestrator.spec import load_spec
from orchestrator.tools import TOOLS, generate
from tests.conftest import ROOT, need

pytestmark = pytest.mark.integration
SPEC = ROOT / "tests" / "golden" / "checks" / "spec.yaml"


def broken_copy(tmp_path: Path) -> Path:
    """The same checks with one expectation each that the demo API does not meet."""
    text = SPEC.read_text().replace("equals: application/json", "equals: text/html")
    text = text.replace('equals: "3"', 'equals: "4"').replace("name: X-Session, exists", "name: X-Missing, exists")
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    return path


def run(tool: str, spec_path: Path, tmp_path: Path) -> dict[str, bool]:
    """Per check label (k6), per sampler (JMeter) or per failed check label (Locust): did it pass?"""
    binary = need(tool)
    version = TOOLS[tool].version(binary)
    spec = load_spec(spec_path)
    with DemoAPI() as api:
        script = generate(spec, tool, TOOLS[tool].for_version(GenerationOptions("golden", {"api": api.url}), version))
        path = tmp_path / script.filename
        path.write_text(script.content)
        invocation = TOOLS[tool].invocation(binary, path, tmp_path)
        proc = subprocess.run(invocation.argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert TOOLS[tool].completed(proc.returncode), proc.stdout[-2000:]
    if tool == "k6":
        groups = json.loads((tmp_path / "k6-summary.json").read_text())["root_group"]["checks"]
        return {name: c["fails"] == 0 for name, c in groups.items()}
    if tool == "locust":  # each request's line names the checks it failed
        lines = [json.loads(line) for line in (tmp_path / "locust.jsonl").read_text().splitlines()]
        assert len(lines) == 2 and all(line["ok"] for line in lines), lines
        return {label: False for line in lines for label in line["checks_failed"]}
    with open(tmp_path / "jmeter.jtl", newline="") as fh:
        return {row["label"]: row["success"] == "true" for row in csv.DictReader(fh)}


@pytest.mark.parametrize("tool", ["k6", "jmeter", "locust"])
def test_checks_pass_when_met(tool: str, tmp_path: Path) -> None:
    results = run(tool, SPEC, tmp_path)
    assert (results or tool == "locust") and all(results.values()), results
    if tool == "k6":
        assert len(results) == 9


@pytest.mark.parametrize("tool", ["k6", "jmeter", "locust"])
def test_checks_fail_when_not_met(tool: str, tmp_path: Path) -> None:
    results = run(tool, broken_copy(tmp_path), tmp_path)
    if tool in ("k6", "locust"):
        failed = {name for name, ok in results.items() if not ok}
        assert failed == {"header X-Missing exists", "header Content-Type equals text/html", "$.id equals 4"}
    else:
        assert results == {"login": False, "product": False}
