"""Compare two runs per step and overall: percentiles, error rate and throughput, and a verdict per step.

The figures and the significance test come from ClickHouse over the request samples (warehouse/queries.py
COMPARE_STATS, COMPARE_TESTS); the decision is pure (`decide`). The test is Kolmogorov-Smirnov, which sees a
change anywhere in the distribution (a slower tail as well as a shifted median); Mann-Whitney U, which
ClickHouse also offers, sees only a shift of location and costs several times as much on a million requests.
On runs this large any test finds the smallest shift significant: the floor, not the p-value, decides.

A verdict on a step's latency looks at the p95 shift d = ln(p95_B / p95_A) with its sampling error (from the
order statistics: the density at p95 is read from p94 and p96), and at a floor: the change that matters,
which is never less than what the history of comparable runs moves by itself (NOISE_K times the run-to-run
spread of ln p95 over the last runs of the fingerprint) and, without such a history, DEFAULT_FLOOR.

- WORSE (BETTER): d beyond the floor, its confidence interval clear of zero, and the distributions differ
  (Kolmogorov-Smirnov p-value below ALPHA);
- SAME: the confidence interval lies within the floor on both sides;
- INCONCLUSIVE: anything else, i.e. a shift the sampling error and the history's noise cannot resolve,
  or fewer than MIN_SAMPLES requests in either run.
The error rate is judged alike on its absolute change (two-proportion test, ERROR_FLOOR). A step is WORSE
if either is; otherwise INCONCLUSIVE if either is, BETTER if either is, else SAME.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from warehouse import queries
from warehouse.analysis.changepoints import segments_of
from warehouse.backends import Backend
from warehouse.errors import DataError
from warehouse.records import RunRecord
from warehouse.store import Warehouse

MIN_SAMPLES = 200  # at least 10 samples above the p95 of each run
MIN_HISTORY = 5  # comparable runs needed to measure the run-to-run noise
HISTORY_RUNS = 30  # the newest comparable runs the noise is measured on
NOISE_K = 3.0  # the floor is this many times the run-to-run spread of ln p95
DEFAULT_FLOOR = 0.05  # relative p95 change that matters when there is no history
MIN_FLOOR = 0.02  # the floor never drops below this, however quiet the history
ALPHA = 0.01  # significance of the Kolmogorov-Smirnov test
Z_SHIFT = 2.576  # a WORSE or BETTER shift's two-sided 99 % interval must be clear of zero
Z_SAME = 1.645  # a SAME shift's 90 % interval must lie within the floor
ERROR_FLOOR = 0.01  # an absolute error-rate change of one percentage point matters

TOOL_DIFFERENCES = (
    "k6 times a request from sending to the last byte received (http_req_duration: no DNS, connect or TLS); "
    "JMeter's elapsed time also holds connecting and is whole milliseconds in JMeter 2.x",
    "a request error is one row with ok = 0: k6's http_req_failed (an unexpected status or transport failure), "
    "JMeter's sample success, which a failed assertion also clears",
    "think time and pacing are the tools' own: throughput differs by their scheduling, not by the target",
)


class CompareVerdict(enum.StrEnum):
    BETTER = "BETTER"
    SAME = "SAME"
    WORSE = "WORSE"
    INCONCLUSIVE = "INCONCLUSIVE"


_RANK = {CompareVerdict.WORSE: 3, CompareVerdict.INCONCLUSIVE: 2, CompareVerdict.BETTER: 1, CompareVerdict.SAME: 0}


def worst(verdicts: Sequence[CompareVerdict]) -> CompareVerdict:
    """WORSE over INCONCLUSIVE over BETTER over SAME; SAME for none."""
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
    """The run-to-run spread of a step's ln p95 over the history of comparable runs (None: too short)."""

    runs: int = 0
    sigma: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "sigma": self.sigma}


def history_noise(p95s: Sequence[float], min_runs: int = MIN_HISTORY) -> Noise:
    """The spread of ln p95 over a history, oldest first: the pooled standard deviation within the segments
    between its change points, so that an earlier regression or fix does not count as noise."""
    values = [math.log(v) for v in p95s if v is not None and v > 0 and math.isfinite(v)]
    if len(values) < min_runs:
        return Noise(len(values), None)
    squares, dof = 0.0, 0
    for seg in segments_of(values):
        if len(seg) > 1:
            mean = sum(seg) / len(seg)
            squares += sum((v - mean) ** 2 for v in seg)
            dof += len(seg) - 1
    return Noise(len(values), math.sqrt(squares / dof) if dof else None)


@dataclass(frozen=True)
class Policy:
    """The constants of a verdict (module docstring); tests and callers may tighten them."""

    min_samples: int = MIN_SAMPLES
    noise_k: float = NOISE_K
    default_floor: float = DEFAULT_FLOOR
    min_floor: float = MIN_FLOOR
    alpha: float = ALPHA
    z_shift: float = Z_SHIFT
    z_same: float = Z_SAME
    error_floor: float = ERROR_FLOOR

    def floor(self, noise: Noise) -> float:
        if noise.sigma is None:
            return self.default_floor
        return max(self.min_floor, math.expm1(self.noise_k * noise.sigma))


@dataclass(frozen=True)
class Decision:
    verdict: CompareVerdict
    reason: str
    latency: CompareVerdict = CompareVerdict.INCONCLUSIVE
    errors: CompareVerdict = CompareVerdict.INCONCLUSIVE
    floor: float = DEFAULT_FLOOR
    shift: float | None = None  # relative p95 change, B against A
    interval: tuple[float, float] | None = None  # its 99 % interval (relative)


def decide(a: Side, b: Side, p_value: float | None, noise: Noise, policy: Policy = Policy()) -> Decision:
    """The verdict on B against A for one step (module docstring)."""
    floor = policy.floor(noise)
    if min(a.count, b.count) < policy.min_samples:
        fewer = "A" if a.count < b.count else "B"
        reason = (f"too few samples for a verdict: run {fewer} has {min(a.count, b.count)}, "
                  f"a sound verdict needs {policy.min_samples}")
        return Decision(CompareVerdict.INCONCLUSIVE, reason, floor=floor)
    latency, shift, interval, why = _latency(a, b, p_value, floor, policy)
    errors, error_why = _errors(a, b, policy)
    reasons = [why] + ([error_why] if errors != CompareVerdict.SAME else [])
    return Decision(worst([latency, errors]), "; ".join(reasons), latency, errors, floor, shift, interval)


def _latency(
    a: Side, b: Side, p_value: float | None, floor: float, policy: Policy
) -> tuple[CompareVerdict, float | None, tuple[float, float] | None, str]:
    if not a.p95 or not b.p95 or a.p95 <= 0 or b.p95 <= 0:
        return CompareVerdict.INCONCLUSIVE, None, None, "no latency to compare"
    d = math.log(b.p95 / a.p95)
    se = math.hypot(a.p95_log_se(), b.p95_log_se())
    lo, hi = d - policy.z_shift * se, d + policy.z_shift * se
    limit = math.log1p(floor)
    significant = p_value is not None and p_value < policy.alpha
    shift, interval = math.expm1(d), (math.expm1(lo), math.expm1(hi))
    said = f"p95 {shift:+.1%} (99 % interval {interval[0]:+.1%} to {interval[1]:+.1%}), floor ±{floor:.1%}"
    if d > limit and lo > 0 and significant:
        return CompareVerdict.WORSE, shift, interval, f"slower: {said}"
    if d < -limit and hi < 0 and significant:
        return CompareVerdict.BETTER, shift, interval, f"faster: {said}"
    if -limit < d - policy.z_same * se and d + policy.z_same * se < limit:
        return CompareVerdict.SAME, shift, interval, f"within the floor: {said}"
    return CompareVerdict.INCONCLUSIVE, shift, interval, f"not resolved: {said}"


def _errors(a: Side, b: Side, policy: Policy) -> tuple[CompareVerdict, str]:
    ea, eb = a.errors / a.count, b.errors / b.count
    pooled = (a.errors + b.errors) / (a.count + b.count)
    se = math.sqrt(pooled * (1 - pooled) * (1 / a.count + 1 / b.count))
    delta = eb - ea
    said = f"error rate {ea:.2%} → {eb:.2%}"
    if delta > policy.error_floor and delta - policy.z_shift * se > 0:
        return CompareVerdict.WORSE, f"more errors: {said}"
    if delta < -policy.error_floor and delta + policy.z_shift * se < 0:
        return CompareVerdict.BETTER, f"fewer errors: {said}"
    if abs(delta) + policy.z_same * se < policy.error_floor:
        return CompareVerdict.SAME, said
    return CompareVerdict.INCONCLUSIVE, f"error rate change not resolved: {said}"


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

    @property
    def verdict(self) -> CompareVerdict:
        """WORSE if any step is; else INCONCLUSIVE if any is; BETTER if any is; else SAME."""
        return worst([s.verdict for s in self.steps] or [self.overall.verdict])

    @property
    def worse(self) -> list[StepComparison]:
        return [s for s in self.steps if s.verdict == CompareVerdict.WORSE]

    def to_dict(self) -> dict[str, Any]:
        return _finite({
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
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
    """Compare run B against run A (rows of queries.RUN). The noise per (journey, step) ('', '' overall) is
    measured on B's fingerprint's history before B unless given."""
    a_id, b_id = run_a.run_id, run_b.run_id
    sides: dict[tuple[str, str], dict[str, Side]] = {}
    with backend.session():
        stats = backend.query(queries.COMPARE_STATS, {"a": a_id, "b": b_id})
        spans = {str(r["run_id"]): float(r["span_s"]) for r in stats if r["overall"]}
        for r in stats:
            key = ("", "") if r["overall"] else (str(r["journey"]), str(r["step"]))
            side = Side(int(r["count"]), int(r["errors"]), _num(r["p50"]), _num(r["p95"]), _num(r["p99"]),
                        _num(r["q94"]), _num(r["q96"]), int(r["count"]) / spans[str(r["run_id"])])
            sides.setdefault(key, {})["a" if r["run_id"] == a_id else "b"] = side
        both = [k for k, pair in sides.items() if k != ("", "") and len(pair) == 2]
        partial = len(both) < len(sides) - 1
        tests = backend.query(queries.COMPARE_TESTS, {
            "a": a_id, "b": b_id, "journeys": [k[0] for k in both] if partial else [],
            "steps": [k[1] for k in both] if partial else []}) if both else []
        if noise is None:
            noise = measured_noise(backend, run_b.fingerprint, b_id, run_b.started_at)
    pvalues = {("", "") if r["overall"] else (str(r["journey"]), str(r["step"])): _num(r["ks_p"]) for r in tests}
    rows = []
    for key in sorted(sides, key=lambda k: (k == ("", ""), k)):
        pair = sides[key]
        ks_p = pvalues.get(key)
        step_noise = noise.get(key, Noise())
        floor = policy.floor(step_noise)
        if "a" not in pair or "b" not in pair:
            only = "B" if "b" in pair else "A"
            rows.append(StepComparison(key[0], key[1], pair.get("a"), pair.get("b"), CompareVerdict.INCONCLUSIVE,
                                       f"only run {only} has this step", step_noise, floor, ks_p))
            continue
        d = decide(pair["a"], pair["b"], ks_p, step_noise, policy)
        rows.append(StepComparison(key[0], key[1], pair["a"], pair["b"], d.verdict, d.reason, step_noise, d.floor,
                                   ks_p, d.shift, d.interval))
    steps = [s for s in rows if not s.overall]
    overall = next((s for s in rows if s.overall), None) or StepComparison(
        "", "", None, None, CompareVerdict.INCONCLUSIVE, "neither run has requests")
    notes = []
    if not any(n.sigma is not None for n in noise.values()):
        notes.append(f"no history of {MIN_HISTORY}+ comparable runs: a default floor of ±{policy.default_floor:.0%} "
                     "on the p95 applies")
    if run_a.fingerprint != run_b.fingerprint:
        notes.append("the runs have different fingerprints (spec, journeys, profile, tool, environment or labels): "
                     "differences may come from that, not from the system under test")
    for described, name in ((run_a, "A"), (run_b, "B")):
        if described.status not in ("completed", "imported"):
            notes.append(f"run {name} is {described.status}: its figures cover only part of the run")
    return Comparison(run_a, run_b, steps, overall, how, notes)


def store_comparison(backend: Backend, comparison: Comparison) -> None:
    """Keep a comparison's per-step verdicts (and overall: journey and step empty); comparing again replaces."""
    for s in [*comparison.steps, comparison.overall]:
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
            {"run": comparison.b.run_id, "baseline": comparison.a.run_id, **row},
        )


def stored_comparisons(backend: Backend, run_id: str, baseline_id: str = "") -> list[dict[str, Any]]:
    return backend.query(queries.COMPARISONS, {"run": run_id, "baseline": baseline_id})


def measured_noise(backend: Backend, fingerprint: str, before_run: str, before: str,
                   runs: int = HISTORY_RUNS) -> dict[tuple[str, str], Noise]:
    """The run-to-run noise of each step's p95 (and overall) over the newest `runs` comparable runs before."""
    if not fingerprint:
        return {}
    rows = backend.query(queries.NOISE_HISTORY, {"fingerprint": fingerprint, "spec": "", "before": before,
                                                "exclude": before_run, "runs": runs})
    series: dict[tuple[str, str], list[float]] = {}
    for r in rows:  # oldest first
        p95 = _num(r["p95"])
        if p95 is not None:
            series.setdefault((str(r["journey"]), str(r["step"])), []).append(p95)
    return {key: history_noise(values) for key, values in series.items()}


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
    a group id), the k6 run of that invocation against its JMeter run."""
    from warehouse.analysis.baseline import resolve_baseline

    with warehouse.backend.session():
        if group is not None:
            rows = warehouse.backend.query(queries.LATEST_GROUP, {"group": "" if group == "latest" else group})
            if len(rows) < 2:
                raise DataError(f"no group {'of several runs' if group == 'latest' else repr(group)} to compare: "
                                "run a spec with --tool k6,jmeter")
            ordered = sorted(rows, key=lambda r: (r["tool"] != "k6", r["tool"]))
            run_a, run_b = warehouse.run(str(ordered[0]["run_id"])), warehouse.run(str(ordered[1]["run_id"]))
            result = compare_runs(warehouse.backend, run_a, run_b, "group", policy=policy)
            result.notes = [n for n in result.notes if not n.startswith("the runs have different fingerprints")]
            result.notes += [f"{run_a.tool} against {run_b.tool} of group {run_a.group_id}: "
                             "the tools measure differently, so a difference is not a regression",
                             *TOOL_DIFFERENCES]
            return result
        if a is not None and b is not None:
            run_a, run_b = warehouse.run(warehouse.resolve(a)), warehouse.run(warehouse.resolve(b))
            return compare_runs(warehouse.backend, run_a, run_b, "named", policy=policy)
        b_id = warehouse.resolve(a if a is not None else "latest")
        chosen = resolve_baseline(warehouse, b_id, baseline)
        return compare_runs(warehouse.backend, warehouse.run(chosen.run_id), warehouse.run(b_id), chosen.how,
                            policy=policy)


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
