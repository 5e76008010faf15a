"""Soak benchmark (a command, not a test): perfhouse's memory over a long `run --live` of k6.

    python benchmarks/soak.py [--minutes 20] [--vus 10] [--sample-s 10] [--work DIR] [--tiny]

Starts the bundled demo API on 127.0.0.1, runs `perfhouse run --live` of k6 against it for the given
time and samples the resident memory (RSS) of perfhouse every few seconds: its own process plus the
worker process that writes live chunks into an embedded warehouse (not the load tool). Prints the
samples, then the peak of the first quarter of the run against the peak of the last quarter: memory is
bounded when the last quarter's peak stays within 10 % of the first quarter's.
Exits 0 when it does, 1 when it does not (or the run failed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import add_tiny, find_tool, ratio, tiny_sizes, tool_env  # noqa: E402

TOLERANCE = 0.10

SPEC = """name: soak
services:
  api: http://127.0.0.1:8080
journeys:
  - name: browse
    steps:
      - name: list_products
        path: /products
        query:
          category: books
        checks:
          - status: 200
      - name: health
        path: /health
profiles:
  soak: {{executor: constant_vus, vus: {vus}, duration: {seconds}s}}
"""


def rss_mb(pid: int) -> float | None:
    """Resident memory of one process in MB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def python_children(pid: int) -> list[int]:
    """Descendant Python processes of `pid` (perfhouse's workers; the load tools are not Python)."""
    parents: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, _, rest = stat.rpartition(")")[0].partition("(")[2], None, stat.rpartition(")")[2].split()
        parents.setdefault(int(rest[1]), []).append(int(entry.name))
        names[int(entry.name)] = name
    found, todo = [], list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        if names.get(child, "").startswith("python"):
            found.append(child)
        todo.extend(parents.get(child, []))
    return found


def quarters(samples: list[tuple[float, float]], total_s: float) -> tuple[float, float]:
    """The peak RSS of the first and of the last quarter of the load (by time since the start)."""
    first = [mb for t, mb in samples if t <= total_s / 4]
    last = [mb for t, mb in samples if total_s * 3 / 4 <= t <= total_s]
    return max(first, default=0.0), max(last, default=0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="length of the load (default 20)")
    parser.add_argument("--vus", type=int, default=10, help="k6 virtual users, no think time (default 10)")
    parser.add_argument("--sample-s", type=float, default=10.0, help="seconds between memory samples")
    parser.add_argument("--live-interval", type=float, default=5.0, help="perfhouse --live-interval")
    parser.add_argument("--work", type=Path, default=None, help="directory for the warehouse and runs "
                        "(default: a temporary one, removed afterwards)")
    add_tiny(parser)
    args = tiny_sizes(parser.parse_args(), minutes=0.25, vus=2, sample_s=1.0, live_interval=2.0)
    k6 = find_tool("k6", "benchmarks/soak.py")

    from orchestrator.demo_api import DemoAPI

    total_s = int(args.minutes * 60)
    with tempfile.TemporaryDirectory(prefix="perfhouse-soak-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        spec = work / "soak.yaml"
        spec.write_text(SPEC.format(vus=args.vus, seconds=total_s), encoding="utf-8")
        with DemoAPI() as api:
            argv = [sys.executable, "-m", "orchestrator", "--warehouse", f"chdb://{work / 'warehouse'}", "run",
                    str(spec), "--profile", "soak", "--tool", "k6", "--service", f"api={api.url}", "--live",
                    "--live-interval", str(args.live_interval), "--progress-interval", "60",
                    "--runs-dir", str(work / "runs")]
            env = {**tool_env(k6), "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
            log = open(work / "perfhouse.log", "w")  # noqa: SIM115 - closed below
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
            started = time.monotonic()
            samples: list[tuple[float, float]] = []
            print(f"soak: {args.minutes:g} min of k6 ({args.vus} VUs) with --live against {api.url}; "
                  f"perfhouse pid {proc.pid}", flush=True)
            print(f"{'seconds':>8}  {'perfhouse MB':>12}  {'workers MB':>10}  {'total MB':>8}", flush=True)
            while proc.poll() is None:
                main_mb = rss_mb(proc.pid)
                workers_mb = sum(rss_mb(child) or 0.0 for child in python_children(proc.pid))
                if main_mb is not None:
                    at = time.monotonic() - started
                    samples.append((at, main_mb + workers_mb))
                    print(f"{at:8.0f}  {main_mb:12.1f}  {workers_mb:10.1f}  {main_mb + workers_mb:8.1f}", flush=True)
                time.sleep(args.sample_s)
            log.close()
        output = (work / "perfhouse.log").read_text(errors="replace")
        print("\n".join(line for line in output.splitlines() if "requests" in line or "run " in line)[-2000:])
        first, last = quarters(samples, total_s)
        growth = last / first if first else float("inf")
        met = proc.returncode == 0 and growth <= 1 + TOLERANCE
        print(f"\nfirst quarter peak {first:.1f} MB, last quarter peak {last:.1f} MB; perfhouse exited "
              f"{proc.returncode}")
        print(ratio("last quarter's peak / first quarter's", growth, 1 + TOLERANCE, higher_is_better=False))
        if args.tiny:  # a few seconds say nothing of memory over time: only that the run went through
            return 0 if proc.returncode == 0 else 1
        return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
