"""Run verdicts and the compare decision as pure functions."""

from __future__ import annotations

import math

import pytest

from warehouse.analysis.compare import DEFAULT_FLOOR, CompareVerdict, Noise, Policy, Side, decide, worst
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


def test_fewer_samples_than_a_verdict_needs_are_inconclusive_whatever_the_shift() -> None:
    for p95 in (50.0, 100.0, 400.0):
        d = decide(side(150, 100.0), side(5000, p95), 1e-9, Noise(30, 0.01))
        assert d.verdict == CompareVerdict.INCONCLUSIVE and "too few samples" in d.reason


def test_without_history_the_default_floor_applies() -> None:
    assert Policy().floor(Noise(3, None)) == DEFAULT_FLOOR
    assert Policy().floor(Noise(30, 0.001)) == 0.02  # never below the minimum floor
    assert Policy().floor(Noise(30, 0.02)) == pytest.approx(math.expm1(0.06))
    d = decide(side(5000, 100.0), side(5000, 104.0), 1e-6, Noise())
    assert d.verdict != CompareVerdict.WORSE and d.floor == DEFAULT_FLOOR


def test_a_shift_the_noise_cannot_resolve_is_inconclusive_not_same() -> None:
    """+6 % with a 6.2 % floor: the interval straddles the floor."""
    d = decide(side(5000, 100.0), side(5000, 106.0), 1e-6, Noise(30, 0.02))
    assert d.verdict == CompareVerdict.INCONCLUSIVE and "not resolved" in d.reason


def test_worse_needs_the_distributions_to_differ_as_well() -> None:
    assert decide(side(5000, 100.0), side(5000, 130.0), 1e-6, Noise(30, 0.02)).verdict == CompareVerdict.WORSE
    assert decide(side(5000, 100.0), side(5000, 130.0), 0.5, Noise(30, 0.02)).verdict == CompareVerdict.INCONCLUSIVE
    assert decide(side(5000, 130.0), side(5000, 100.0), 1e-6, Noise(30, 0.02)).verdict == CompareVerdict.BETTER


def test_more_errors_make_a_step_worse_even_when_latency_holds() -> None:
    d = decide(side(5000, 100.0, errors=10), side(5000, 100.0, errors=400), 0.3, Noise(30, 0.02))
    assert (d.verdict, d.latency, d.errors) == (CompareVerdict.WORSE, CompareVerdict.SAME, CompareVerdict.WORSE)
    assert "more errors" in d.reason


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
