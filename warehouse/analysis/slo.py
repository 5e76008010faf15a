"""SLO verdicts: each objective observed on a run's requests, stored beside the run."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from warehouse.engine.backends import Backend
from warehouse.read import queries
from warehouse.read.records import Row

LATENCY = ("p50", "p90", "p95", "p99", "avg", "max")
# Any percentile of duration: p75, p99.9 (above 0, below 100).
PERCENTILE = re.compile(r"p([1-9][0-9]?(?:\.[0-9]+)?)")


def percentile_level(metric: str) -> float | None:
    """The quantile level (0.75 for p75, 0.999 for p99.9) a metric names, or None if it is no percentile."""
    m = PERCENTILE.fullmatch(metric)
    return float(m[1]) / 100 if m else None
# The ratio metrics and which failure of a request each counts (queries.FAILURES defines them).
RATES = {f.name: f for f in queries.FAILURES}


@dataclass(frozen=True)
class Objective:
    """An SLO within a scope: a latency metric (ms), error_rate (the share of requests with a request error) or
    check_failure_rate (the share with a failed check) must stay below `threshold`; throughput (requests/s) must
    reach it."""

    metric: str
    threshold: float
    journey: str = ""
    step: str = ""
    abort_on_fail: bool = False
    service: str = ""
    # A script's own threshold: the tool's verdict (which stands), and the threshold as the script writes it; its
    # metric is "" when it maps onto no warehouse metric (then nothing is observed beside it).
    judged: bool | None = None
    name: str = ""

    @property
    def scope(self) -> str:
        parts = "/".join(p for p in (self.journey, self.step) if p)
        if self.service:
            parts = f"{parts} @{self.service}" if parts else f"service {self.service}"
        return parts or "overall"

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.metric in RATES:  # the label says which failure it counts
            return f"{self.scope} {self.metric} < {self.threshold * 100:g}% ({RATES[self.metric].kind}s)"
        if self.metric == "throughput":
            return f"{self.scope} throughput >= {self.threshold:g}/s"
        return f"{self.scope} {self.metric} < {self.threshold:g} ms"

    @property
    def level(self) -> float:
        """The percentile level of a pNN objective (0.5 for any other metric: the query needs one)."""
        return percentile_level(self.metric) or 0.5

    def holds(self, observed: float) -> bool:
        return observed >= self.threshold if self.metric == "throughput" else observed < self.threshold


@dataclass(frozen=True)
class Verdict(Row):
    slo: str
    scope: str
    metric: str
    threshold: float
    observed: float | None
    passed: bool

    @property
    def observed_text(self) -> str:
        """The observed value in the metric's unit: %, requests/s or ms ("no data" when none)."""
        if self.observed is None:
            return "no data"
        if self.metric in RATES:
            return f"{self.observed * 100:.2f} %"
        if self.metric == "throughput":
            return f"{self.observed:.2f} requests/s"
        return f"{self.observed:.2f} ms"


def observe(backend: Backend, run_id: str, objective: Objective) -> Verdict:
    if not objective.metric:
        return _verdict(objective, None)
    row = backend.query(
        queries.SLO_OBSERVATION,
        {"run": run_id, "journey": objective.journey, "step": objective.step, "service": objective.service,
         "level": objective.level},
    )[0]
    column = "percentile" if percentile_level(objective.metric) is not None else objective.metric
    return _verdict(objective, row[column] if int(row["count"]) else None)


def observe_all(backend: Backend, run_id: str, objectives: list[Objective]) -> list[Verdict]:
    """Every objective observed, in one query over the run's requests (SLO_OBSERVATIONS: a group per scope,
    the percentiles at all the objectives' levels at once); one query per objective past LEVEL_SLOTS levels."""
    levels = sorted({o.level for o in objectives})
    if not objectives or len(levels) > queries.LEVEL_SLOTS:
        return [observe(backend, run_id, o) for o in objectives]
    slots = levels + levels[-1:] * (queries.LEVEL_SLOTS - len(levels))
    scopes = sorted({(o.journey, o.step, o.service) for o in objectives})
    rows = backend.query(queries.SLO_OBSERVATIONS, {
        "run": run_id, "journeys": [s[0] for s in scopes], "steps": [s[1] for s in scopes],
        "services": [s[2] for s in scopes], **{f"q{n}": level for n, level in enumerate(slots, 1)}})
    by_scope = {(r["scope_journey"], r["scope_step"], r["scope_service"]): r for r in rows}
    verdicts = []
    for o in objectives:
        row = by_scope.get((o.journey, o.step, o.service))
        value = None
        if row is not None and int(row["count"]) and o.metric:
            value = row["levels"][levels.index(o.level)] if percentile_level(o.metric) is not None else row[o.metric]
        verdicts.append(_verdict(o, value))
    return verdicts


def _verdict(objective: Objective, value: Any) -> Verdict:
    observed = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    passed = objective.judged if objective.judged is not None else observed is not None and objective.holds(observed)
    return Verdict(objective.label, objective.scope, objective.metric, objective.threshold, observed, passed)


def evaluate(backend: Backend, run_id: str, objectives: list[Objective]) -> list[Verdict]:
    """Observe every objective and store the verdicts in one insert (re-evaluating replaces them)."""
    with backend.session():
        return _evaluate(backend, run_id, objectives)


def _evaluate(backend: Backend, run_id: str, objectives: list[Objective]) -> list[Verdict]:
    verdicts = observe_all(backend, run_id, objectives)
    if verdicts:
        backend.command(
            "INSERT INTO slo_results (run_id, slo, scope, metric, threshold, observed, passed, evaluated_at) "
            "SELECT {run:String}, v.1, v.2, v.3, v.4, v.5, v.6, now64(3) FROM (SELECT arrayJoin("
            "{verdicts:Array(Tuple(String, String, String, Float64, Nullable(Float64), UInt8))}) AS v)",
            {"run": run_id,
             "verdicts": [(v.slo, v.scope, v.metric, v.threshold, v.observed, int(v.passed)) for v in verdicts]},
        )
    return verdicts


def stored(backend: Backend, run_id: str) -> list[Verdict]:
    return [
        Verdict(
            r["slo"],
            r["scope"],
            r["metric"],
            float(r["threshold"]),
            None if r["observed"] is None else float(r["observed"]),
            bool(r["passed"]),
        )
        for r in backend.query(queries.SLO_RESULTS, {"run": run_id})
    ]
