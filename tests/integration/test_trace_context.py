"""Trace context: every request of both tools carries its own W3C traceparent, and the warehouse keeps its trace id."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from orchestrator.demo_api import DemoAPI
from orchestrator.generators import GenerationOptions
from orchestrator.run import run_tool
from orchestrator.spec import load_spec
from orchestrator.tools import TOOLS, generate
from tests.conftest import need
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

VUS, ITERATIONS = 2, 3
SPEC = f"""
name: traced
services:
  api: http://127.0.0.1:9
trace:
  url: https://tempo.example/trace/{{trace_id}}
journeys:
  - name: browse
    steps:
      - name: list
        path: /products
      - name: health
        path: /health
profiles:
  fixed: {{executor: iterations, vus: {VUS}, iterations: {ITERATIONS}}}
"""
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")
REQUESTS = VUS * ITERATIONS * 2


def trace_ids(api: DemoAPI) -> list[str]:
    """The trace id of every request the server saw, each checked against the W3C format."""
    ids = []
    for r in api.requests:
        m = TRACEPARENT.match(r.headers.get("traceparent", ""))
        assert m, f"{r.path}: traceparent {r.headers.get('traceparent')!r}"
        assert m.group(1) != "0" * 32 and m.group(2) != "0" * 16
        ids.append(m.group(1))
    return ids


def stored_ids(wh: Warehouse, run_id: str) -> list[str]:
    rows = wh.backend.query("SELECT trace_id FROM requests WHERE run_id = {r:String}", {"r": run_id})
    return [str(r["trace_id"]) for r in rows]


@pytest.mark.parametrize("tool", ["k6", "jmeter"])
def test_every_request_carries_its_own_trace_and_the_warehouse_keeps_it(tool: str, tmp_path: Path) -> None:
    need(tool)
    (tmp_path / "traced.yaml").write_text(SPEC, encoding="utf-8")
    spec = load_spec(tmp_path / "traced.yaml")
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    with DemoAPI(record=True, delay_ms=(0.0, 0.5)) as api:
        outcome = run_tool(spec, tool, wh, "fixed", {"api": api.url}, runs_dir=tmp_path / "runs")
        sent = trace_ids(api)
    assert outcome.status == "completed", outcome.notes
    assert len(sent) == REQUESTS and len(set(sent)) == REQUESTS  # a fresh trace per request
    assert sorted(stored_ids(wh, outcome.run_id)) == sorted(sent)


@pytest.mark.parametrize(("tool", "output", "options"), [
    ("k6", "results.csv", ["--out", "csv=results.csv"]),
    ("jmeter", "results.jtl", ["-Jjmeter.save.saveservice.output_format=xml"]),
])
def test_the_other_result_formats_carry_the_trace_id(tool: str, output: str, options: list[str],
                                                     tmp_path: Path) -> None:
    """k6's CSV (metadata column) and JMeter's XML JTL (a sample attribute) hold the ids as well."""
    binary = need(tool)
    (tmp_path / "traced.yaml").write_text(SPEC, encoding="utf-8")
    spec = load_spec(tmp_path / "traced.yaml")
    with DemoAPI(record=True, delay_ms=(0.0, 0.5)) as api:
        script = generate(spec, tool, GenerationOptions(profile="fixed", services={"api": api.url},
                                                        tool_version=TOOLS[tool].version(binary)))
        (tmp_path / script.filename).write_text(script.content, encoding="utf-8")
        argv = TOOLS[tool].invocation(binary, tmp_path / script.filename, tmp_path).argv
        if tool == "jmeter":
            argv = [*argv[:argv.index("-l") + 1], output, *argv[argv.index("-l") + 2:], *options]
        else:
            argv = [binary, "run", "--quiet", *options, script.filename]
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        sent = trace_ids(api)
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    result = wh.ingest(tmp_path / output)
    assert len(set(sent)) == REQUESTS and result.rejected == 0
    assert sorted(stored_ids(wh, result.run_id)) == sorted(sent)
