"""A command loads the embedded engine in a thread while it imports the rest (`load_engine_ahead`), and chdb's
import moves the whole process into chdb's package directory until it ends: nothing the command does with a
relative path may fall into that window. The test holds the window open for a second, so a command that made its
default warehouse, or read its relative input, before the engine had loaded fails every time, not one run in a
hundred."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

# `perfhouse ARGS`, with chdb's import held for a second in chdb's own directory on the engine's thread, and the
# command going on only once the engine's thread is in there.
HELD = r"""
import os, sys, threading, time
start = os.getcwd()
inside = threading.Event()
real_chdir = os.chdir
def held(path):
    real_chdir(path)
    if threading.current_thread().name == "perfhouse-engine" and os.path.abspath(path) != start:
        inside.set()
        time.sleep(1.0)
os.chdir = held
real_start = threading.Thread.start
def start_then_wait(self):
    real_start(self)
    if self.name == "perfhouse-engine":
        inside.wait(30)
threading.Thread.start = start_then_wait
from orchestrator.cli import main
main(sys.argv[1:], prog_name="perfhouse")
"""

JTL = ("timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,bytes,grpThreads,"
       "allThreads,Latency\n1704067200000,10,home,200,OK,shop 1-1,text,true,1,1,1,1\n")


def chdb_directory() -> Path:
    spec = importlib.util.find_spec("chdb")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent


def test_the_default_warehouse_and_a_relative_input_stay_in_the_working_directory_while_the_engine_loads(
        tmp_path: Path) -> None:
    (tmp_path / "x.jtl").write_text(JTL)
    stray = chdb_directory() / ".perfhouse"
    env = {k: v for k, v in os.environ.items() if k != "PERFHOUSE_WAREHOUSE"}  # the default warehouse
    assert not stray.exists(), f"a warehouse was left in chdb's package directory: {stray}"
    try:
        proc = subprocess.run([sys.executable, "-c", HELD, "ingest", "x.jtl", "--json"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, env=env)
        assert not stray.exists(), "the default warehouse was made in chdb's package directory"
    finally:
        shutil.rmtree(stray, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["status"] == "ingested"
    assert (tmp_path / ".perfhouse" / "warehouse").is_dir()
    listed = subprocess.run([sys.executable, "-m", "orchestrator", "runs", "--json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, env=env)
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 1
