"""Compare two runs per step and overall: percentiles, error rate and throughput, and a verdict per row that
says whether run B is a regression.

The figures come from ClickHouse over the request samples (queries.COMPARE_STATS) and, for the
history, from the step summaries (NOISE_HISTORY); the decision is pure (`judge`). A Kolmogorov-Smirnov p-value
(COMPARE_TESTS) is shown beside each row; it does not decide: on runs this large it finds the smallest shift
significant, and it compares B with one other run, not with what the history predicts.

What a row's p95 is judged against (`Reference`, d = ln p95_B minus the reference):
- history: the stable history of B's fingerprint, i.e. its comparable runs since the last change point of the
  row's ln p95, leaving out runs a gate judged WORSE (and, with a pinned baseline, runs before it), when it
  holds at least MIN_HISTORY runs. The reference is their mean ln p95; the spread of d when nothing changed is
  a prediction interval, sigma * sqrt(1 + 1/n), sigma the run-to-run spread of those runs (which holds their
  sampling error too), plus the extra sampling error of a B with fewer requests than the history's runs;
  Student's t with sigma's degrees of freedom. This is how `gate` and a compare against an automatic or
  pinned baseline judge.
- pair: one named run A, with the history's sigma known: d = ln p95_B - ln p95_A spreads sqrt(2) times a
  single run's sigma, as the difference of two runs does.
- wide: no history of MIN_HISTORY runs: only the sampling error is known, so only a shift credibly beyond
  WIDE_FLOOR (a change well beyond the run-to-run spread of ordinary systems, 2 to 10 %) counts: the test
  is against a shift of WIDE_FLOOR, not of zero.
The run-to-run sigma of a step is pooled over all the steps of the history (`pooled`): ten runs measure one
step's sigma poorly, and a sigma measured on 9 degrees of freedom would widen every interval by Student's t.
A step whose own sigma is larger than the pool (an F-test) keeps its own.

Many rows, one false-alarm rate: each row gets a one-sided p-value for "slower" (the smaller of its p95's
and its error rate's) and the rows of a run are one family, corrected by Holm's step-down method at
FAMILY_ALPHA: an unchanged run of 30 steps has a WORSE row no more often than one of 3 steps. A row is
- WORSE (BETTER): rejected by Holm, and its p95 shift beyond MIN_FLOOR (or its error rate up by more than
  ERROR_FLOOR: the error test is against a change of ERROR_FLOOR, not of zero);
- SAME: its p95 shift lies within the band the history moves by itself (NOISE_K sigma, at least MIN_FLOOR;
  WIDE_FLOOR without a history) with its sampling error (Z_SAME), and its error rate within ERROR_FLOOR;
- INCONCLUSIVE: anything else, or fewer than MIN_SAMPLES requests in either run (the row says how many it
  would need).
Runs of different tools (a group) are not judged at all: their rows are NOT JUDGED.

A set of repeats (`run --repeat N`: N runs of one fingerprint in one invocation) is judged as one B
(`compare_set`): per row the median of the N runs' ln p95 against the same reference, its spread from the run-to-run
sigma of a SINGLE run divided by the median's efficiency (`median_runs`): the history interval becomes
sigma * sqrt(1/N_eff + 1/n), the pair interval sigma * sqrt(1 + 1/N_eff). Without a history of MIN_HISTORY runs
the N runs' own spread (pooled over the steps like a history's, N - 1 degrees of freedom a step) is the sigma.

Long because the judgement above is one argument (reference, noise, multiplicity, thin data) whose parts are read
together; its SQL lives in read/queries.py and its decision in `judge`.
"""

from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar

from warehouse.analysis import MIN_SAMPLES
from warehouse.analysis.changepoints import segments_of
from warehouse.engine.backends import Backend
from warehouse.errors import DataError
from warehouse.read import queries
from warehouse.read.records import RunRecord, StoredComparison
from warehouse.store import Warehouse
from warehouse.tools import group_order

Key = TypeVar("Key", bound=Hashable)  # what names a row of `judge`: (journey, step) for a run's steps

MIN_HISTORY = 5  # comparable runs since the last change point needed to predict the next
HISTORY_RUNS = 30  # the newest comparable runs the history is read from
FAMILY_ALPHA = 0.005  # the chance that an unchanged run has any WORSE row (Holm over its rows): half the 1 % target
MIN_FLOOR = 0.02  # a p95 shift below this is never WORSE or BETTER, however significant
WIDE_FLOOR = 0.20  # without a history, only a p95 shift credibly beyond this is WORSE or BETTER
NOISE_K = 3.0  # SAME: within this many run-to-run sigmas of the reference
Z_SAME = 1.645  # a SAME shift's 90 % interval (sampling error) must lie within that band
Z_SHOWN = 2.576  # the 99 % interval shown beside a shift
ERROR_FLOOR = 0.01  # an absolute error-rate change of one percentage point matters
DEFAULT_FLOOR = WIDE_FLOOR  # the band of a row without history
# The variance of the median of N standard normal draws (N = 1..10; order statistics, to 4 digits); beyond 10,
# pi / (2N), its limit, which slightly overstates it (a wider interval: the safe side).
MEDIAN_VARIANCE = (1.0, 0.5, 0.4487, 0.2982, 0.2868, 0.2147, 0.2104, 0.1682, 0.1661, 0.1383)

TOOL_DIFFERENCES = (
    "k6 times a request from sending to the last byte received (http_req_duration: no DNS, connect or TLS); "
    "JMeter's elapsed time also holds connecting and is whole milliseconds in JMeter 2.x; Locust's response "
    "time (its python-requests client) also holds connecting when a new connection is made, and reading the body",
    "a request error is one row with ok = 0 in every tool: a transport failure or a status the step does not "
    "expect; failed checks (assertions on body, headers, JSONPath, duration) are counted apart, not in these "
    "error rates",
    "think time and pacing are the tools' own: throughput differs by their scheduling, not by the target",
)


class CompareVerdict(enum.StrEnum):
    BETTER = "BETTER"
    SAME = "SAME"
    WORSE = "WORSE"
    INCONCLUSIVE = "INCONCLUSIVE"
    NOT_JUDGED = "NOT JUDGED"  # runs of different tools: differences are shown, never judged


_RANK = {CompareVerdict.WORSE: 3, CompareVerdict.INCONCLUSIVE: 2, CompareVerdict.BETTER: 1, CompareVerdict.SAME: 0,
         CompareVerdict.NOT_JUDGED: -1}


def median_runs(n: int) -> float:
    """How many single runs the median of `n` runs is worth (its efficiency times n): 1 / the variance of the
    median of n standard normal draws. 1, 2, 2.23, 3.35, 3.49 for n = 1..5.

    Why the median of the repeats' ln p95, not their mean or minimum: one repeat disturbed by something outside
    the build (a noisy neighbour, a collection pause, a cold cache) moves the mean by 1/N of its excess and the
    minimum not at all when it is slow but all the way when it is fast; the median ignores it, at a cost of
    about a quarter of the runs' information for odd N (none for N = 2, where it is the mean). The minimum of N
    also predicts nothing the history knows: its distribution depends on N and on the noise's tails, while the
    median of log-symmetric runs has the history's mean as its centre, so one prediction serves every N."""
    if n <= 1:
        return 1.0
    return 1.0 / (MEDIAN_VARIANCE[n - 1] if n <= len(MEDIAN_VARIANCE) else math.pi / (2 * n))


def median_side(sides: Sequence[Side]) -> Side:
    """One row of a set of repeats as one B: the median of the runs' percentiles (geometric, through their ln)
    and throughput; the requests and errors of all runs together (the error rate over every request of the
    set). The sampling error of its p95 is the set's (`Row.runs`), not this Side's."""
    if len(sides) == 1:
        return sides[0]

    def mid(values: Sequence[float | None], log: bool = True) -> float | None:
        kept = [v for v in values if v is not None and (v > 0 or not log)]
        if len(kept) < len(values) or not kept:
            return None
        return math.exp(statistics.median(math.log(v) for v in kept)) if log else float(statistics.median(kept))

    return Side(sum(s.count for s in sides), sum(s.errors for s in sides), mid([s.p50 for s in sides]),
                mid([s.p95 for s in sides]), mid([s.p99 for s in sides]), None, None,
                mid([s.rps for s in sides], log=False))


def worst(verdicts: Sequence[CompareVerdict]) -> CompareVerdict:
    """WORSE over INCONCLUSIVE over BETTER over SAME over NOT JUDGED; SAME for none."""
    return max(verdicts, key=_RANK.__getitem__, default=CompareVerdict.SAME)


@dataclass(frozen=True)
class Side:
    """One run's figures for one step (or overall)."""

    count: int
    errors: int
    p50: float | None
    p95: float | None
    p99: float | None
    q94: float | None = None
    q96: float | None = None
    rps: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.count if self.count else None

    def p95_log_se(self) -> float:
        """Sampling error of ln p95: sqrt(p(1-p)/n) / (f(q95) q95), the density from p94 and p96; where
        those are equal (whole-millisecond durations, as JMeter 2.x writes) from p50 and p99 instead."""
        if not self.count or not self.p95 or self.q94 is None or self.q96 is None:
            return math.inf
        per_probability = (self.q96 - self.q94) / 0.02
        if per_probability <= 0 and self.p50 is not None and self.p99 is not None:
            per_probability = (self.p99 - self.p50) / 0.49
        return math.sqrt(0.95 * 0.05 / self.count) * per_probability / self.p95

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "errors": self.errors, "error_rate": self.error_rate, "p50_ms": self.p50,
                "p95_ms": self.p95, "p99_ms": self.p99, "rps": self.rps}


@dataclass(frozen=True)
class Noise:
    """A row's history of comparable runs: the run-to-run spread of its ln p95 (pooled within the segments
    between change points; None: too short a history), and its stable part, the runs since the last change
    point, whose mean ln p95 predicts the next run."""

    runs: int = 0  # runs read
    sigma: float | None = None
    dof: int = 0  # sigma's degrees of freedom
    stable: int = 0  # runs since the last change point
    level: float | None = None  # their mean ln p95
    requests: float = 0.0  # the median number of requests of those runs
    since: str = ""  # the first of those runs
    source: str = "history"  # where sigma comes from: history, or the repeats of the run judged (`repeat_noise`)

    @property
    def predicted_p95(self) -> float | None:
        return math.exp(self.level) if self.level is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "sigma": self.sigma, "dof": self.dof, "stable_runs": self.stable,
                "predicted_p95_ms": self.predicted_p95, "since": self.since}


def history_noise(p95s: Sequence[float], min_runs: int = MIN_HISTORY, counts: Sequence[float] | None = None,
                  run_ids: Sequence[str] | None = None) -> Noise:
    """A row's history from its p95s, oldest first (with each run's request count and id when known)."""
    kept = [i for i, v in enumerate(p95s) if v is not None and v > 0 and math.isfinite(v)]
    values = [math.log(p95s[i]) for i in kept]
    if len(values) < min_runs:
        return Noise(len(values))
    squares, dof = 0.0, 0
    segments = segments_of(values)
    for seg in segments:
        if len(seg) > 1:
            mean = sum(seg) / len(seg)
            squares += sum((v - mean) ** 2 for v in seg)
            dof += len(seg) - 1
    last = segments[-1]
    first = len(values) - len(last)
    stable_counts = [counts[kept[i]] for i in range(first, len(values))] if counts is not None else []
    return Noise(len(values), math.sqrt(squares / dof) if dof else None, dof, len(last), sum(last) / len(last),
                 float(statistics.median(stable_counts)) if stable_counts else 0.0,
                 run_ids[kept[first]] if run_ids is not None else "")


def pooled(noise: Mapping[tuple[str, str], Noise], alpha: float = 0.01) -> dict[tuple[str, str], Noise]:
    """The steps' sigma pooled over all steps of the history (relative run-to-run noise is alike across a
    journey's steps, and ten runs measure one step's sigma poorly), with the pooled degrees of freedom; a step
    whose own sigma is larger than the pool by an F-test at `alpha` keeps its own. Steps with fewer than
    MIN_SAMPLES requests a run stay out of the pool (their sampling error would inflate it). The overall row, a mixture
    of the steps and quieter than each, keeps its own."""
    from scipy.special import fdtri

    steps = [n for k, n in noise.items() if k != ("", "") and n.sigma is not None and n.dof
             and not 0 < n.requests < MIN_SAMPLES]  # a thin step's sampling error is not the journey's noise
    dof = sum(n.dof for n in steps)
    if not dof:
        return dict(noise)
    sigma = math.sqrt(sum(n.dof * (n.sigma or 0.0) ** 2 for n in steps) / dof)
    out = {}
    for key, n in noise.items():
        own = n.sigma is not None and n.dof and sigma > 0 and (n.sigma / sigma) ** 2 > fdtri(n.dof, dof, 1 - alpha)
        out[key] = n if key == ("", "") or n.sigma is None or own else replace(n, sigma=sigma, dof=dof)
    return out


@dataclass(frozen=True)
class Policy:
    """The constants of a verdict (module docstring); tests and callers may tighten them."""

    min_samples: int = MIN_SAMPLES
    min_history: int = MIN_HISTORY
    family_alpha: float = FAMILY_ALPHA
    min_floor: float = MIN_FLOOR
    wide_floor: float = WIDE_FLOOR
    noise_k: float = NOISE_K
    z_same: float = Z_SAME
    error_floor: float = ERROR_FLOOR

    def floor(self, noise: Noise) -> float:
        """The band a SAME shift lies within: what the history moves by itself, or the wide floor."""
        if noise.sigma is None:
            return self.wide_floor
        return max(self.min_floor, math.expm1(self.noise_k * noise.sigma))


def _t_sf(x: float, dof: float) -> float:
    """P(T > x) for Student's t with `dof` degrees of freedom (normal when infinite)."""
    from scipy.special import ndtr, stdtr

    if math.isnan(x):
        return 0.5
    return float(ndtr(-x) if not math.isfinite(dof) else stdtr(dof, -x))


def _t_quantile(p: float, dof: float) -> float:
    from scipy.special import ndtri, stdtrit

    return float(ndtri(p) if not math.isfinite(dof) else stdtrit(dof, p))


@dataclass(frozen=True)
class Reference:
    """What a row's p95 is judged against (module docstring): `mode` history, pair or wide."""

    mode: str
    p95: float  # the reference p95: the history's prediction or run A's
    shift: float  # d = ln p95_B - ln reference
    spread: float  # the standard deviation of d when nothing changed
    offset: float  # the shift the null hypothesis allows (the wide floor in wide mode, else 0)
    dof: float
    sampling: float  # the part of the spread that is sampling error

    @property
    def p_slower(self) -> float:
        return _t_sf((self.shift - self.offset) / self.spread, self.dof) if self.spread > 0 else float(
            self.shift > self.offset)

    @property
    def p_faster(self) -> float:
        return _t_sf((-self.shift - self.offset) / self.spread, self.dof) if self.spread > 0 else float(
            -self.shift > self.offset)

    def interval(self, z: float = Z_SHOWN) -> tuple[float, float]:
        """The shift's interval (relative), `z` spreads either side."""
        half = z * self.spread
        return math.expm1(self.shift - half), math.expm1(self.shift + half)


def reference(a: Side | None, b: Side, noise: Noise, history: bool, policy: Policy = Policy(),
              runs: Sequence[Side] = ()) -> Reference | None:
    """The reference of B's p95 (module docstring); None when B (or, needed, A) has no p95. With `runs`, B is
    the median of those repeats (`median_side`): their noise shrinks by `median_runs`."""
    if not b.p95 or b.p95 <= 0:
        return None
    worth = median_runs(len(runs))
    if runs:  # one run's sampling error (the mean over the repeats'), and one run's requests
        se_one = math.sqrt(sum(r.p95_log_se() ** 2 for r in runs) / len(runs))
        count_one = float(statistics.median(r.count for r in runs))
    else:
        se_one, count_one = b.p95_log_se(), float(b.count)
    se_b = se_one / math.sqrt(worth)
    sigma = noise.sigma
    if history and sigma is not None and noise.level is not None and noise.stable >= policy.min_history:
        extra = se_b ** 2 * max(0.0, 1 - count_one / noise.requests) if noise.requests else 0.0
        spread = math.sqrt(sigma ** 2 * (1 / worth + 1 / noise.stable) + extra)
        return Reference("history", math.exp(noise.level), math.log(b.p95) - noise.level, spread, 0.0,
                         noise.dof, math.sqrt(se_b ** 2 + sigma ** 2 / noise.stable))
    if a is None or not a.p95 or a.p95 <= 0:
        return None
    se_a = a.p95_log_se()
    d = math.log(b.p95 / a.p95)
    sampling = math.hypot(se_a, se_b)
    if sigma is not None:
        extra = (se_a ** 2 * max(0.0, 1 - a.count / noise.requests) + se_b ** 2 * max(0.0, 1 - count_one / noise.requests)
                 ) if noise.requests else 0.0
        return Reference("pair", a.p95, d, math.sqrt(sigma ** 2 * (1 + 1 / worth) + extra), 0.0, noise.dof, sampling)
    return Reference("wide", a.p95, d, sampling, math.log1p(policy.wide_floor), math.inf, sampling)


@dataclass(frozen=True)
class Decision:
    verdict: CompareVerdict
    reason: str
    latency: CompareVerdict = CompareVerdict.INCONCLUSIVE
    errors: CompareVerdict = CompareVerdict.INCONCLUSIVE
    floor: float = DEFAULT_FLOOR
    shift: float | None = None  # relative p95 change, B against its reference
    interval: tuple[float, float] | None = None  # its 99 % interval (relative)
    mode: str = ""  # history | pair | wide (Reference.mode); '' when not tested
    reference_p95: float | None = None
    p_value: float | None = None  # the row's p-value for "slower" (before Holm's correction)
    needs: int = 0  # requests each run needs for a verdict, when too few held it back


@dataclass(frozen=True)
class Row:
    """One row to judge: the figures of both runs (A may be missing) and the row's history."""

    a: Side | None
    b: Side | None
    noise: Noise = Noise()
    runs: tuple[Side, ...] = ()  # B as a set of repeats: each run's figures (b is then their median_side)


@dataclass(frozen=True)
class _Tested:
    ref: Reference | None
    p_slower: float  # the row's p-values: the smaller of the p95's and the error rate's
    p_faster: float
    p_more_errors: float
    p_fewer_errors: float
    error_said: str
    error_same: bool


def judge(rows: Mapping[Key, Row], history: bool = True, policy: Policy = Policy()) -> dict[Key, Decision]:
    """The verdict of every row of a run (module docstring): one family, Holm-corrected. `history`: judge
    against the stable history where it is long enough (else against run A)."""
    out: dict[Key, Decision] = {}
    tested: dict[Key, _Tested] = {}
    for key, row in rows.items():
        a, b = row.a, row.b
        floor = policy.floor(row.noise)
        if b is None or (a is None and not history):
            out[key] = Decision(CompareVerdict.INCONCLUSIVE, f"only run {'A' if b is None else 'B'} has this step",
                                floor=floor)
            continue
        b_fewest = min(r.count for r in row.runs) if row.runs else b.count  # each repeat needs its own p95
        fewest = min(b_fewest, a.count if a is not None else b_fewest)
        if fewest < policy.min_samples:
            which = "B" if a is None or b_fewest <= a.count else "A"
            out[key] = Decision(CompareVerdict.INCONCLUSIVE,
                                f"too few samples for a verdict: run {which} has {fewest}, a sound verdict needs "
                                f"{policy.min_samples}", floor=floor, needs=policy.min_samples)
            continue
        ref = reference(a, b, row.noise, history, policy, row.runs)
        p_more, p_fewer, said, same = _error_test(a, b, policy)
        tested[key] = _Tested(ref, min(ref.p_slower if ref else 1.0, p_more),
                              min(ref.p_faster if ref else 1.0, p_fewer), p_more, p_fewer, said, same)
    slower = holm({k: t.p_slower for k, t in tested.items()}, policy.family_alpha)
    faster = holm({k: t.p_faster for k, t in tested.items()}, policy.family_alpha)
    for key, t in tested.items():
        out[key] = _decide(t, rows[key].noise, slower.get(key), faster.get(key), policy, len(rows[key].runs))
    return out


def holm(pvalues: Mapping[Key, float], alpha: float) -> dict[Key, float]:
    """Holm's step-down method: the keys rejected at family-wise level `alpha`, each with the threshold it
    was tested at (alpha / (m - i) for the i-th smallest p-value, stopping at the first not rejected)."""
    ordered = sorted(pvalues.items(), key=lambda kv: kv[1])
    rejected: dict[Key, float] = {}
    for i, (key, p) in enumerate(ordered):
        threshold = alpha / (len(ordered) - i)
        if p > threshold:
            break
        rejected[key] = threshold
    return rejected


def _decide(t: _Tested, noise: Noise, slower: float | None, faster: float | None, policy: Policy,
            repeats: int = 0) -> Decision:
    ref = t.ref
    floor = policy.floor(noise)
    relevant = math.log1p(policy.min_floor)
    if ref is None:
        latency, shift, interval, said = CompareVerdict.INCONCLUSIVE, None, None, "no latency to compare"
    else:
        shift, interval = math.expm1(ref.shift), ref.interval()
        said = _said(ref, noise, floor, repeats)
        if slower is not None and ref.p_slower <= slower and ref.shift > relevant:
            latency, said = CompareVerdict.WORSE, f"slower: {said}"
        elif faster is not None and ref.p_faster <= faster and ref.shift < -relevant:
            latency, said = CompareVerdict.BETTER, f"faster: {said}"
        elif abs(ref.shift) + policy.z_same * ref.sampling < math.log1p(floor):
            within = "the wide floor" if ref.mode == "wide" else "what the runs move by themselves"
            latency, said = CompareVerdict.SAME, f"within {within}: {said}"
        else:
            latency, said = CompareVerdict.INCONCLUSIVE, f"not resolved: {said}"
    if slower is not None and t.p_more_errors <= slower:
        errors, error_why = CompareVerdict.WORSE, f"more errors: {t.error_said}"
    elif faster is not None and t.p_fewer_errors <= faster:
        errors, error_why = CompareVerdict.BETTER, f"fewer errors: {t.error_said}"
    elif t.error_same:
        errors, error_why = CompareVerdict.SAME, t.error_said
    else:
        errors, error_why = CompareVerdict.INCONCLUSIVE, f"error rate change not resolved: {t.error_said}"
    if CompareVerdict.WORSE in (latency, errors):
        verdict = CompareVerdict.WORSE
    elif CompareVerdict.INCONCLUSIVE in (latency, errors):
        verdict = CompareVerdict.INCONCLUSIVE
    else:
        verdict = worst([latency, errors])
    reasons = [said] + ([error_why] if errors != CompareVerdict.SAME else [])
    return Decision(verdict, "; ".join(reasons), latency, errors, floor, shift, interval,
                    ref.mode if ref else "", ref.p95 if ref else None, t.p_slower)


def _said(ref: Reference, noise: Noise, floor: float, repeats: int = 0) -> str:
    lo, hi = ref.interval()
    what = f"p95 (median of {repeats} runs)" if repeats > 1 else "p95"
    shift = f"{what} {math.expm1(ref.shift):+.1%} (99 % interval {lo:+.1%} to {hi:+.1%})"
    if ref.mode == "history":
        return (f"{shift} against {ref.p95:.4g} ms, the mean of the {noise.stable} runs since "
                f"{noise.since or 'the last change point'} (run-to-run spread {noise.sigma or 0:.1%})")
    if ref.mode == "pair" and noise.source == "repeats":
        return (f"{shift} against run A, judged with the run-to-run spread of this run's {noise.runs} repeats "
                f"({noise.sigma or 0:.1%}; no history of {MIN_HISTORY}+ runs: repeats run back to back may "
                "spread less than builds do)")
    if ref.mode == "pair":
        return (f"{shift} against run A, judged with the run-to-run spread of {noise.runs} earlier runs "
                f"({noise.sigma or 0:.1%}, sqrt(2) times that for two runs)")
    return (f"{shift} against run A; without a history of {MIN_HISTORY}+ runs only a shift credibly beyond "
            f"±{math.expm1(ref.offset):.0%} counts")


def repeat_noise(runs: Mapping[tuple[str, str], Sequence[Side]], min_dof: int = 4) -> dict[tuple[str, str], Noise]:
    """Each row's run-to-run sigma measured from the repeats of the run judged (their ln p95's sample spread,
    N - 1 degrees of freedom), pooled over the steps as a history's is (`pooled`); empty when the steps give
    fewer than `min_dof` degrees of freedom together (two repeats of a 3-step journey: 3)."""
    out = {}
    for key, sides in runs.items():
        values = [math.log(s.p95) for s in sides if s.p95 and s.p95 > 0]
        if len(values) < 2 or len(values) < len(sides):
            continue
        out[key] = Noise(len(values), statistics.stdev(values), len(values) - 1,
                         requests=float(statistics.median(s.count for s in sides)), source="repeats")
    shared = pooled(out)
    if sum(n.dof for k, n in out.items() if k != ("", "")) < min_dof:
        return {}
    return shared


def _error_test(a: Side | None, b: Side, policy: Policy) -> tuple[float, float, str, bool]:
    """p-values of "more errors" and "fewer errors" by more than the error floor (two proportions), the
    change said, and whether it lies within the floor."""
    if a is None or not a.count or not b.count:
        return 1.0, 1.0, "no error rate to compare", False
    ea, eb = a.errors / a.count, b.errors / b.count
    pooled_rate = (a.errors + b.errors) / (a.count + b.count)
    se = math.sqrt(pooled_rate * (1 - pooled_rate) * (1 / a.count + 1 / b.count))
    delta = eb - ea
    said = f"error rate {ea:.2%} → {eb:.2%}"
    if se == 0:
        return float(delta <= policy.error_floor), float(-delta <= policy.error_floor), said, True
    more = _t_sf((delta - policy.error_floor) / se, math.inf)
    fewer = _t_sf((-delta - policy.error_floor) / se, math.inf)
    return more, fewer, said, abs(delta) + policy.z_same * se < policy.error_floor


def decide(a: Side, b: Side, p_value: float | None, noise: Noise, policy: Policy = Policy(),
           history: bool = False) -> Decision:
    """The verdict on B against A for one row alone (a family of one); `p_value` (Kolmogorov-Smirnov) is
    shown, not used."""
    return judge({"row": Row(a, b, noise)}, history, policy)["row"]


# -- comparing two runs of the warehouse ---------------------------------------------------------------


@dataclass(frozen=True)
class Delta:
    """One figure of a step in both runs and its change, B against A; None where a run lacks the figure (or, for
    the relative change, where A's is 0)."""

    a: float | None
    b: float | None
    absolute: float | None
    relative: float | None

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)


@dataclass(frozen=True)
class StepComparison:
    journey: str
    step: str
    a: Side | None
    b: Side | None
    verdict: CompareVerdict
    reason: str
    noise: Noise = Noise()
    floor: float = DEFAULT_FLOOR
    ks_p: float | None = None
    shift: float | None = None
    interval: tuple[float, float] | None = None
    mode: str = ""  # what B was judged against: history | pair | wide ('' when not tested)
    reference_p95: float | None = None
    p_value: float | None = None  # the row's p-value for "slower", before Holm's correction
    needs: int = 0  # requests each run needs for a verdict, when too few held it back
    b_runs: tuple[Side, ...] = ()  # B as a set of repeats: each run's figures (b is their median_side)

    @property
    def fewest(self) -> int:
        """The fewest requests of a run compared on this row (each repeat of a set counts alone)."""
        counts = [x.count for x in (self.a, *(self.b_runs or (self.b,))) if x is not None]
        return min(counts, default=0)

    @property
    def overall(self) -> bool:
        return not self.journey and not self.step

    @property
    def label(self) -> str:
        return "overall" if self.overall else f"{self.journey}/{self.step}"

    def deltas(self) -> dict[str, Delta]:
        """Absolute and relative change, B against A, of p50, p95, p99, error rate and throughput."""
        out: dict[str, Delta] = {}
        for name, pick in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"), ("error_rate", "error_rate"),
                           ("rps", "rps")):
            va = getattr(self.a, pick) if self.a else None
            vb = getattr(self.b, pick) if self.b else None
            absolute = vb - va if va is not None and vb is not None else None
            relative = absolute / va if absolute is not None and va else None
            out[name] = Delta(va, vb, absolute, relative)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "journey": self.journey,
            "step": self.step,
            "overall": self.overall,
            "verdict": str(self.verdict),
            "reason": self.reason,
            "a": self.a.to_dict() if self.a else None,
            "b": self.b.to_dict() if self.b else None,
            "deltas": {name: d.to_dict() for name, d in self.deltas().items()},
            "kolmogorov_smirnov_p": self.ks_p,
            "p95_shift": self.shift,
            "p95_shift_interval": list(self.interval) if self.interval else None,
            "floor": self.floor,
            "noise": self.noise.to_dict(),
            "judged_against": self.mode,
            "reference_p95_ms": self.reference_p95,
            "p_slower": self.p_value,
            "requests_needed": self.needs,
            "b_runs": [r.to_dict() for r in self.b_runs],
        }


@dataclass
class Comparison:
    """Run B (the candidate) against run A (the baseline), per step and overall."""

    a: RunRecord
    b: RunRecord
    steps: list[StepComparison]
    overall: StepComparison
    how: str = "named"  # how A was chosen: named | pinned | auto | group
    notes: list[str] = field(default_factory=list)
    repeats: tuple[str, ...] = ()  # B as a set of repeats (compare_set): their run ids, b the first

    @property
    def rows(self) -> list[StepComparison]:
        return [*self.steps, self.overall]

    @property
    def verdict(self) -> CompareVerdict:
        """The headline, by the rule the gate follows: WORSE if any row is (a step or the whole run); else
        INCONCLUSIVE if any is; BETTER if any is; else SAME. NOT JUDGED for runs of different tools."""
        if self.how == "group":
            return CompareVerdict.NOT_JUDGED
        return worst([s.verdict for s in self.rows])

    @property
    def worse(self) -> list[StepComparison]:
        """The regressions: every WORSE row, a step's or the whole run's."""
        return [s for s in self.rows if s.verdict == CompareVerdict.WORSE]

    @property
    def thin(self) -> list[StepComparison]:
        """The rows too thin to judge, with the requests they would need."""
        return [s for s in self.rows if s.needs]

    def to_dict(self) -> dict[str, Any]:
        return _finite({
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "repeats": list(self.repeats),
            "baseline": self.how,
            "verdict": str(self.verdict),
            "steps": [s.to_dict() for s in self.steps],
            "overall": self.overall.to_dict(),
            "notes": self.notes,
        })


def compare_runs(
    backend: Backend,
    run_a: RunRecord,
    run_b: RunRecord,
    how: str = "named",
    noise: Mapping[tuple[str, str], Noise] | None = None,
    policy: Policy = Policy(),
) -> Comparison:
    """Compare run B against run A (rows of queries.RUN). The history per (journey, step) ('', '' overall) is
    read from B's fingerprint's runs before B unless given (`measured_noise`); with an automatic or pinned
    baseline B is judged against that history's stable runs, with a named A against A (module docstring);
    runs of a group (different tools) are not judged."""
    return compare_set(backend, run_a, [run_b], how, noise, policy)


def compare_set(
    backend: Backend,
    run_a: RunRecord,
    runs_b: Sequence[RunRecord],
    how: str = "named",
    noise: Mapping[tuple[str, str], Noise] | None = None,
    policy: Policy = Policy(),
) -> Comparison:
    """Compare B against run A as `compare_runs` does, B one run or a set of repeats of one fingerprint
    (oldest first: `run --repeat N`) judged as one by its median (module docstring). The history is read from
    before the first repeat, so no repeat is part of the prediction it is judged against; without a history
    the repeats' own spread is the sigma (`repeat_noise`). The Kolmogorov-Smirnov p-value is shown for one B
    only."""
    if not runs_b:
        raise DataError("nothing to compare: no run B")
    run_b = runs_b[0]
    a_id, b_ids = run_a.run_id, [r.run_id for r in runs_b]
    sides: dict[tuple[str, str], dict[str, Side]] = {}
    sets: dict[tuple[str, str], list[Side]] = {}
    tests: list[dict[str, Any]] = []
    with backend.session():
        for b_id in b_ids:
            stats = backend.query(queries.COMPARE_STATS, {"a": a_id, "b": b_id})
            spans = {str(r["run_id"]): float(r["span_s"]) for r in stats if r["overall"]}
            for r in stats:
                key = ("", "") if r["overall"] else (str(r["journey"]), str(r["step"]))
                side = Side(int(r["count"]), int(r["errors"]), _num(r["p50"]), _num(r["p95"]), _num(r["p99"]),
                            _num(r["q94"]), _num(r["q96"]), int(r["count"]) / spans[str(r["run_id"])])
                if r["run_id"] == a_id:
                    sides.setdefault(key, {})["a"] = side
                else:
                    sets.setdefault(key, []).append(side)
        for key, found in sets.items():  # a row some repeat lacks is judged on the repeats that have it
            sides.setdefault(key, {})["b"] = median_side(found)
        both = [k for k, pair in sides.items() if k != ("", "") and len(pair) == 2]
        partial = len(both) < len(sides) - 1
        if both and len(b_ids) == 1:
            tests = backend.query(queries.COMPARE_TESTS, {
                "a": a_id, "b": b_ids[0], "journeys": [k[0] for k in both] if partial else [],
                "steps": [k[1] for k in both] if partial else []})
        if noise is None:
            noise = {} if how == "group" else measured_noise(
                backend, run_b.fingerprint, b_ids[0], run_b.started_at,
                since=run_a.started_at if how == "pinned" else "", keep=a_id if how == "pinned" else "")
    repeated = len(b_ids) > 1
    if repeated and how != "group":
        merged = dict(noise)  # a row without a history's sigma takes the repeats'
        for key, n in repeat_noise({k: v for k, v in sets.items() if len(v) == len(b_ids)}).items():
            if merged.get(key, Noise()).sigma is None:
                merged[key] = n
        noise = merged
    pvalues = {("", "") if r["overall"] else (str(r["journey"]), str(r["step"])): _num(r["ks_p"]) for r in tests}
    keys = sorted(sides, key=lambda k: (k == ("", ""), k))
    if how == "group":
        decisions = {k: Decision(CompareVerdict.NOT_JUDGED, f"{run_b.tool} against {run_a.tool}: the tools measure "
                                 "differently, so the difference is shown, not judged") for k in keys}
    else:
        decisions = judge({k: Row(sides[k].get("a"), sides[k].get("b"), noise.get(k, Noise()),
                                  tuple(sets.get(k, ())) if repeated else ()) for k in keys},
                          history=how in ("auto", "pinned"), policy=policy)
    rows = []
    for key in keys:
        pair, d, step_noise = sides[key], decisions[key], noise.get(key, Noise())
        if how != "group" and ("a" not in pair or "b" not in pair) and d.mode != "history":
            only = "B" if "b" in pair else "A"
            d = replace(d, verdict=CompareVerdict.INCONCLUSIVE, reason=f"only run {only} has this step", needs=0)
        rows.append(StepComparison(key[0], key[1], pair.get("a"), pair.get("b"), d.verdict, d.reason, step_noise,
                                   d.floor, pvalues.get(key), d.shift, d.interval, d.mode, d.reference_p95,
                                   d.p_value, d.needs, tuple(sets.get(key, ())) if repeated else ()))
    steps = [s for s in rows if not s.overall]
    overall = next((s for s in rows if s.overall), None) or StepComparison(
        "", "", None, None, CompareVerdict.INCONCLUSIVE, "neither run has requests")
    notes = []
    if repeated:
        notes.append(f"B is a set of {len(b_ids)} repeats ({', '.join(f'`{i}`' for i in b_ids)}) judged as one: per "
                     f"row the median of their p95s, whose spread is a single run's divided by "
                     f"{median_runs(len(b_ids)):.2f} (the median of {len(b_ids)} runs is worth that many runs); "
                     "request and error counts are the set's together")
    modes = {s.mode for s in rows if s.mode}
    if how != "group" and "history" not in modes and "pair" not in modes and any(s.mode == "wide" for s in rows):
        notes.append(f"no history of {policy.min_history}+ comparable runs since the last change point: only a p95 "
                     f"shift credibly beyond ±{policy.wide_floor:.0%} (or an error rate up by more than "
                     f"{policy.error_floor * 100:g} percentage point) is WORSE; gate a few more runs to judge finer shifts"
                     + (" (or repeat more: --repeat 3 measures the spread from the repeats)" if repeated else ""))
    if any(s.mode == "pair" and s.noise.source == "repeats" for s in rows):
        notes.append(f"no history of {policy.min_history}+ comparable runs: the run-to-run spread is measured from "
                     f"the {len(b_ids)} repeats themselves, pooled over the steps; repeats run back to back may "
                     "spread less than separate builds do, so a history judges more truly")
    if "history" in modes:
        stable = max((s.noise.stable for s in rows if s.mode == "history"), default=0)
        notes.append(f"judged against the stable history: up to {stable} comparable runs since the last change point "
                     "(runs a gate judged WORSE left out), a prediction interval that counts their run-to-run noise; "
                     f"run A `{a_id}` is shown for before and after")
    if how != "group" and len([s for s in rows if s.p_value is not None]) > 1:
        notes.append(f"{len([s for s in rows if s.p_value is not None])} rows judged as one family (Holm): "
                     f"an unchanged run has a WORSE row in at most {policy.family_alpha:.1%} of cases")
    if how != "group" and any(run_a.fingerprint != b.fingerprint for b in runs_b):
        notes.append("the runs have different fingerprints (spec, journeys, profile, tool, environment or labels): "
                     "differences may come from that, not from the system under test")
    for described, name in ((run_a, "A"), *((b, "B" if not repeated else f"B `{b.run_id}`") for b in runs_b)):
        if described.status not in ("completed", "imported"):
            notes.append(f"run {name} is {described.status}: its figures cover only part of the run")
    return Comparison(run_a, run_b, steps, overall, how, notes, tuple(b_ids) if repeated else ())


def store_comparison(backend: Backend, comparison: Comparison) -> None:
    """Keep a comparison's per-step verdicts (and overall: journey and step empty); comparing again replaces.
    A set of repeats keeps the set's rows (B its median) under each of its runs."""
    for run_id, s in ((r, s) for r in comparison.repeats or (comparison.b.run_id,)
                      for s in [*comparison.steps, comparison.overall]):
        d = s.deltas()
        row = {"journey": s.journey, "step": s.step, "count_a": s.a.count if s.a else 0,
               "count_b": s.b.count if s.b else 0, "p_value": s.ks_p, "floor": s.floor,
               "noise": s.noise.sigma, "verdict": str(s.verdict), "reason": s.reason}
        for metric, column in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"),
                               ("error_rate", "error_rate"), ("rps", "rps")):
            row[f"{column}_a"], row[f"{column}_b"] = d[metric].a, d[metric].b
        backend.command(
            "INSERT INTO comparisons (run_id, baseline_id, journey, step, count_a, count_b, p50_a, p50_b, p95_a, "
            "p95_b, p99_a, p99_b, error_rate_a, error_rate_b, rps_a, rps_b, p_value, floor, noise, verdict, reason, "
            "compared_at) VALUES ({run:String}, {baseline:String}, {journey:String}, {step:String}, "
            "{count_a:UInt64}, {count_b:UInt64}, {p50_a:Nullable(Float64)}, {p50_b:Nullable(Float64)}, "
            "{p95_a:Nullable(Float64)}, {p95_b:Nullable(Float64)}, {p99_a:Nullable(Float64)}, "
            "{p99_b:Nullable(Float64)}, {error_rate_a:Nullable(Float64)}, {error_rate_b:Nullable(Float64)}, "
            "{rps_a:Nullable(Float64)}, {rps_b:Nullable(Float64)}, {p_value:Nullable(Float64)}, {floor:Float64}, "
            "{noise:Nullable(Float64)}, {verdict:String}, {reason:String}, now64(6))",
            {"run": run_id, "baseline": comparison.a.run_id, **row},
        )


def stored_comparisons(backend: Backend, run_id: str, baseline_id: str = "") -> list[StoredComparison]:
    """The kept rows of run `run_id`'s comparisons (against `baseline_id` alone unless empty), overall first."""
    rows = backend.query(queries.COMPARISONS, {"run": run_id, "baseline": baseline_id})
    return [StoredComparison.of(r) for r in rows]


def measured_noise(backend: Backend, fingerprint: str, before_run: str, before: str,
                   runs: int = HISTORY_RUNS, since: str = "", keep: str = "") -> dict[tuple[str, str], Noise]:
    """The history of each step's p95 (and overall) over the newest `runs` comparable runs before `before`,
    leaving out the runs a gate judged WORSE (but `keep`) and, with `since`, runs started before it (a pinned
    baseline starts its history); the steps' sigma pooled (`pooled`)."""
    if not fingerprint:
        return {}
    regressed = {str(r["run_id"]) for r in backend.query(queries.GATE_REGRESSED, {"fingerprint": fingerprint})}
    rows = backend.query(queries.NOISE_HISTORY, {"fingerprint": fingerprint, "spec": "", "before": before,
                                                "exclude": before_run, "runs": runs})
    start = _instant(since) if since else None
    series: dict[tuple[str, str], list[tuple[float, float, str]]] = {}
    for r in rows:  # oldest first
        p95, run_id = _num(r["p95"]), str(r["run_id"])
        if p95 is None or (run_id in regressed and run_id != keep):
            continue
        if start is not None and _instant(str(r["started"])) < start:
            continue
        series.setdefault((str(r["journey"]), str(r["step"])), []).append((p95, float(r["requests"]), run_id))
    return pooled({key: history_noise([v[0] for v in values], counts=[v[1] for v in values],
                                      run_ids=[v[2] for v in values]) for key, values in series.items()})


def _instant(text: str) -> str:
    """A timestamp as sortable text ('2026-01-01 00:00:00.000000'): the warehouse's and a run record's forms."""
    return text.replace("T", " ").split("+")[0].ljust(26, "0")[:26]


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# -- choosing what to compare ------------------------------------------------------------------------------


def compare_group(warehouse: Warehouse, group: str, policy: Policy = Policy()) -> list[Comparison]:
    """The runs of a group (`latest`: the newest group of several runs; else a group id or prefix) against each
    other: the first tool's run (k6 first) as A against every other tool's run. Differences are shown, never
    judged: the tools measure differently."""
    with warehouse.backend.session():
        rows = warehouse.backend.query(queries.LATEST_GROUP, {"group": "" if group == "latest" else group})
        if len(rows) < 2:
            raise DataError(f"no group {'of several runs' if group == 'latest' else repr(group)} to compare: "
                            "run a spec with --tool k6,jmeter")
        firsts: dict[str, dict[str, Any]] = {}
        for r in rows:  # by tool, oldest first: the first run of each tool (repeats of it are left out)
            firsts.setdefault(str(r["tool"]), r)
        repeats = len(rows) - len(firsts)
        if len(firsts) < 2:
            raise DataError(f"group {group!r} holds {len(rows)} repeats of one tool (run --repeat) and no other tool "
                            "to compare with: `perfhouse gate` judges them as one set")
        ordered = sorted(firsts.values(), key=lambda r: group_order(str(r["tool"])))
        run_a = warehouse.run(str(ordered[0]["run_id"]))
        out = []
        for row in ordered[1:]:
            run_b = warehouse.run(str(row["run_id"]))
            result = compare_runs(warehouse.backend, run_a, run_b, "group", policy=policy)
            others = [f"{r['tool']} `{r['run_id']}`" for r in ordered[1:] if r["run_id"] != row["run_id"]]
            result.notes = [*result.notes,
                            f"{run_b.tool} against {run_a.tool} of group {run_a.group_id}: the tools measure "
                            "differently, so a difference is not a regression and is never WORSE or BETTER",
                            *TOOL_DIFFERENCES,
                            *([f"the group also holds {', '.join(others)}, compared with {run_a.tool} apart"]
                              if others else []),
                            *([f"the group holds {repeats} more repeat{'s' if repeats > 1 else ''} (run --repeat): "
                               "the first run of each tool is compared"] if repeats else [])]
            out.append(result)
    return out


def compare(
    warehouse: Warehouse,
    a: str | None = None,
    b: str | None = None,
    baseline: str | None = None,
    group: str | None = None,
    policy: Policy = Policy(),
) -> Comparison:
    """Compare runs named as the CLI names them: A and B; B (default the latest run) against its baseline
    (`baseline`: a run, `auto`, `pinned`, or None for pinned else automatic); or, with `group` (`latest` or
    a group id), the first tool's run of that invocation against the next (`compare_group` gives every pair)."""
    from warehouse.analysis.baseline import resolve_baseline

    if group is not None:
        return compare_group(warehouse, group, policy)[0]
    with warehouse.backend.session():
        if a is not None and b is not None:
            run_a, run_b = warehouse.run(warehouse.resolve(a)), warehouse.run(warehouse.resolve(b))
            return compare_runs(warehouse.backend, run_a, run_b, "named", policy=policy)
        b_id = warehouse.resolve(a if a is not None else "latest")
        chosen = resolve_baseline(warehouse, b_id, baseline)
        result = compare_runs(warehouse.backend, warehouse.run(chosen.run_id), warehouse.run(b_id), chosen.how,
                              policy=policy)
        if chosen.why:
            result.notes.insert(0, f"baseline `{chosen.run_id}`: {chosen.why}")
        return result


def render_markdown(comparison: Comparison) -> str:
    """The comparison as a Markdown document: a table per step and overall, then the notes."""
    c = comparison
    lines = [f"# Compare: {c.b.run_id} against {c.a.run_id}", "",
             f"**Verdict: {c.verdict}** · baseline ({c.how}) `{c.a.run_id}` {c.a.tool} · "
             f"run `{c.b.run_id}` {c.b.tool}", "",
             "| step | n (A → B) | p50 ms | p95 ms | p99 ms | error rate | req/s | verdict |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for s in [*c.steps, c.overall]:
        d = s.deltas()
        n = f"{s.a.count if s.a else 0} → {s.b.count if s.b else 0}"
        cells = [_md_delta(d[k], pct=k == "error_rate") for k in ("p50_ms", "p95_ms", "p99_ms", "error_rate", "rps")]
        lines.append(f"| {_md(s.label)} | {n} | " + " | ".join(cells) + f" | {s.verdict} |")
    lines += ["", "## Why", ""]
    lines += [f"- **{_md(s.label)}**: {s.verdict}: {_md(s.reason)}" for s in [*c.steps, c.overall]]
    if c.notes:
        lines += ["", "## Notes", ""] + [f"- {_md(n)}" for n in c.notes]
    return "\n".join(lines) + "\n"


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_delta(d: Delta, pct: bool = False) -> str:
    def fmt(v: float | None) -> str:
        if v is None:
            return "–"
        return f"{v * 100:.2f} %" if pct else f"{v:.2f}"

    rel = d.relative
    change = "" if rel is None else f" ({rel:+.1%})"
    return f"{fmt(d.a)} → {fmt(d.b)}{change}"
