"""Warehouse backends: embedded chdb (default) and a ClickHouse server, behind one small interface."""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from warehouse.errors import WarehouseBusy, WarehouseError

DEFAULT_URL = "chdb://.perfhouse/warehouse"
_READ_SETTINGS = "SET output_format_json_quote_64bit_integers = 0"


class Backend(Protocol):
    """What the warehouse needs from ClickHouse: run SQL, read rows, and bulk-load a local file."""

    url: str

    def session(self) -> contextlib.AbstractContextManager[None]:
        """Hold the warehouse for a unit of work (re-entrant); queries outside one open their own."""

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None: ...

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def load_file(
        self, table: str, columns: list[str], path: Path, fmt: str, settings: dict[str, Any] | None = None
    ) -> None:
        """Insert a local file, parsed by ClickHouse in format `fmt`, into `table` (columns in order)."""


def open_backend(url: str | None = None, lock_timeout_s: float = 60.0) -> Backend:
    url = url or os.environ.get("PERFHOUSE_WAREHOUSE") or DEFAULT_URL
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "chdb":
        return ChdbBackend(url, lock_timeout_s)
    if scheme in ("clickhouse", "clickhouses", "http", "https"):
        return ServerBackend(url)
    raise WarehouseError(
        f"warehouse URL {url!r}: expected chdb://PATH or clickhouse://user:password@host:8123/database"
    )


def _settings_sql(settings: dict[str, Any] | None) -> str:
    if not settings:
        return ""
    for key in settings:
        if not re.fullmatch(r"[a-z_0-9]+", key):
            raise WarehouseError(f"not a ClickHouse setting name: {key!r}")
    return " SETTINGS " + ", ".join(
        f"{k} = {json.dumps(v) if isinstance(v, str) else int(v)}" for k, v in settings.items()
    ).replace('"', "'")


def quote_identifier(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise WarehouseError(f"not a plain identifier: {name!r}")
    return name


class ChdbBackend:
    """chdb in this process. The data directory admits one process at a time, so every unit of work
    takes a cross-process file lock (bounded wait, naming the holder), opens the session, and closes
    it afterwards: the dashboard, a live run and a CLI ingest take turns instead of failing."""

    def __init__(self, url: str, lock_timeout_s: float = 60.0):
        self.url = url
        self.path = Path(url.split("://", 1)[1]).expanduser()
        self.lock_timeout_s = lock_timeout_s
        self._local = threading.RLock()
        self._depth = 0
        self._session: Any = None
        self._lock_fd: int | None = None

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        with self._local:
            if self._depth == 0:
                self._open()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._close()

    def _open(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.parent / f"{self.path.name}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
                    os.close(fd)
                    raise WarehouseBusy(
                        f"the warehouse {self.path} is busy: held by {holder} for more than "
                        f"{self.lock_timeout_s:g}s; retry, or use a ClickHouse server for concurrent use"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({' '.join(sys.argv[:3])})".encode(), 0)
        self._lock_fd = fd
        try:
            from chdb import session as chdb_session

            self._session = chdb_session.Session(str(self.path))
            self._session.query(_READ_SETTINGS)
        except Exception as exc:
            self._release()
            raise WarehouseError(f"cannot open the embedded warehouse {self.path}: {exc}") from exc

    def _close(self) -> None:
        try:
            if self._session is not None:
                self._session.close()
        finally:
            self._session = None
            self._release()

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _run(self, sql: str, fmt: str, params: dict[str, Any] | None) -> str:
        with self.session():
            try:
                result = self._session.query(sql, fmt, params=_stringify(params or {}))
            except Exception as exc:
                raise WarehouseError(_clean_error(str(exc))) from None
            return str(result) if result is not None else ""

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._run(sql, "CSV", params)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        text = self._run(sql, "JSONEachRow", params)
        return [json.loads(line) for line in text.splitlines() if line]

    def load_file(
        self, table: str, columns: list[str], path: Path, fmt: str, settings: dict[str, Any] | None = None
    ) -> None:
        cols = ", ".join(quote_identifier(c) for c in columns)
        structure = ", ".join(f"{quote_identifier(c)} String" for c in columns)
        compression = "gzip" if _is_gzip(path) else "none"
        self.command(
            f"INSERT INTO {quote_identifier(table)} ({cols}) "
            f"SELECT * FROM file({{path:String}}, {{fmt:String}}, {{structure:String}}, {{compression:String}})"
            + _settings_sql(settings),
            {
                "path": str(Path(path).resolve()),
                "fmt": fmt,
                "structure": structure,
                "compression": compression,
            },
        )


class ServerBackend:
    """A ClickHouse server through clickhouse-connect; files are streamed to it in their own format."""

    def __init__(self, url: str):
        self.url = url
        parts = urlsplit(url)
        secure = parts.scheme in ("clickhouses", "https")
        self._kwargs: dict[str, Any] = {
            "host": parts.hostname or "localhost",
            "port": parts.port or (8443 if secure else 8123),
            "username": unquote(parts.username or "default"),
            "password": unquote(parts.password or ""),
            "database": parts.path.strip("/") or "default",
            "secure": secure,
        }
        self._client: Any = None
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        yield

    def _get(self) -> Any:
        with self._lock:
            if self._client is None:
                import clickhouse_connect

                try:
                    self._client = clickhouse_connect.get_client(compress=False, **self._kwargs)
                except Exception as exc:
                    raise WarehouseError(
                        f"cannot connect to the warehouse {self._redacted()}: {exc}"
                    ) from None
            return self._client

    def _redacted(self) -> str:
        return re.sub(r"//([^:@/]*):[^@/]*@", r"//\1:***@", self.url)

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        try:
            self._get().command(sql, parameters=params or None)
        except WarehouseError:
            raise
        except Exception as exc:
            raise WarehouseError(_clean_error(str(exc))) from None

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            result = self._get().query(sql, parameters=params or None)
        except WarehouseError:
            raise
        except Exception as exc:
            raise WarehouseError(_clean_error(str(exc))) from None
        return [dict(row) for row in result.named_results()]

    def load_file(
        self, table: str, columns: list[str], path: Path, fmt: str, settings: dict[str, Any] | None = None
    ) -> None:
        def chunks() -> Iterator[bytes]:
            opener: Any = gzip.open if _is_gzip(path) else open
            with opener(path, "rb") as fh:
                while block := fh.read(1 << 20):
                    yield block

        try:
            self._get().raw_insert(
                quote_identifier(table),
                [quote_identifier(c) for c in columns],
                insert_block=chunks(),
                fmt=fmt,
                settings=settings or None,
            )
        except Exception as exc:
            raise WarehouseError(_clean_error(str(exc))) from None


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _stringify(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters in ClickHouse's text form (arrays as quoted literals)."""
    return {
        k: "\\N" if v is None else _param_text(v) if isinstance(v, list | tuple) else v
        for k, v in params.items()
    }


def _param_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ",".join(_param_text(v) for v in value) + "]"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\t", "\\t")
        return "'" + escaped.replace("\0", "\\0") + "'"
    return str(value)


def _clean_error(text: str) -> str:
    """ClickHouse messages carry a stack trace and version suffix; keep the first sentence block."""
    text = text.strip().splitlines()[0] if text.strip() else text
    return re.sub(r"\s*\(version [^)]*\)\s*$", "", text)
