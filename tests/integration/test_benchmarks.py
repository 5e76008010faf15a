"""Every benchmark runs to its end at its tiny size (seconds), so a change that breaks one shows here, not the day
someone measures: each prints its ratios against their targets, finds the tools it drives itself, and says which
one is missing instead of failing on it. The tiny figures are not checked: they measure nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, need

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

# Each benchmark and the tools it drives besides chdb.
BENCHMARKS = {
    "analysis": (),
    "dashboard": (),
    "gate_k6": ("k6",),
    "ingest": ("k6",),
    "overhead": ("k6",),
    "receive": ("k6",),
    "report": (),
    "soak": ("k6",),
}


def test_every_benchmark_is_listed() -> None:
    assert {p.stem for p in (ROOT / "benchmarks").glob("*.py")} - {"common"} == set(BENCHMARKS)


def bench_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PERFHOUSE_WAREHOUSE"}
    env["HOME"] = str(tmp_path)  # nothing of the user's own warehouse or settings
    return env


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_runs_at_its_tiny_size(name: str, tmp_path: Path) -> None:
    for tool in BENCHMARKS[name]:
        need(tool)
    work = tmp_path / "work"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--tiny", "--work", str(work)],
                          capture_output=True, text=True, timeout=800, cwd=tmp_path, env=bench_env(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    targets = [line for line in proc.stdout.splitlines() if "(target " in line]
    assert targets and all(line.rstrip().endswith(("met", "NOT MET")) for line in targets), proc.stdout[-3000:]


def test_a_missing_tool_is_named(tmp_path: Path) -> None:
    """Without k6 anywhere it looks, a benchmark that drives k6 says so in one line instead of a traceback."""
    bare = tmp_path / "bin"
    bare.mkdir()
    python = bare / "python"
    python.symlink_to(Path(sys.executable).resolve())  # a Python with nothing beside it
    env = {**bench_env(tmp_path), "PATH": str(bare), "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path[1:]])}
    proc = subprocess.run([str(python), str(ROOT / "benchmarks" / "receive.py"), "--tiny", "--work",
                           str(tmp_path / "work")], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode != 0
    assert "needs k6, which is neither on PATH nor beside" in proc.stderr and "Traceback" not in proc.stderr
