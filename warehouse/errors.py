"""The exit statuses of every perfhouse command, and the errors the warehouse raises with theirs.

The enum lives here, at the bottom of the package graph, so that the warehouse, the orchestrator and the
CLI share it without the warehouse importing the orchestrator.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """What a perfhouse process's exit status means (README "Exit statuses")."""

    OK = 0
    ERROR = 1  # a tool or the warehouse failed
    USAGE = 2  # bad arguments, or data that cannot answer (no such run, no baseline to compare with)
    SLO_FAILED = 3  # an SLO does not hold
    SPEC_INVALID = 4
    TOOL_MISSING = 5
    TARGET_UNREACHABLE = 6
    BAD_INPUT = 7  # a results file with rejected lines, or one that cannot be ingested
    REGRESSION = 8  # a step is WORSE than the baseline
    RUN_INCOMPLETE = 9  # the judged run was aborted or is incomplete: partial data decides nothing
    INCONCLUSIVE = 10  # `gate --inconclusive fail`: a row too thin or too noisy to judge
    ABORTED = 130  # this process was interrupted (Ctrl-C, SIGTERM)


class WarehouseError(Exception):
    """The warehouse cannot be opened or a query failed."""

    exit_status = ExitStatus.ERROR


class WarehouseBusy(WarehouseError):
    """Another process holds the embedded warehouse longer than the bounded wait."""


class DataError(WarehouseError):
    """The warehouse cannot answer what was asked: no such run, no baseline, nothing to compare."""

    exit_status = ExitStatus.USAGE


class IngestError(WarehouseError):
    """A results file that cannot be ingested at all (wrong tool, empty, unreadable)."""

    exit_status = ExitStatus.BAD_INPUT
