"""What `perfhouse run` does before its tool starts: the tool starts before the warehouse's engine or SQL is
loaded, with no statistics library or docker SDK loaded at all, and a tool's version is asked once per build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.demo_api import DemoAPI
from tests.conftest import ROOT, need

pytestmark = pytest.mark.integration

# Runs `perfhouse ARGS` in this process, saying on stderr which of the heavy modules were loaded as each program
# started ("TOOL-START" and its argv's first words, then the loaded modules) and as the command ended ("END").
SPY = r"""
import json, subprocess, sys
HEAVY = ("chdb", "warehouse.store", "warehouse.ingest", "warehouse.analysis.compare", "scipy", "otava", "docker")
real = subprocess.Popen.__init__
def spy(self, args, *rest, **kwargs):
    words = [str(a) for a in args][:8] if isinstance(args, (list, tuple)) else [str(args)]
    print("TOOL-START " + json.dumps({"argv": words, "loaded": [m for m in HEAVY if m in sys.modules]}),
          file=sys.stderr, flush=True)
    real(self, args, *rest, **kwargs)
subprocess.Popen.__init__ = spy
import os
real_exit = os._exit
def end(status):
    print("END " + json.dumps([m for m in HEAVY if m in sys.modules]), file=sys.stderr, flush=True)
    real_exit(status)
os._exit = end
from orchestrator.cli import main
main(sys.argv[1:], prog_name="perfhouse")
"""


def starts(stderr: str) -> list[dict[str, list[str]]]:
    return [json.loads(line.removeprefix("TOOL-START ")) for line in stderr.splitlines()
            if line.startswith("TOOL-START ")]


def test_the_tool_starts_before_the_warehouse_loads_and_its_version_is_asked_once(tmp_path: Path) -> None:
    need("k6")
    spec = tmp_path / "shop.yaml"
    head, _, _ = (ROOT / "examples" / "shop.yaml").read_text(encoding="utf-8").partition("profiles:\n")
    spec.write_text(head + "profiles:\n  tiny: {executor: iterations, vus: 1, iterations: 2}\n", encoding="utf-8")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    env.pop("PERFHOUSE_NO_VERSION_CACHE", None)
    with DemoAPI() as api:
        seen, ended = [], []
        for n in range(2):  # the first run creates the warehouse, as a team's exists; the second finds it
            proc = subprocess.run(
                [sys.executable, "-c", SPY, "--warehouse", f"chdb://{tmp_path / 'wh'}", "run", str(spec),
                 "--profile", "tiny", "--tool", "k6", "--service", f"api={api.url}", "--progress-interval", "0",
                 "--runs-dir", str(tmp_path / f"runs-{n}"), "--json"],
                capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
            assert proc.returncode == 0, proc.stderr[-3000:]
            assert json.loads(proc.stdout)[0]["status"] == "completed"
            seen.append(starts(proc.stderr))
            ended.append(next(json.loads(line.removeprefix("END ")) for line in proc.stderr.splitlines()
                              if line.startswith("END ")))
    for started, loaded in zip(seen, ended, strict=True):
        (tool,) = [s for s in started if "run" in s["argv"] and any(w.endswith("k6") for w in s["argv"])]
        assert tool["loaded"] == [], "loaded before the tool started"
        assert {"chdb", "warehouse.store", "warehouse.ingest"} <= set(loaded)  # the results were stored
        assert not {"scipy", "otava", "docker", "warehouse.analysis.compare"} & set(loaded)
    asked = [[s for s in started if "version" in s["argv"]] for started in seen]
    assert len(asked[0]) == 1 and asked[1] == [], "k6's version is asked of the same k6 once"
