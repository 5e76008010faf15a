"""Every SQL statement perfhouse sends, caught where it leaves the process: chdb's session (embedded backend) and
clickhouse-connect's client (server backend). Test-only; the statements are then parsed with sqlglot.

The wrappers sit on the two drivers, not on perfhouse's own modules, so whatever a statement's module or path
through the warehouse, it is seen, and what is seen is the text ClickHouse gets (after the backend has rendered
it: `{input}` replaced, settings appended, parameters inlined where the server backend inlines them)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock


@dataclass
class Recorder:
    """The statements seen, each with where it went ("chdb", "server", or "printed"), in first-seen order."""

    statements: dict[str, set[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sql: str, via: str) -> None:
        with self._lock:
            self.statements.setdefault(sql, set()).add(via)

    def printed(self, sql: str) -> None:
        """A statement perfhouse prints for a user to run (`cluster-ddl`) rather than sends."""
        self.add(sql, "printed")


@contextlib.contextmanager
def recording(recorder: Recorder | None = None) -> Iterator[Recorder]:
    """Record every statement sent to chdb or to a ClickHouse server while the block runs."""
    from chdb.session.state import Session
    from clickhouse_connect.driver.httpclient import HttpClient as Client

    rec = recorder or Recorder()
    chdb_query = Session.query
    command, raw_query, raw_insert = Client.command, Client.raw_query, Client.raw_insert

    def session_query(self: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        rec.add(sql, "chdb")
        return chdb_query(self, sql, *args, **kwargs)

    def client_command(self: Any, cmd: str, *args: Any, **kwargs: Any) -> Any:
        rec.add(cmd, "server")
        return command(self, cmd, *args, **kwargs)

    def client_raw_query(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        rec.add(query, "server")
        return raw_query(self, query, *args, **kwargs)

    def client_raw_insert(self: Any, table: str, column_names: Any = None, *args: Any, **kwargs: Any) -> Any:
        # clickhouse-connect sends `INSERT INTO <table> [(<columns>)] FORMAT <fmt>` with the data as the body
        fmt = kwargs.get("fmt") or "Native"
        columns = f" ({', '.join(column_names)})" if column_names else ""
        rec.add(f"INSERT INTO {table}{columns} FORMAT {fmt}", "server")
        return raw_insert(self, table, column_names, *args, **kwargs)

    with mock.patch.object(Session, "query", session_query), \
            mock.patch.object(Client, "command", client_command), \
            mock.patch.object(Client, "raw_query", client_raw_query), \
            mock.patch.object(Client, "raw_insert", client_raw_insert):
        yield rec
