"""Errors raised by the warehouse; each carries the process exit status the CLI should use."""

from __future__ import annotations


class WarehouseError(Exception):
    """The warehouse cannot be opened or a query failed."""

    exit_status = 1


class WarehouseBusy(WarehouseError):
    """Another process holds the embedded warehouse longer than the bounded wait."""


class IngestError(WarehouseError):
    """A results file that cannot be ingested at all (wrong tool, empty, unreadable)."""

    exit_status = 7
