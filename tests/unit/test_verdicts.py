"""Run verdicts and the compare decision as pure functions."""

from __future__ import annotations

import math

import pytest

from warehouse.analysis.compare import (
    DEFAULT_FLOOR,
    CompareVerdict,
    Noise,
    Policy,
    Row,
    Side,
    decide,
    holm,
    judge,
    pooled,
    worst,
)
from warehouse.analysis.slo import Verdict
from warehouse.analysis.verdict import RunVerdict, run_verdict

HOLDS = Verdict("overall p95 < 500 ms", "overall", "p95", 500.0, 100.0, True)
BREACHED = Verdict("overall error_rate < 1%", "overall", "error_rate", 0.01, 0.1, False)


@pytest.mark.parametrize(("status", "slos", "expected"), [
    ("completed", [HOLDS], RunVerdict.PASSED),
    ("completed", [HOLDS, BREACHED], RunVerdict.FAILED),
    ("imported", [], RunVerdict.NO_SLOS),  # an imported run at 10 % errors is not PASSED
    ("completed", [], RunVerdict.NO_SLOS),
    ("aborted", [HOLDS], RunVerdict.ABORTED),  # partial data never passes
    ("failed", [HOLDS], RunVerdict.INCOMPLETE),  # a tool died midway
    ("running", [], RunVerdict.INCOMPLETE),
])
def test_a_runs_verdict_says_what_happened(status: str, slos: list[Verdict], expected: RunVerdict) -> None:
    assert run_verdict(status, slos) == expected
    assert expected.judged == (expected not in (RunVerdict.ABORTED, RunVerdict.INCOMPLETE))


def side(count: int, p95: float, errors: int = 0, spread: float = 4.0) -> Side:
    """A run's figures with p94/p96 `spread` ms around p95 (its density there)."""
    return Side(count, errors, p95 * 0.6, p95, p95 * 1.3, p95 - spread / 2, p95 + spread / 2, 100.0)


HISTORY = Noise(runs=10, sigma=0.02, dof=27, stable=10, level=math.log(100.0), requests=5000, since="h0")


def test_fewer_samples_than_a_verdict_needs_are_inconclusive_whatever_the_shift() -> None:
    for p95 in (50.0, 100.0, 400.0):
        d = decide(side(150, 100.0), side(5000, p95), 1e-9, Noise(30, 0.01))
        assert d.verdict == CompareVerdict.INCONCLUSIVE and "too few samples" in d.reason
        assert d.needs == 200  # said, so a report can name what the step would need


def test_without_history_only_a_shift_credibly_beyond_the_wide_floor_is_worse() -> None:
    assert Policy().floor(Noise(3, None)) == DEFAULT_FLOOR == 0.20
    assert Policy().floor(Noise(30, 0.001)) == 0.02  # never below the minimum floor
    assert Policy().floor(Noise(30, 0.02)) == pytest.approx(math.expm1(0.06))
    for p95 in (104.0, 115.0, 125.0):  # +25 %: beyond the floor, but its interval is not clear of it
        d = decide(side(5000, 100.0), side(5000, p95, spread=40.0), 1e-6, Noise())
        assert d.verdict != CompareVerdict.WORSE and d.mode == "wide", (p95, d)
    d = decide(side(5000, 100.0), side(5000, 140.0), 1e-6, Noise())
    assert d.verdict == CompareVerdict.WORSE and "without a history" in d.reason


def test_a_pair_of_runs_spreads_by_twice_the_variance_of_one() -> None:
    """+6 % with 2 % run-to-run noise: the difference of two runs spreads 2.8 %, so 6 % is not resolved."""
    d = decide(side(5000, 100.0), side(5000, 106.0), 1e-6, Noise(30, 0.02, 29))
    assert d.mode == "pair" and d.verdict == CompareVerdict.INCONCLUSIVE and "not resolved" in d.reason
    assert decide(side(5000, 100.0), side(5000, 115.0), 1e-6, Noise(30, 0.02, 29)).verdict == CompareVerdict.WORSE


def test_against_the_stable_history_a_run_within_its_noise_is_same_and_ten_percent_worse() -> None:
    same = decide(side(5000, 150.0), side(5000, 102.0), None, HISTORY, history=True)
    assert same.mode == "history" and same.verdict == CompareVerdict.SAME  # run A (150 ms) does not decide
    assert same.reference_p95 == pytest.approx(100.0)
    worse = decide(side(5000, 150.0), side(5000, 111.0), None, HISTORY, history=True)
    assert worse.verdict == CompareVerdict.WORSE and "the mean of the 10 runs since h0" in worse.reason
    # the Kolmogorov-Smirnov p-value is shown, never decides
    assert decide(side(5000, 100.0), side(5000, 111.0), 0.9, HISTORY, history=True).verdict == CompareVerdict.WORSE
    better = decide(side(5000, 100.0), side(5000, 89.0), None, HISTORY, history=True)
    assert better.verdict == CompareVerdict.BETTER


def test_a_short_stable_history_falls_back_to_the_baseline_run() -> None:
    short = Noise(runs=12, sigma=0.02, dof=10, stable=3, level=math.log(100.0), requests=5000)
    d = decide(side(5000, 100.0), side(5000, 111.0), None, short, history=True)
    assert d.mode == "pair"


def test_more_errors_make_a_step_worse_even_when_latency_holds() -> None:
    d = decide(side(5000, 100.0, errors=10), side(5000, 100.0, errors=400), 0.3, HISTORY, history=True)
    assert (d.verdict, d.latency, d.errors) == (CompareVerdict.WORSE, CompareVerdict.SAME, CompareVerdict.WORSE)
    assert "more errors" in d.reason


def test_holm_rejects_step_down_and_stops_at_the_first_it_keeps() -> None:
    assert holm({"a": 0.001, "b": 0.004, "c": 0.03}, 0.01) == {"a": pytest.approx(0.01 / 3),
                                                               "b": pytest.approx(0.005)}
    assert holm({"a": 0.006, "b": 0.006}, 0.01) == {}  # 0.006 > 0.01 / 2
    assert holm({}, 0.01) == {}


def test_thirty_rows_each_just_significant_alone_are_not_worse_together() -> None:
    """p = 0.004 per row is WORSE for a row alone, not for one of 30 (Holm: 0.01 / 30)."""
    rows = {f"s{i}": Row(side(5000, 100.0), side(5000, 106.5), HISTORY) for i in range(30)}
    alone = judge({"s0": rows["s0"]})
    assert alone["s0"].verdict == CompareVerdict.WORSE
    assert all(d.verdict != CompareVerdict.WORSE for d in judge(rows).values())


def test_a_step_noisier_than_the_pool_keeps_its_own_sigma() -> None:
    quiet = Noise(10, 0.02, 9, 10, 0.0, 5000)
    noisy = Noise(10, 0.10, 9, 10, 0.0, 5000)
    out = pooled({("j", "a"): quiet, ("j", "b"): quiet, ("j", "c"): quiet, ("j", "d"): noisy, ("", ""): quiet})
    assert out[("j", "d")] == noisy and out[("", "")] == quiet
    assert out[("j", "a")].dof == 36 and out[("j", "a")].sigma is not None and out[("j", "a")].sigma > 0.02
    thin = Noise(10, 0.15, 9, 10, 0.0, 30)  # 30 requests a run: sampling error, not the journey's noise
    out = pooled({("j", "a"): quiet, ("j", "b"): quiet, ("j", "thin"): thin})
    assert out[("j", "a")].sigma == pytest.approx(0.02) and out[("j", "a")].dof == 18 and out[("j", "thin")] == thin


def test_the_worst_verdict_wins() -> None:
    assert worst([CompareVerdict.SAME, CompareVerdict.BETTER]) == CompareVerdict.BETTER
    assert worst([CompareVerdict.BETTER, CompareVerdict.INCONCLUSIVE]) == CompareVerdict.INCONCLUSIVE
    assert worst([CompareVerdict.INCONCLUSIVE, CompareVerdict.WORSE]) == CompareVerdict.WORSE
    assert worst([]) == CompareVerdict.SAME


def test_whole_millisecond_durations_still_have_a_sampling_error() -> None:
    """p94 = p95 = p96 = 12 ms: the density comes from p50 and p99, so the error is not zero."""
    tied = Side(5000, 0, 8.0, 12.0, 20.0, 12.0, 12.0, 100.0)
    assert 0 < tied.p95_log_se() < 0.1
    assert Side(5000, 0, 12.0, 12.0, 12.0, 12.0, 12.0, 100.0).p95_log_se() == 0  # every sample the same
