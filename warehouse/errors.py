"""The exit statuses of every perfhouse command, the root of perfhouse's one exception hierarchy, and the errors
the warehouse raises.

Both live here, at the bottom of the package graph, so that the warehouse, the orchestrator and the CLI share
them without the warehouse importing the orchestrator: every error a user can meet is a PerfhouseError, whose
class says its exit status (`exit_status`); orchestrator.errors adds the orchestrator's own under the same root,
and the CLI's one boundary (cli.fail_cleanly) prints any of them as one line and exits with that status.
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


class PerfhouseError(Exception):
    """The root of every perfhouse error: a message a user can act on, and the exit status it maps to."""

    exit_status = ExitStatus.ERROR


class WarehouseError(PerfhouseError):
    """The warehouse cannot be opened or a query failed."""


class WarehouseBusy(WarehouseError):
    """Another process holds the embedded warehouse longer than the bounded wait."""


class DataError(WarehouseError):
    """The warehouse cannot answer what was asked: no such run, no baseline, nothing to compare."""

    exit_status = ExitStatus.USAGE


class IngestError(WarehouseError):
    """A results file that cannot be ingested at all (wrong tool, empty, unreadable)."""

    exit_status = ExitStatus.BAD_INPUT
