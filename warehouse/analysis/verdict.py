"""A run's verdict: what its SLOs say, and whether its data can say anything at all."""

from __future__ import annotations

import enum
from collections.abc import Sequence

from warehouse.analysis.slo import Verdict


class RunVerdict(enum.StrEnum):
    PASSED = "PASSED"  # every SLO holds on a complete run
    FAILED = "FAILED"  # an SLO does not hold
    NO_SLOS = "NO SLOS"  # a complete run with no SLO to judge it by
    ABORTED = "ABORTED"  # interrupted: partial data is never a pass
    INCOMPLETE = "INCOMPLETE"  # a tool died midway, or the run never finished

    @property
    def judged(self) -> bool:
        """Whether the run's data was complete enough to be judged."""
        return self not in (RunVerdict.ABORTED, RunVerdict.INCOMPLETE)


# A run's status (warehouse.store.RUN_STATUSES) that decides before any SLO does.
_BY_STATUS = {"aborted": RunVerdict.ABORTED, "failed": RunVerdict.INCOMPLETE, "running": RunVerdict.INCOMPLETE}


def run_verdict(status: str, slos: Sequence[Verdict]) -> RunVerdict:
    """ABORTED or INCOMPLETE by the run's status; else FAILED if an SLO fails, PASSED if all hold, NO SLOS."""
    return verdict_of(status, len(slos), sum(not v.passed for v in slos))


def verdict_of(status: str, judged: int, failed: int) -> RunVerdict:
    """The same verdict from how many SLOs were judged and failed (the dashboard's runs list counts them in SQL)."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if not judged:
        return RunVerdict.NO_SLOS
    return RunVerdict.FAILED if failed else RunVerdict.PASSED


# The most severe first: a group's verdict is the first of these that one of its runs has.
_SEVERITY = (RunVerdict.ABORTED, RunVerdict.INCOMPLETE, RunVerdict.FAILED, RunVerdict.NO_SLOS, RunVerdict.PASSED)


def group_verdict(verdicts: Sequence[str]) -> RunVerdict:
    """The verdict of several runs (the k6 and JMeter runs of one invocation): the most severe of theirs."""
    return next((v for v in _SEVERITY if v in verdicts), RunVerdict.NO_SLOS)
