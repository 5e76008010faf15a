"""Reports of runs whose labels and names are hostile: a NUL byte, ten megabytes, Markdown and HTML. Every report
ends (bounded by a timeout here), shows the labels escaped and cut, and the JSON report keeps them whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

HEADER = "timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,bytes,grpThreads,allThreads,Latency"
HUGE = "L" * (10 << 20)
LABELS = ["nul\x00byte", HUGE, "*x* <script>alert(1)</script> a\\\\b `code` [l](u)"]


def perfhouse(warehouse: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", warehouse, *args],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, "CI": "true"})


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    tmp = tmp_path_factory.mktemp("hostile")
    jtl = tmp / "hostile.jtl"
    rows = [HEADER]
    for i in range(60):
        label = LABELS[i % len(LABELS)]
        quoted = '"' + label.replace('"', '""') + '"'
        rows.append(f"{1_704_067_200_000 + i * 500},{10 + i},{quoted},200,OK,shop 1-1,text,true,100,1,1,5")
    jtl.write_bytes(("\n".join(rows) + "\n").encode())
    warehouse = f"chdb://{tmp / 'wh'}"
    done = perfhouse(warehouse, "ingest", str(jtl), "--run-name", "*x* <script>alert(1)</script> a\\\\b", "--json")
    assert done.returncode == 0, done.stderr
    return warehouse, json.loads(done.stdout.splitlines()[-1])["run_id"], tmp


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_a_report_of_hostile_labels_ends_with_them_escaped_and_cut(hostile_run: tuple[str, str, Path],
                                                                   fmt: str) -> None:
    warehouse, run_id, tmp = hostile_run
    out = tmp / f"report.{fmt}"
    done = perfhouse(warehouse, "report", run_id, "--format", fmt, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    text = out.read_text(encoding="utf-8")
    shown_nul = "nul\\\\x00byte" if fmt == "md" else "nul\\x00byte"  # Markdown escapes the backslash too
    assert "\x00" not in text and shown_nul in text
    assert HUGE[:1000] not in text and len(text) < 2 << 20  # the 10 MB label is cut, in tables and charts
    assert "<script>" not in text
    if fmt == "md":
        assert "\\*x\\* \\<script\\>" in text and "a\\\\\\\\b" in text  # Markdown shows the name as written
        assert "\\`code\\` \\[l\\](u)" in text


def test_the_json_report_keeps_the_labels_whole(hostile_run: tuple[str, str, Path]) -> None:
    warehouse, run_id, _ = hostile_run
    done = perfhouse(warehouse, "report", run_id, "--format", "json")
    assert done.returncode == 0, done.stderr
    steps = {s["step"] for s in json.loads(done.stdout)["runs"][0]["steps"]}
    assert steps == set(LABELS)
