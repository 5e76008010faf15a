"""Report figures (warehouse.read.records.Figures) for tests of what reads them: the given figures, the rest empty."""

from __future__ import annotations

from typing import Any

from warehouse.read.records import Figures


def figures(**given: Any) -> Figures:
    """Percentiles are given as p50_ms, p99.9_ms...; a span_s makes them the whole run's, else a step's."""
    levels = {k.removesuffix("_ms"): given.pop(k) for k in [k for k in given if k[0] == "p" and k.endswith("_ms")]}
    empty: dict[str, Any] = {"count": 0, "errors": 0, "check_failures": 0, "checks_total": 0, "checks_failed": 0,
                             "total_ms": 0.0, "avg_ms": 0.0, "max_ms": 0.0, "error_rate": None,
                             "check_failure_rate": None, "apdex": None, "throughput": 0.0}
    return Figures(**{**empty, **given, "percentiles": levels})
