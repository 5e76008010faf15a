"""SLO values are shown in their metric's unit: ms for latency, % for errors, requests/s for throughput."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import print_summary
from orchestrator.run import ToolRun
from warehouse.analysis.slo import Objective, Verdict

VERDICTS = [
    Verdict(Objective("throughput", 50).label, "overall", "throughput", 50, 61.25, True),
    Verdict(Objective("p95", 500).label, "overall", "p95", 500, 120.5, True),
    Verdict(Objective("error_rate", 0.01).label, "overall", "error_rate", 0.01, 0.002, True),
]


@pytest.mark.parametrize(("verdict", "text"), zip(VERDICTS, ["61.25 requests/s", "120.50 ms", "0.20 %"],
                                                   strict=True))
def test_observed_value_carries_its_unit(verdict: Verdict, text: str) -> None:
    assert verdict.observed_text == text


def test_run_summary_prints_throughput_in_requests_per_second(capsys: pytest.CaptureFixture[str]) -> None:
    print_summary([ToolRun("k6", "r1", "completed", Path("."), verdicts=VERDICTS)])
    out = capsys.readouterr().out
    assert "overall throughput >= 50/s  (observed 61.25 requests/s)" in out
    assert "requests/s" in out and "61.25 ms" not in out
