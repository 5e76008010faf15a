"""The compare verdicts on seeded synthetic runs, computed in ClickHouse (chdb) like any compare.

Each trial is one step of two runs of 5,000 log-normal samples (p95/p50 about 1.6); 100 trials of each case
are steps of the same two runs, so one compare computes all their figures, and each trial is then decided
alone (a journey of one step: a family of one; tests/unit/test_gate_statistics.py judges whole journeys). The
run-to-run noise each trial is judged against comes from a simulated history of 30 runs whose true p95 varies
by 2 % (and whose p95s carry their own sampling error, as measured p95s do). Two named runs are judged as a
pair: their difference spreads sqrt(2) times one run's noise, so +15 % is what a pair resolves reliably; +10 %
is caught against a history (the gate's way).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.support.samples import load_samples, lognormal, save_run
from warehouse.analysis.compare import CompareVerdict, Noise, compare_runs, decide, history_noise
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

TRIALS = 100
SAMPLES = 5000
HISTORY = 30
RUN_NOISE = 0.02


def simulated_noise(rng: np.random.Generator) -> Noise:
    """The noise of a history of 30 runs: true p95 varying by 2 % run to run, each p95 from 5,000 samples."""
    scales = 1 + RUN_NOISE * rng.standard_normal(HISTORY)
    p95s = np.quantile(lognormal(rng, (HISTORY, SAMPLES)) * scales[:, None], 0.95, axis=1)
    return history_noise(list(p95s))


@pytest.fixture(scope="module")
def trials(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Counter[CompareVerdict]]:
    """Verdicts per case over 100 seeded trials each, from one compare of two runs in chdb."""
    rng = np.random.default_rng(20261130)
    cases = {"same": (1.0, SAMPLES), "noise": (1 + RUN_NOISE, SAMPLES), "shift": (1.15, SAMPLES),
             "few": (1.15, 100)}
    rows, noise = [], {}
    for case, (scale, n) in cases.items():
        for t in range(TRIALS):
            step = f"t{t:03d}"
            rows.append(("base", case, step, lognormal(rng, n), None))
            rows.append(("cand", case, step, lognormal(rng, n, scale), None))
            noise[(case, step)] = simulated_noise(rng)
    tmp = tmp_path_factory.mktemp("compare-stats")
    wh = Warehouse.open(f"chdb://{tmp / 'warehouse'}")
    save_run(wh, "base", "2026-01-01 00:00:00.000")
    save_run(wh, "cand", "2026-01-02 00:00:00.000")
    load_samples(wh, tmp / "samples.parquet", rows)
    result = compare_runs(wh.backend, wh.run("base"), wh.run("cand"), noise=noise)
    out: dict[str, Counter[CompareVerdict]] = {case: Counter() for case in cases}
    for s in result.steps:
        assert s.a is not None and s.b is not None
        out[s.journey][decide(s.a, s.b, s.ks_p, s.noise).verdict] += 1
    return out


def test_the_same_distribution_is_not_called_worse(trials: dict[str, Counter[CompareVerdict]]) -> None:
    assert trials["same"][CompareVerdict.WORSE] <= 1, trials["same"]
    assert trials["same"][CompareVerdict.SAME] >= 90, trials["same"]


def test_a_shift_within_the_historys_run_to_run_noise_is_not_called_worse(
    trials: dict[str, Counter[CompareVerdict]],
) -> None:
    """True p95 2 % apart, the history moving 2 % by itself: a bare Mann-Whitney flags most of these."""
    assert trials["noise"][CompareVerdict.WORSE] <= 1, trials["noise"]


def test_a_fifteen_percent_shift_between_two_runs_is_worse(trials: dict[str, Counter[CompareVerdict]]) -> None:
    assert trials["shift"][CompareVerdict.WORSE] >= 95, trials["shift"]
    assert trials["shift"][CompareVerdict.SAME] + trials["shift"][CompareVerdict.BETTER] == 0


def test_too_few_samples_are_inconclusive_never_same_or_better(trials: dict[str, Counter[CompareVerdict]]) -> None:
    assert trials["few"] == Counter({CompareVerdict.INCONCLUSIVE: TRIALS})


def test_bare_significance_tests_flag_most_pairs_within_the_noise(tmp_path: Path) -> None:
    """Why the floor and the history decide: Mann-Whitney alone (as ClickHouse computes it), on true p95s 2 %
    apart, is 'significant' in most trials, and so is the compare's Kolmogorov-Smirnov test; no step is WORSE."""
    rng = np.random.default_rng(7)
    wh = Warehouse.open(f"chdb://{tmp_path / 'warehouse'}")
    save_run(wh, "base", "2026-01-01 00:00:00.000")
    save_run(wh, "cand", "2026-01-02 00:00:00.000")
    rows = [(run, "noise", f"t{t:02d}", lognormal(rng, SAMPLES, 1 + RUN_NOISE if run == "cand" else 1.0), None)
            for t in range(40) for run in ("base", "cand")]
    load_samples(wh, tmp_path / "samples.parquet", rows)
    result = compare_runs(wh.backend, wh.run("base"), wh.run("cand"), noise={})
    mann_whitney = wh.backend.query(
        "SELECT step, tupleElement(mannWhitneyUTest('two-sided')(duration_ms, toUInt8(run_id = 'cand')), 2) AS p "
        "FROM requests GROUP BY step")
    assert sum(1 for r in mann_whitney if r["p"] < 0.05) >= 20
    assert sum(1 for s in result.steps if s.ks_p is not None and s.ks_p < 0.05) >= 10
    assert not any(s.verdict == CompareVerdict.WORSE for s in result.steps)
