"""Start-up benchmark (a command, not a test): `perfhouse run` against the bare tool on the same script, and
`perfhouse runs` on the small warehouse those runs make.

    python benchmarks/overhead.py [--tool k6] [--pairs 5] [--duration 3s] [--work DIR] [--compiled] [--tiny]

Starts the bundled demo API, then runs pairs of: `perfhouse run` of a small profile of examples/shop.yaml
(into one embedded warehouse, created by a first run that is not counted; progress lines off), and the tool alone on the very script and
command line perfhouse generated for that run (same outputs, same summary file), then `perfhouse runs` (the
listing of that warehouse, whole process). Prints the median wall-clock time of each and their difference,
perfhouse's own share of a run, and the median time of `runs`, each against its target.

With PYTHONDONTWRITEBYTECODE set, every perfhouse process compiles its modules from source (a source checkout);
`--compiled` lets perfhouse keep their bytecode in the work directory (PYTHONPYCACHEPREFIX), as an installed
wheel has it compiled at install time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import add_tiny, find_tool, ratio, tiny_sizes, tool_env  # noqa: E402

TARGET_S = 0.5  # perfhouse's own share of a small run, whole processes
RUNS_TARGET_S = 0.4  # `perfhouse runs` on a small warehouse, whole process


def bench_spec(work: Path, duration: str) -> Path:
    """examples/shop.yaml with a small constant-VU profile `bench` of `duration`."""
    doc = yaml.safe_load((ROOT / "examples" / "shop.yaml").read_text(encoding="utf-8"))
    doc["profiles"]["bench"] = {"executor": "constant_vus", "vus": 2, "duration": duration}
    path = work / "bench.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 99, 2):  # 2: an SLO failed, which is still a whole run
        raise SystemExit(f"{argv[0]} {' '.join(argv[1:3])} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tool", default="k6")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--duration", default="3s")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--compiled", action="store_true",
                        help="perfhouse's modules compiled once (bytecode kept in the work directory)")
    add_tiny(parser)
    args = tiny_sizes(parser.parse_args(), pairs=1, duration="1s")

    from orchestrator.demo_api import DemoAPI
    from orchestrator.tools import TOOLS

    # the console script beside this interpreter (a version manager's shim on PATH would add its own start-up)
    script = Path(sys.executable).parent / "perfhouse"
    perfhouse = str(script) if script.is_file() else ""
    work = args.work or Path(tempfile.mkdtemp(prefix="perfhouse-overhead-"))
    work.mkdir(parents=True, exist_ok=True)
    spec = bench_spec(work, args.duration)
    env = {**tool_env(find_tool(args.tool, "benchmarks/overhead.py")), "CI": "true"}
    env.pop("PERFHOUSE_WAREHOUSE", None)
    ours_env = dict(env)
    if args.compiled:  # the first (uncounted) run compiles them
        ours_env.pop("PYTHONDONTWRITEBYTECODE", None)
        ours_env["PYTHONPYCACHEPREFIX"] = str(work / "bytecode")
    elif env.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set: each perfhouse process compiles its modules from source "
              "(--compiled: as installed)", flush=True)
    ours: list[float] = []
    bare: list[float] = []
    listing: list[float] = []
    with DemoAPI() as api:

        def perfhouse_command() -> list[str]:
            return [perfhouse or sys.executable, *([] if perfhouse else ["-m", "orchestrator"])]

        def perfhouse_run(runs: Path) -> list[str]:
            return [*perfhouse_command(), "--warehouse", f"chdb://{work / 'warehouse'}", "run", str(spec),
                    "--profile", "bench", "--tool", args.tool, "--service", f"api={api.url}",
                    "--progress-interval", "0", "--runs-dir", str(runs), "--json"]

        timed(perfhouse_run(work / "runs-warmup"), work, ours_env)  # creates the warehouse, as a team's exists
        for n in range(args.pairs):
            runs = work / f"runs-{n}"
            ours.append(timed(perfhouse_run(runs), work, ours_env))
            run_dir = next(runs.iterdir())
            effective = json.loads((run_dir / "effective.json").read_text(encoding="utf-8"))
            bare_dir = work / f"bare-{n}"
            shutil.copytree(run_dir, bare_dir)
            tool = TOOLS[args.tool]
            script = next(p for p in bare_dir.iterdir() if p.name.endswith(tool.script_suffix))
            argv_bare = tool.invocation(effective["program"], script, bare_dir).argv
            for output in bare_dir.glob(f"{args.tool}*"):  # the tool writes them afresh
                if output.suffix in (".json", ".jtl", ".jsonl", ".csv") or output.name.endswith("-console.log"):
                    output.unlink()
            bare.append(timed(argv_bare, bare_dir, env))
            listing.append(timed([*perfhouse_command(), "--warehouse", f"chdb://{work / 'warehouse'}", "runs"],
                                 work, ours_env))
            print(f"pair {n + 1}: perfhouse {ours[-1]:.2f} s, {args.tool} alone {bare[-1]:.2f} s; "
                  f"perfhouse runs {listing[-1]:.2f} s", flush=True)
    a, b = statistics.median(ours), statistics.median(bare)
    print(f"median of {args.pairs} pairs: perfhouse run {a:.2f} s, {args.tool} alone {b:.2f} s, "
          f"perfhouse's own share {a - b:.2f} s ({a / b:.2f}x)")
    print(ratio("perfhouse's own share of a run", a - b, TARGET_S, higher_is_better=False, unit=" s"))
    listed = statistics.median(listing)
    print(f"median of {args.pairs} `perfhouse runs` on a warehouse of {args.pairs + 1} runs: {listed:.2f} s")
    print(ratio("perfhouse runs, whole process", listed, RUNS_TARGET_S, higher_is_better=False, unit=" s"))


if __name__ == "__main__":
    main()
