"""More result formats, from real tool output: each one lands the same requests as its reference format."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.demo_api import DemoAPI
from tests.conftest import need
from warehouse.ingest import all_formats
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def k6_json_and_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One real k6 run written as JSON and as CSV at once (k6 tags journey and step like perfhouse scripts)."""
    tmp = tmp_path_factory.mktemp("k6csv")
    with DemoAPI() as api:
        script = tmp / "probe.js"
        script.write_text(
            'import http from "k6/http";\n'
            'export const options = { vus: 2, iterations: 30 };\n'
            "export default function () {\n"
            f'  http.get("{api.url}/products", {{ tags: {{ journey: "browse", step: "list" }} }});\n'
            f'  http.get("{api.url}/nope", {{ tags: {{ journey: "browse", step: "missing" }} }});\n'
            "}\n",
            encoding="utf-8",
        )
        out_json, out_csv = tmp / "out.json", tmp / "out.csv"
        subprocess.run([need("k6"), "run", "--quiet", "--out", f"json={out_json}", "--out", f"csv={out_csv}",
                        str(script)], check=True, capture_output=True, timeout=120)
    return out_json, out_csv


def test_k6_csv_gives_the_same_requests_as_k6_json(any_warehouse_url: str,
                                                   k6_json_and_csv: tuple[Path, Path]) -> None:
    wh = Warehouse.open(any_warehouse_url)
    from_json, from_csv = (wh.ingest(path) for path in k6_json_and_csv)
    assert from_csv.format == "k6-csv" and from_csv.rejected == 0
    assert from_csv.rows == from_json.rows == 60 and from_csv.points == from_json.points
    a, b = wh.step_stats(from_json.run_id), wh.step_stats(from_csv.run_id)
    assert [(s.journey, s.step, s.count, s.errors) for s in a] == [
        ("browse", "list", 30, 0), ("browse", "missing", 30, 30)]
    for x, y in zip(a, b, strict=True):
        for key in ("count", "errors", "service"):
            assert getattr(x, key) == getattr(y, key)
        for key in ("avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"):
            assert getattr(y, key) == pytest.approx(getattr(x, key), abs=1e-5), key  # CSV keeps 6 decimals


def test_k6_csv_bad_lines_are_counted(any_warehouse_url: str, k6_json_and_csv: tuple[Path, Path],
                                      tmp_path: Path) -> None:
    lines = k6_json_and_csv[1].read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"".join([*lines[:3], b"http_reqs,yesterday,1\n", *lines[3:-1], lines[-1][:12]]))
    result = Warehouse.open(any_warehouse_url).ingest(bad)
    assert result.rejected == 2 and result.rows == 60
    assert [(r.line, r.reason) for r in result.samples] == [
        (4, "timestamp is not a time"), (len(lines) + 1, "the last line was cut short")]


def test_cli_format_choices_are_the_registry() -> None:
    from click.testing import CliRunner

    from orchestrator.cli import main

    out = CliRunner().invoke(main, ["ingest", "--help"]).output
    for name in all_formats():
        assert name in out
