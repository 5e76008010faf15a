"""The warehouse's read records: each has its query's columns in the query's order, so `to_dict` is the row as
the query gives it (and any JSON printed from it keeps its keys and their order)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from warehouse.analysis import slo
from warehouse.read import queries, records

BY_QUERY: dict[str, type[Any]] = {
    "RUN": records.RunRecord, "RUNS": records.RunListing, "STEP_STATS": records.StepStats,
    "ERRORS_BY_CAUSE": records.ErrorCause, "RUN_LIST": records.RunListRow, "RUN_CHOICES": records.RunChoice,
    "RUN_FACETS": records.RunFacets, "RUN_GROUPS": records.RunGroup, "FINGERPRINTS": records.FingerprintHistory,
    "TABLE_COLUMNS": records.TableColumn, "LATENCY_OVER_TIME": records.LatencyBucket,
    "INFRA_OVER_TIME": records.InfraBucket, "INFRA_SAMPLES": records.InfraSample,
    "AGGREGATES": records.IntervalAggregate, "COMPARISONS": records.StoredComparison,
    "GATE_OUTCOMES": records.GateOutcome, "GATE_OUTCOME_OF_RUN": records.GateOutcome, "TOOL_STEP_FIGURES": records.ToolStepAggregate,
    "TOOL_TIMELINE": records.ToolInterval, "REPORT_TOTALS": records.ReportTotalsRow,
    "REPORT_STEPS": records.ReportStepRow, "REPORT_TIMELINE": records.ReportBucket,
    "REPORT_INFRA": records.ReportInfraMean, "REPORT_LOAD_LEVEL": records.LoadLevel,
    "REPORT_WINDOWS": records.ReportWindow,
}


@pytest.mark.parametrize(("query", "record"), BY_QUERY.items(), ids=list(BY_QUERY))
def test_a_record_has_its_querys_columns_in_order(query: str, record: type[Any]) -> None:
    selected = queries.check(getattr(queries, query)).named_selects
    assert [f.name for f in fields(record)] == selected


def test_a_row_round_trips_through_its_record_unchanged() -> None:
    row = {"run_id": "r1", "name": "n", "tool": "k6", "tool_version": "1.1.0", "spec_name": "shop", "profile": "ci",
           "status": "completed", "source": "perfhouse", "environment": "", "git_sha": "abc", "branch": "main",
           "started_at": "2026-01-01 00:00:00.000", "ended_at": None, "notes": "", "group_id": "", "fingerprint": "f",
           "requests": 10, "errors": 1, "slos": 2, "slos_failed": 0}
    listed = records.RunListRow.of(row)
    assert list(listed.to_dict().items()) == list(row.items())
    sample = {"ts": "2026-01-01 00:00:01.000", "source": "s", "metric": "m", "labels": {"pool": "db"}, "value": None}
    assert list(records.InfraSample.of(sample).to_dict().items()) == list(sample.items())


def test_facets_leave_out_empty_values_and_name_only_filtered_columns() -> None:
    facets = records.RunFacets.of({"tool": ["jmeter", "k6"], "spec_name": ["", "shop"], "profile": [""],
                                   "branch": [], "environment": ["staging"], "status": ["completed"],
                                   "first_started": "2026-01-01 00:00:00.000",
                                   "last_started": "2026-01-02 00:00:00.000", "runs": 3})
    assert (facets.values("spec_name"), facets.values("profile"), facets.runs) == (["shop"], [], 3)
    with pytest.raises(KeyError):
        facets.values("runs")


def test_a_distribution_runs_from_the_minimum_through_its_quantiles_to_the_maximum() -> None:
    found = records.LatencyDistribution.of({"run_id": "r1", "count": 4, "min_ms": 1, "max_ms": 9,
                                            "levels": [2, 5]}, (0.5, 0.9))
    assert found.to_dict() == {"run_id": "r1", "count": 4, "points": [
        {"ms": 1.0, "fraction": 0.0}, {"ms": 2.0, "fraction": 0.5}, {"ms": 5.0, "fraction": 0.9},
        {"ms": 9.0, "fraction": 1.0}]}


def test_a_load_windows_figures_are_every_slo_metric_but_percentiles_and_throughput() -> None:
    """A stepped load's step is judged on each SLO its scope has: every non-percentile metric an SLO can name
    (throughput aside, which a step does not judge) is a figure of the window, read by its name."""
    named = {m for m in slo.LATENCY if slo.percentile_level(m) is None} | set(slo.RATES)
    assert named == set(records.ReportWindow.FIGURES)
    window = records.ReportWindow.of({"part": 2, "count": 40, "errors": 4, "error_rate": 0.1,
                                      "check_failure_rate": 0.05, "avg": 12.5, "max": 80.0, "levels": [9.0, 30.0]})
    assert [window.figure(m) for m in ("error_rate", "check_failure_rate", "avg", "max")] == [0.1, 0.05, 12.5, 80.0]
    with pytest.raises(KeyError):
        window.figure("count")
