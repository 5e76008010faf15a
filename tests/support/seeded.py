"""Seeded runs of a system for the gate's statistics, drawn in numpy and judged by the same pure functions a
gate runs on the warehouse's figures (warehouse.analysis.compare: history_noise, pooled, judge).

A run of a journey of STEPS steps: each step's latencies log-normal (sigma 0.3) around its own median, the
whole step scaled by its run-to-run noise (each run, each step its own draw: 1 + noise * N(0, 1)); the overall
row is the steps together. Its figures are what COMPARE_STATS computes (exact quantiles, interpolated between
order statistics as quantileExactInclusive does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from warehouse.analysis.compare import (
    CompareVerdict,
    Decision,
    Policy,
    Row,
    Side,
    history_noise,
    judge,
    median_side,
    pooled,
)

Key = tuple[str, str]
OVERALL: Key = ("", "")


def side(durations: np.ndarray, errors: int = 0) -> Side:
    q50, q94, q95, q96, q99 = np.quantile(durations, [0.5, 0.94, 0.95, 0.96, 0.99])
    return Side(len(durations), errors, float(q50), float(q95), float(q99), float(q94), float(q96), 100.0)


def draw_run(rng: np.random.Generator, steps: int, noise: float, requests: int,
             scales: dict[int, float] | None = None) -> dict[Key, Side]:
    """One run's rows: `requests` per step; `scales` multiplies chosen steps' latencies (a regression)."""
    rows, every = {}, []
    for s in range(steps):
        factor = (1 + noise * rng.standard_normal()) * (scales or {}).get(s, 1.0)
        durations = 40.0 * (1 + s / steps) * factor * np.exp(0.3 * rng.standard_normal(requests))
        rows[("journey", f"step{s:02d}")] = side(durations)
        every.append(durations)
    rows[OVERALL] = side(np.concatenate(every))
    return rows


@dataclass(frozen=True)
class Trial:
    """One candidate run judged against a history (the newest history run is its baseline run A)."""

    decisions: dict[Key, Decision]

    @property
    def worse(self) -> bool:
        return any(d.verdict == CompareVerdict.WORSE for d in self.decisions.values())


def trials(seed: int, histories: int, candidates: int, scenarios: dict[str, dict[int, float]], steps: int = 3,
           noise: float = 0.02, requests: int = 5000, history_runs: int = 10,
           policy: Policy | None = None, repeats: int = 1) -> dict[str, list[Trial]]:
    """`histories` seeded histories of `history_runs` runs, each followed, per scenario (a name and the
    steps it scales: {} for an unchanged system), by `candidates` runs judged against it as a gate with an
    automatic baseline judges them: against the stable history. With `repeats` N > 1 a candidate is a set of
    N runs (`run --repeat N`, each its own noise draw) judged as one, by its median."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Trial]] = {name: [] for name in scenarios}
    for _ in range(histories):
        history = [draw_run(rng, steps, noise, requests) for _ in range(history_runs)]
        keys = list(history[0])
        measured = pooled({k: history_noise([run[k].p95 or 0.0 for run in history],
                                            counts=[run[k].count for run in history],
                                            run_ids=[f"h{i}" for i in range(history_runs)]) for k in keys})
        for name, scales in scenarios.items():
            for _ in range(candidates):
                if repeats > 1:
                    runs = [draw_run(rng, steps, noise, requests, scales) for _ in range(repeats)]
                    rows = {k: Row(history[-1][k], median_side([r[k] for r in runs]), measured[k],
                                   tuple(r[k] for r in runs)) for k in keys}
                else:
                    b = draw_run(rng, steps, noise, requests, scales)
                    rows = {k: Row(history[-1][k], b[k], measured[k]) for k in keys}
                out[name].append(Trial(judge(rows, policy=policy or Policy())))
    return out


def rate(found: list[Trial]) -> tuple[int, int]:
    """How many trials had a WORSE row, of how many."""
    flags = [t.worse for t in found]
    return sum(flags), len(flags)
