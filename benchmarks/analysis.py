"""Analysis benchmark (a command, not a test): change-point detection and a full compare.

    python benchmarks/analysis.py [--series 1000] [--runs 100] [--requests 1000000] [--histories 30] [--work DIR]
        [--tiny]

Prints from ONE run:
- the gate's seeded rates (tests/support/seeded.py: a 10-run history with 2 % run-to-run noise per step, each
  run its own draw, then candidate runs judged as `gate` judges them): any WORSE row on unchanged runs
  (target at most 1 %; 2 % for 30 steps) and how often +10 % or +15 % on one step is caught, for a 3-step
  journey (5,000 requests a step) and a 30-step one (2,000 a step, at 2 % and 1 % noise); and the same for
  candidates that are sets of 3 and 5 repeats judged by their median (`run --repeat N`);
- change-point detection over SERIES seeded series of RUNS runs (5 % noise, half with a +10 % step), against
  otava's E-divisive pass alone on the same series (the reference: what placement and completion add) and
  the vectorised best split of all series at once; target under 10 s;
- a full compare (figures, Mann-Whitney and Kolmogorov-Smirnov per step and overall, decisions) of two runs
  of REQUESTS requests each in an embedded warehouse, against one query reading the same rows' p95 per run
  and step (the reference: the least any compare must do); target under 2 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import add_tiny, ratio, tiny_sizes  # noqa: E402


def changepoints(series: int, runs: int) -> None:
    from otava.analysis import compute_change_points

    from warehouse.analysis.changepoints import WINDOW, best_splits, detect

    rng = np.random.default_rng(1)
    data = 100 * (1 + 0.05 * rng.standard_normal((series, runs)))
    steps = rng.integers(10, runs - 10, series)
    for i in range(0, series, 2):
        data[i, steps[i]:] *= 1.10
    t = time.perf_counter()
    found = [detect(row) for row in data]
    ours = time.perf_counter() - t
    logs = np.log(data)
    t = time.perf_counter()
    for row in logs:
        compute_change_points(row.tolist(), window_len=WINDOW, max_pvalue=3e-5)
    otava = time.perf_counter() - t
    t = time.perf_counter()
    best_splits(logs)
    vectorised = time.perf_counter() - t
    hits = sum(1 for i in range(0, series, 2) if any(abs(cp.index - steps[i]) <= 2 for cp in found[i]))
    false = sum(len(found[i]) for i in range(1, series, 2))
    print(f"change points, {series} series x {runs} runs: {ours:.2f} s ({ours / series * 1000:.1f} ms a series; "
          f"target 10 s: {ours / 10:.2f} of it)")
    print(ratio("change points / 10 s", ours / 10, 1.0, higher_is_better=False))
    print(f"  reference, otava's pass alone: {otava:.2f} s -> detection costs {ours / otava:.2f}x it; "
          f"best split of every series at once: {vectorised * 1000:.1f} ms")
    print(f"  steps placed within 2 runs: {hits}/{series // 2}; change points in series without one: {false}")


def gate_rates(histories: int) -> None:
    from tests.support.seeded import rate, trials

    def show(label: str, found: tuple[int, int]) -> str:
        return f"{label} {found[0]}/{found[1]} ({found[0] / found[1]:.1%})"

    t = time.perf_counter()
    three = trials(1, histories * 2, 5, {"unchanged": {}, "+10 %": {0: 1.10}, "+15 %": {0: 1.15}})
    print(f"gate, 3 steps, 10-run history, 2 % noise, {histories * 10} runs per case: "
          + "; ".join(show(name, rate(found)) for name, found in three.items()) + " with a WORSE row")
    for noise in (0.02, 0.01):
        many = trials(2, max(histories * 4 // 3, 1), 5, {"unchanged": {}, "+10 %": {7: 1.10}, "+15 %": {7: 1.15}},
                      steps=30, noise=noise, requests=2000)
        print(f"gate, 30 steps, 10-run history, {noise:.0%} noise: "
              + "; ".join(show(name, rate(found)) for name, found in many.items()) + " with a WORSE row")
    print(f"  ({time.perf_counter() - t:.1f} s; targets: unchanged <= 1 % (3 steps), <= 2 % (30 steps); "
          "+10 % caught >= 95 % (3 steps), >= 90 % (30 steps))")
    t = time.perf_counter()
    for repeats in (3, 5):
        sets = trials(3, histories * 2, 5, {"unchanged": {}, "+10 %": {0: 1.10}, "+15 %": {0: 1.15}},
                      repeats=repeats)
        print(f"gate --repeat {repeats} (the median of {repeats} runs), 3 steps, 10-run history, 2 % noise, "
              f"{histories * 10} sets per case: " + "; ".join(show(name, rate(found)) for name, found in sets.items())
              + " with a WORSE row")
    print(f"  ({time.perf_counter() - t:.1f} s; targets: unchanged <= 1 %, +10 % caught >= 95 %)")


def compare(requests: int, work: Path) -> None:
    from tests.support.samples import load_samples, lognormal, save_run
    from warehouse.analysis.compare import compare_runs
    from warehouse.store import Warehouse

    wh = Warehouse.open(f"chdb://{work / 'warehouse'}")
    rng = np.random.default_rng(2)
    steps = 10
    rows = [(run, "shop", f"step{s}", lognormal(rng, requests // steps, 1.05 if run == "b" else 1.0), None)
            for run in ("a", "b") for s in range(steps)]
    save_run(wh, "a", "2026-01-01 00:00:00.000")
    save_run(wh, "b", "2026-01-02 00:00:00.000")
    t = time.perf_counter()
    load_samples(wh, work / "samples.parquet", rows)
    print(f"compare, two runs of {requests:,} requests ({steps} steps): loaded in {time.perf_counter() - t:.1f} s")
    with wh.backend.session():
        a, b = wh.run("a"), wh.run("b")
        compare_runs(wh.backend, a, b)  # warm: the first query opens and caches the parts
        t = time.perf_counter()
        result = compare_runs(wh.backend, a, b)
        full = time.perf_counter() - t
        t = time.perf_counter()
        wh.backend.query("SELECT run_id, journey, step, quantileExactInclusive(0.95)(duration_ms) AS p95 "
                         "FROM requests WHERE run_id IN ('a', 'b') GROUP BY run_id, journey, step")
        reference = time.perf_counter() - t
    print(f"  full compare: {full:.2f} s; verdict {result.verdict}")
    print(ratio("full compare / 2 s", full / 2, 1.0, higher_is_better=False))
    print(f"  reference, p95 per run and step in one query: {reference:.2f} s -> compare costs "
          f"{full / reference:.1f}x it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--histories", type=int, default=30, help="seeded histories for the gate's rates")
    parser.add_argument("--work", type=Path, default=None)
    add_tiny(parser)
    args = tiny_sizes(parser.parse_args(), series=20, runs=30, requests=20_000, histories=3)
    gate_rates(args.histories)
    changepoints(args.series, args.runs)
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.work) as work:
        compare(args.requests, Path(work))


if __name__ == "__main__":
    main()
