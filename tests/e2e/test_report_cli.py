"""`perfhouse report` from the command line: every format to a file (Markdown with its charts beside it), the
percentile and APDEX options, and bad options refused in one line."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.e2e.test_cli import perfhouse
from tests.integration.test_report_golden import RUN, golden_document

pytestmark = pytest.mark.integration


@pytest.fixture
def golden_url(tmp_path: Path) -> str:
    url = f"chdb://{tmp_path / 'warehouse'}"
    golden_document(url)
    return url


def test_every_format_to_a_file(golden_url: str, tmp_path: Path) -> None:
    md = tmp_path / "out" / "release.md"
    md.parent.mkdir()
    proc = perfhouse("--warehouse", golden_url, "report", RUN.run_id[:12], "-o", str(md),
                     "--percentiles", "50,75,99.9", "--apdex-t", "20")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"report written to {md}\n"
    text = md.read_text(encoding="utf-8")
    assert "| p50 ms | p75 ms | p99.9 ms |" in text and "(T = 20 ms)" in text
    pictures = sorted(p.name for p in (md.parent / "release_files").iterdir())
    assert pictures == ["bottlenecks.png", "capacity.png", "infrastructure.png", "latency.png", "throughput.png"]
    assert all(f"](release_files/{name})" in text for name in pictures)

    for fmt, name in (("html", "report.html"), ("json", "report.json"), ("junit", "report.xml")):
        out = tmp_path / name
        proc = perfhouse("--warehouse", golden_url, "report", "latest", "--format", fmt, "-o", str(out))
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "report.html").read_text().count("<svg") >= 5
    assert json.loads((tmp_path / "report.json").read_text())["runs"][0]["run"]["run_id"] == RUN.run_id
    assert ET.parse(tmp_path / "report.xml").getroot().get("failures") == "3"


def test_bad_options_are_refused_in_one_line(golden_url: str) -> None:
    proc = perfhouse("--warehouse", golden_url, "report", "latest", "--percentiles", "50,100")
    assert proc.returncode == 2 and "--percentiles" in proc.stderr and "between 0 and 100" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = perfhouse("--warehouse", golden_url, "report", "latest", "--format", "pdf")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = perfhouse("--warehouse", golden_url, "report", "nope")
    assert proc.returncode == 2 and proc.stderr.startswith("perfhouse: error: no run 'nope'")
