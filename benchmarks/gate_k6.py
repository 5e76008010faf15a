"""The gate on real repeated k6 runs of an unchanged local server (a command, not a test).

    python benchmarks/gate_k6.py [--runs 21] [--work DIR] [--tiny]

Runs the demo API on 127.0.0.1 and `perfhouse run SPEC --gate` RUNS times in a row (each run gated at its end
against the runs before it, as CI does), then prints how many runs the gate judged WORSE (target: none: the
server did not change), what each was judged against (the wide floor until 5 runs form a history, then the
history) and the p95 run-to-run spread the history measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPEC = """\
name: gate-k6-repeat
services:
  api: http://127.0.0.1:1
journeys:
  - name: browse
    weight: 1
    steps:
      - name: list
        path: /products
      - name: view
        path: /products/1
profiles:
  ci:
    executor: constant_vus
    vus: 8
    duration: 4s
"""


def main() -> None:
    from benchmarks.common import add_tiny, find_tool, ratio, tiny_sizes
    from orchestrator.demo_api import DemoAPI

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--work", type=Path, default=None)
    add_tiny(parser)
    args = tiny_sizes(parser.parse_args(), runs=2)
    k6 = find_tool("k6", "gate_k6")
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.work) as work, DemoAPI() as api:
        spec = Path(work) / "spec.yaml"
        spec.write_text(SPEC, encoding="utf-8")
        warehouse = f"chdb://{Path(work) / 'warehouse'}"
        env = {**os.environ, "PYTHONPATH": str(ROOT),
               "PATH": os.pathsep.join([str(Path(k6).parent), os.environ.get("PATH", "")])}
        worse, exits, modes, sigmas = 0, [], [], []
        for i in range(args.runs):
            proc = subprocess.run(
                [sys.executable, "-m", "orchestrator", "--warehouse", warehouse, "run", str(spec), "--profile", "ci",
                 "--service", f"api={api.url}", "--runs-dir", str(Path(work) / "runs"), "--progress-interval", "0",
                 "--gate", "--json"], capture_output=True, text=True, env=env, timeout=300)
            exits.append(proc.returncode)
            gated = subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", warehouse, "gate", "latest",
                                    "--json"], capture_output=True, text=True, env=env, timeout=120)
            (result,) = json.loads(gated.stdout)
            rows = (result["comparison"] or {}).get("steps", []) + (
                [result["comparison"]["overall"]] if result["comparison"] else [])
            worse += bool(result["regressions"])
            modes.append(",".join(sorted({r["judged_against"] for r in rows if r["judged_against"]})) or "none")
            sigmas.append(max((r["noise"]["sigma"] or 0 for r in rows), default=0))
            shifts = " ".join(f"{r['p95_shift']:+.1%}" for r in rows if r["p95_shift"] is not None)
            print(f"run {i + 1:2d}: exit {proc.returncode}, gate {result['outcome']}, against {modes[-1]}: {shifts}")
        print(f"k6, {args.runs} repeated runs of an unchanged local server: {worse} judged WORSE "
              f"; exits {sorted(set(exits))}; largest run-to-run p95 spread measured "
              f"{max(sigmas):.1%}")
        print(ratio("unchanged runs judged WORSE", worse, 0, higher_is_better=False))


if __name__ == "__main__":
    main()
