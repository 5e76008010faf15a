"""Any percentile, exact over every sample: a real JMeter run's p75 and p99.9 per step against the same
percentiles computed here from the JTL, on both backends; an SLO on p99.9 observes the same value."""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from pathlib import Path

import pytest

from warehouse.analysis import slo
from warehouse.analysis.slo import Objective
from warehouse.report.reports import ReportOptions, build_group_report, parse_percentiles
from warehouse.store import Warehouse
from warehouse.tools.jmeter.jtl_csv import TRANSACTION_MESSAGE

pytestmark = pytest.mark.integration


def exact_percentile(values: list[float], percent: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default `linear` method)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * percent / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def durations_by_step(jtl: Path) -> dict[tuple[str, str], list[float]]:
    """JMeter 2.13's headerless CSV: elapsed (ms) per (thread group, label), transaction samples left out."""
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    with jtl.open(newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            _, elapsed, label, _, message, thread = row[:6]
            if message.startswith(TRANSACTION_MESSAGE):
                continue
            out[(re.sub(r"\s+[0-9]+-[0-9]+$", "", thread), label)].append(float(elapsed))
    return out


def test_p75_and_p99_9_of_a_jmeter_run_equal_the_exact_percentiles_of_its_jtl(any_warehouse_url: str,
                                                                              jtl_output: Path) -> None:
    wh = Warehouse.open(any_warehouse_url)
    run_id = wh.ingest(jtl_output).run_id
    doc = build_group_report(wh, wh.run_group(run_id), ReportOptions(parse_percentiles("50,75,95,99,99.9")))
    report = doc.runs[0]
    expected = durations_by_step(jtl_output)
    assert {(s.journey, s.step) for s in report.steps} == set(expected)
    for s in report.steps:
        values = expected[(s.journey, s.step)]
        assert s.count == len(values)
        for percent, label in ((75, "p75"), (99.9, "p99.9"), (50, "p50")):
            assert s.percentile(label) == pytest.approx(exact_percentile(values, percent), abs=0.01), (s.step, label)
    everything = [v for values in expected.values() for v in values]
    assert report.totals.percentile("p99.9") == pytest.approx(exact_percentile(everything, 99.9), abs=0.01)
    assert report.percentiles == ["p50", "p75", "p95", "p99", "p99.9"]

    verdicts = slo.evaluate(wh.backend, run_id, [Objective("p99.9", 1e9), Objective("p75", 0.001)])
    assert [v.slo for v in verdicts] == ["overall p99.9 < 1e+09 ms", "overall p75 < 0.001 ms"]
    assert verdicts[0].observed == pytest.approx(exact_percentile(everything, 99.9), abs=0.01)
    assert verdicts[0].passed and not verdicts[1].passed
