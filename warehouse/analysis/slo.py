"""SLO verdicts: each objective observed on a run's requests, stored beside the run."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from warehouse import queries
from warehouse.backends import Backend

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

    @property
    def scope(self) -> str:
        parts = "/".join(p for p in (self.journey, self.step) if p)
        if self.service:
            parts = f"{parts} @{self.service}" if parts else f"service {self.service}"
        return parts or "overall"

    @property
    def label(self) -> str:
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
class Verdict:
    slo: str
    scope: str
    metric: str
    threshold: float
    observed: float | None
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

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
    row = backend.query(
        queries.SLO_OBSERVATION,
        {"run": run_id, "journey": objective.journey, "step": objective.step, "service": objective.service,
         "level": objective.level},
    )[0]
    column = "percentile" if percentile_level(objective.metric) is not None else objective.metric
    value = row[column] if int(row["count"]) else None
    observed = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    passed = observed is not None and objective.holds(observed)
    return Verdict(objective.label, objective.scope, objective.metric, objective.threshold, observed, passed)


def evaluate(backend: Backend, run_id: str, objectives: list[Objective]) -> list[Verdict]:
    """Observe every objective and store the verdicts (re-evaluating replaces them)."""
    verdicts = [observe(backend, run_id, o) for o in objectives]
    for v in verdicts:
        backend.command(
            "INSERT INTO slo_results (run_id, slo, scope, metric, threshold, observed, passed, evaluated_at) "
            "VALUES ({run:String}, {slo:String}, {scope:String}, {metric:String}, {threshold:Float64}, "
            "{observed:Nullable(Float64)}, {passed:UInt8}, now64(3))",
            {
                "run": run_id,
                "slo": v.slo,
                "scope": v.scope,
                "metric": v.metric,
                "threshold": v.threshold,
                "observed": v.observed,
                "passed": int(v.passed),
            },
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
