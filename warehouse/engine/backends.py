"""Warehouse backends: embedded chdb (default) and a ClickHouse server, behind one small interface.

Long because the interface and both of its implementations (sessions and the cross-process lock of the embedded
engine, parameters, file loading, result caps) are read together: a behaviour of one must be the other's too.
"""

from __future__ import annotations

import atexit
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
from urllib.parse import parse_qs, unquote, urlsplit

from warehouse.errors import WarehouseBusy, WarehouseError

DEFAULT_URL = "chdb://.perfhouse/warehouse"
# Results come back as JSON text. Stored text is kept as the input's bytes, which need not be UTF-8 (a JTL
# written on Windows in latin-1): ClickHouse's JSON output replaces invalid sequences with U+FFFD, and the
# text is decoded with replacement as well, so no byte in the warehouse can fail a read.
_JSON_SETTINGS = {"output_format_json_quote_64bit_integers": 0, "output_format_json_validate_utf8": 1}
_READ_SETTINGS = "SET output_format_json_quote_64bit_integers = 0, output_format_json_validate_utf8 = 1"
# Settings of every connection to a cluster warehouse (?cluster=NAME, laid out by engine.cluster): a write
# through a Distributed table is in place when the INSERT returns (the next statement reads it), and a subquery
# over a Distributed table runs once, on the node that asked, with its result sent to the shards.
CLUSTER_SETTINGS = {"insert_distributed_sync": 1, "distributed_product_mode": "global"}


class Backend(Protocol):
    """What the warehouse needs from ClickHouse: run SQL, read rows, and bulk-load a local file."""

    url: str
    exclusive: bool  # True when one process at a time holds the warehouse for a whole unit of work

    def session(self) -> contextlib.AbstractContextManager[None]:
        """Hold the warehouse for a unit of work (re-entrant); queries outside one open their own."""

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None: ...

    def query(self, sql: str, params: dict[str, Any] | None = None, max_bytes: int | None = None
              ) -> list[dict[str, Any]]:
        """Rows of a query; with `max_bytes`, an answer whose text is larger fails (WarehouseError)
        instead of being decoded."""

    def load_file(
        self,
        table: str,
        columns: list[str],
        path: Path,
        fmt: str,
        settings: dict[str, Any] | None = None,
        types: list[str] | None = None,
    ) -> None:
        """Insert a local file, parsed by ClickHouse in format `fmt`, into `table` (columns in order)."""

    def insert_from_file(
        self,
        sql: str,
        params: dict[str, Any],
        path: Path,
        fmt: str,
        structure: str,
        settings: dict[str, Any] | None = None,
    ) -> int:
        """Run `sql`, an INSERT ... SELECT ... FROM {input}, where {input} is the local file at `path` as
        ClickHouse parses it in format `fmt` with columns `structure`; returns the rows written.

        The file is parsed once, straight into the target table: chdb reads it with file(), a server
        receives the bytes streamed in that format and reads them with input().
        """


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


def settings_sql(settings: dict[str, Any] | None) -> str:
    """A statement's SETTINGS clause (empty for none); names are checked, strings quoted."""
    if not settings:
        return ""
    for key in settings:
        if not re.fullmatch(r"[a-z_0-9]+", key):
            raise WarehouseError(f"not a ClickHouse setting name: {key!r}")
    return " SETTINGS " + ", ".join(
        f"{k} = {_param_text(v) if isinstance(v, str) else int(v)}" for k, v in settings.items()
    )


def literal(value: Any) -> str:
    """A value as a ClickHouse literal (a string quoted and escaped), for the few places of a statement that take
    no query parameter: a SETTINGS value, ATTACH PARTITION ID."""
    return _param_text(value)


def redacted(url: str) -> str:
    """A warehouse URL fit to show: a password in it is replaced by ***."""
    return re.sub(r"//([^:@/]*):[^@/]*@", r"//\1:***@", url)


def quote_identifier(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise WarehouseError(f"not a plain identifier: {name!r}")
    return name


# chdb leaves a few worker threads behind at every session open once the warehouse holds tables,
# so a long-lived process (the dashboard) must not open one per query: a session lingers briefly
# after its unit of work, serving the next one, and only one backend per process keeps one.
LINGER_S = float(os.environ.get("PERFHOUSE_CHDB_LINGER_S", "1.0"))
_holder_lock = threading.Lock()
_holder: ChdbBackend | None = None


class ChdbBackend:
    """chdb in this process. The data directory admits one process at a time, so every unit of work
    takes a cross-process file lock (bounded wait, naming the holder) and opens the session; the
    session closes when it has been idle for LINGER_S, so the dashboard, a live run and a CLI
    ingest take turns instead of failing, and bursts of queries share one session."""

    exclusive = True
    cluster: str | None = None  # one embedded engine, never a cluster

    def __init__(self, url: str, lock_timeout_s: float = 60.0, linger_s: float | None = None):
        self.url = url
        self.path = Path(url.split("://", 1)[1]).expanduser()
        self.lock_timeout_s = lock_timeout_s
        self.linger_s = LINGER_S if linger_s is None else linger_s
        self._local = threading.RLock()
        self._depth = 0
        self._uses = 0
        self._session: Any = None
        self._lock_fd: int | None = None

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        with self._local:
            if self._session is None:
                _make_holder(self)
                self._open()
            self._depth += 1
            self._uses += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._linger()

    def _linger(self) -> None:
        if self.linger_s <= 0:
            self._close()
            return
        timer = threading.Timer(self.linger_s, self._close_if_idle, args=(self._uses,))
        timer.daemon = True
        timer.start()

    def _close_if_idle(self, uses: int) -> None:
        with self._local:
            if self._depth == 0 and self._uses == uses and self._session is not None:
                self._close()

    def release(self) -> None:
        """Close the session now unless a unit of work is using it."""
        with self._local:
            if self._depth == 0 and self._session is not None:
                self._close()

    def _open(self) -> None:
        # The engine first: chdb's import changes the whole process's working directory while it loads, so a
        # relative warehouse path made or locked meanwhile (the default .perfhouse/warehouse, as the thread of
        # `load_engine_ahead` loads it) would land in chdb's package directory or fail.
        try:
            engine = _chdb_session()
        except Exception as exc:  # a missing or broken chdb
            raise self._unopenable(exc) from exc
        lock_path = self.path.parent / f"{self.path.name}.lock"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a file in the way, no permission, a read-only or vanished directory
            raise self._unopenable(exc.strerror or exc) from None
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
        # who holds it, by its command's words: no option or NAME=VALUE (a run's -J/-e values are secrets)
        words = [a for a in sys.argv[:3] if not a.startswith("-") and "=" not in a]
        os.pwrite(fd, f"pid {os.getpid()} ({' '.join(words)})".encode(), 0)
        self._lock_fd = fd
        try:
            self._session = engine.Session(str(self.path))
            self._session.query(_READ_SETTINGS)
        except Exception as exc:
            self._release()
            raise self._unopenable(exc) from exc

    def _unopenable(self, why: object) -> WarehouseError:
        return WarehouseError(f"cannot open the embedded warehouse {self.path}: {why}")

    def _reset(self) -> None:
        """A fresh engine session after a failed statement, keeping the file lock: chdb can leave a
        failed query's rows in the session, answered with the next query's (a timed-out UNION's first
        part came back with the next SELECT)."""
        with contextlib.suppress(Exception):
            self._session.close()
        self._session = None
        try:
            from chdb import session as chdb_session

            self._session = chdb_session.Session(str(self.path))
            self._session.query(_READ_SETTINGS)
        except Exception as exc:
            self._close()
            raise WarehouseError(f"cannot reopen the embedded warehouse {self.path}: {exc}") from exc

    def _close(self) -> None:
        global _holder
        try:
            if self._session is not None:
                self._session.close()
        finally:
            self._session = None
            self._release()
            with _holder_lock:
                if _holder is self:
                    _holder = None

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _run(self, sql: str, fmt: str, params: dict[str, Any] | None, max_bytes: int | None = None) -> str:
        with self.session():
            try:
                result = self._session.query(sql, fmt, params=_stringify(params or {}))
            except Exception as exc:
                self._reset()  # no session is reused after an error
                raise WarehouseError(_clean_error(str(exc))) from None
            if result is None:
                return ""
            if max_bytes is not None and result.size() > max_bytes:
                raise WarehouseError(_too_large(result.size(), max_bytes))
            return _text(result.bytes())

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._run(sql, "CSV", params)

    def query(self, sql: str, params: dict[str, Any] | None = None, max_bytes: int | None = None
              ) -> list[dict[str, Any]]:
        text = self._run(sql, "JSONEachRow", params, max_bytes)
        return [json.loads(line) for line in text.split("\n") if line]

    def load_file(
        self,
        table: str,
        columns: list[str],
        path: Path,
        fmt: str,
        settings: dict[str, Any] | None = None,
        types: list[str] | None = None,
    ) -> None:
        cols = ", ".join(quote_identifier(c) for c in columns)
        types = types or ["String"] * len(columns)
        if any(not _STAGING_TYPE.fullmatch(t) for t in types):
            raise WarehouseError(f"not a staging column type: {types}")
        structure = ", ".join(f"{quote_identifier(c)} {t}" for c, t in zip(columns, types, strict=True))
        compression = "gzip" if _is_gzip(path) else "none"
        self.command(
            f"INSERT INTO {quote_identifier(table)} ({cols}) "
            f"SELECT * FROM file({{path:String}}, {{fmt:String}}, {{structure:String}}, {{compression:String}})"
            + settings_sql(settings),
            {
                "path": os.path.abspath(path),  # not resolved: a link stands for a name file() cannot take
                "fmt": fmt,
                "structure": structure,
                "compression": compression,
            },
        )

    def insert_from_file(
        self,
        sql: str,
        params: dict[str, Any],
        path: Path,
        fmt: str,
        structure: str,
        settings: dict[str, Any] | None = None,
    ) -> int:
        source = "file({_path:String}, {_fmt:String}, {_structure:String}, {_compression:String})"
        all_params = {
            **params,
            "_path": os.path.abspath(path),
            "_fmt": fmt,
            "_structure": structure,
            "_compression": "gzip" if _is_gzip(path) else "none",
        }
        with self.session():
            try:
                result = self._session.query(
                    sql.replace("{input}", source) + settings_sql(settings), "CSV", params=_stringify(all_params)
                )
            except Exception as exc:
                self._reset()
                raise WarehouseError(_clean_error(str(exc))) from None
            return int(result.rows_written())


def load_engine_ahead(url: str | None = None) -> None:
    """For a command about to open the warehouse at `url`: begin loading the embedded engine (chdb; most of a short
    command's time) in a thread, so that it loads while the command imports the rest of what it needs.

    chdb's import changes the process's working directory until it ends: until the open that waits for it, the
    command must only import modules, never use a relative path (`ChdbBackend._open` waits before its own)."""
    url = url or os.environ.get("PERFHOUSE_WAREHOUSE") or DEFAULT_URL
    if url.startswith("chdb://") and "chdb.session" not in sys.modules:
        threading.Thread(target=_load_engine, name="perfhouse-engine", daemon=True).start()


def _load_engine() -> None:
    with contextlib.suppress(Exception):  # the open that needs it meets and reports a missing or broken chdb
        _chdb_session()


def _chdb_session() -> Any:
    """chdb's session module, loaded without pyarrow: chdb imports pyarrow when it can, for Arrow results the
    warehouse never asks for (it reads CSV and JSONEachRow), and that import was a fifth of a short command's
    whole time. pyarrow stays importable for everything else in the process. One thread at a time (the one
    `load_engine_ahead` started, the one opening the warehouse): the second waits until pyarrow is importable
    again."""
    with _engine_lock:
        if "chdb.session" in sys.modules or "pyarrow" in sys.modules:
            from chdb import session
            return session
        sys.modules["pyarrow"] = None  # type: ignore[assignment]  # an import of it fails while chdb loads
        try:
            from chdb import session
        finally:
            if sys.modules.get("pyarrow", 0) is None:
                del sys.modules["pyarrow"]
        return session


_engine_lock = threading.Lock()


def _make_holder(backend: ChdbBackend) -> None:
    """A process can have one chdb data directory open: close another backend's idle session first."""
    global _holder
    with _holder_lock:
        other, _holder = _holder, backend
    if other is not None and other is not backend:
        other.release()


@atexit.register
def _close_lingering() -> None:
    with _holder_lock:
        holder = _holder
    if holder is not None:
        holder.release()


class ServerBackend:
    """A ClickHouse server through clickhouse-connect; files are streamed to it in their own format."""

    exclusive = False

    def __init__(self, url: str):
        self.url = url
        parts = urlsplit(url)
        secure = parts.scheme in ("clickhouses", "https")
        # ?cluster=NAME: the warehouse is laid out on that cluster (warehouse.engine.cluster)
        self.cluster: str | None = parse_qs(parts.query).get("cluster", [None])[0] or None
        self.database = parts.path.strip("/") or "default"
        self._kwargs: dict[str, Any] = {
            "host": parts.hostname or "localhost",
            "port": parts.port or (8443 if secure else 8123),
            "username": unquote(parts.username or "default"),
            "password": unquote(parts.password or ""),
            "database": self.database,
            "secure": secure,
        }
        if self.cluster:
            quote_identifier(self.cluster)
            self._kwargs["settings"] = dict(CLUSTER_SETTINGS)
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
        return redacted(self.url)

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        try:
            self._get().command(sql, parameters=_server_params(params))
        except WarehouseError:
            raise
        except Exception as exc:
            raise WarehouseError(_clean_error(str(exc))) from None

    def query(self, sql: str, params: dict[str, Any] | None = None, max_bytes: int | None = None
              ) -> list[dict[str, Any]]:
        # The same output format and settings as the embedded backend, so both return identical values
        # (DateTime as ClickHouse's text, NaN as null, 64-bit integers as numbers).
        try:
            raw = self._get().raw_query(
                sql, parameters=_server_params(params), settings=_JSON_SETTINGS, fmt="JSONEachRow"
            )
        except WarehouseError:
            raise
        except Exception as exc:
            raise WarehouseError(_clean_error(str(exc))) from None
        if max_bytes is not None and len(raw) > max_bytes:
            raise WarehouseError(_too_large(len(raw), max_bytes))
        return [json.loads(line) for line in _text(raw).split("\n") if line]

    def load_file(
        self,
        table: str,
        columns: list[str],
        path: Path,
        fmt: str,
        settings: dict[str, Any] | None = None,
        types: list[str] | None = None,
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


    def insert_from_file(
        self,
        sql: str,
        params: dict[str, Any],
        path: Path,
        fmt: str,
        structure: str,
        settings: dict[str, Any] | None = None,
    ) -> int:
        # The statement travels as the URL's query and the file as the body, so query parameters are
        # inlined as ClickHouse literals (quoted by _param_text) and `fmt` names the body's format.
        if not re.fullmatch(r"[A-Za-z]+", fmt):
            raise WarehouseError(f"not a ClickHouse input format: {fmt!r}")
        rendered = _inline_params(sql.replace("{input}", f"input({_param_text(structure)})"), params)
        if not rendered.lstrip().upper().startswith("INSERT INTO "):
            raise WarehouseError("insert_from_file needs an INSERT INTO statement")

        def chunks() -> Iterator[bytes]:
            opener: Any = gzip.open if _is_gzip(path) else open
            with opener(path, "rb") as fh:
                while block := fh.read(1 << 20):
                    yield block

        try:
            # clickhouse-connect sends `INSERT INTO <table> FORMAT <fmt>`: the "table" is the rest of ours.
            summary = self._get().raw_insert(
                rendered.lstrip()[len("INSERT INTO ") :], None, insert_block=chunks(), fmt=fmt,
                settings=settings or None,
            )
        except Exception as exc:
            raise WarehouseError(_clean_error(str(exc))) from None
        return int(summary.written_rows)


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):[^{}]+\}")


def _inline_params(sql: str, params: dict[str, Any]) -> str:
    """`{name:Type}` placeholders replaced by the values as ClickHouse literals."""

    def literal(m: re.Match[str]) -> str:
        return _param_text(params[m[1]])

    return _PLACEHOLDER.sub(literal, sql)


# Staging column types are the formats' own constants (never user input): names, nesting and 'UTC'.
_STAGING_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\([A-Za-z0-9_, ()']*\))?")


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _stringify(params: dict[str, Any]) -> dict[str, str]:
    """Query parameters as chdb takes them: every value in ClickHouse's escaped text form (_param_value)."""
    return {k: _param_value(v) for k, v in params.items()}


class _Literal:
    """A parameter value already in ClickHouse's text form; clickhouse-connect sends str() of it as is."""

    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text


def _server_params(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Query parameters for clickhouse-connect: the same text as chdb gets (_param_value), sent unchanged.

    clickhouse-connect would escape a str itself (backslash, quote, backquote, tab and line feed only), send
    None as NULL and a dict as JSON; passing our own text keeps one escaping for both backends, and the
    server parses `param_NAME` values in the same escaped form as chdb."""
    if not params:
        return None
    return {k: _Literal(_param_value(v)) for k, v in params.items()}


# ClickHouse's escaped text form (TSV, query parameters): these characters must be written as escapes;
# every other character, NUL included, may stand as itself, but NUL and CR are escaped too for clarity.
_ESCAPED = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
# A quoted literal ('...') inside SQL or inside a composite value: the quote is escaped as well.
_QUOTED = str.maketrans({"\\": "\\\\", "'": "\\'", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def _param_value(value: Any) -> str:
    """One query parameter's value in ClickHouse's escaped text form, which chdb and a server's HTTP
    `param_NAME` both parse: strings escaped (a lone `\\N` stays text), None as `\\N` (NULL), arrays,
    tuples and maps as literals of quoted elements (_param_text), numbers as their digits."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _unicode(value).translate(_ESCAPED)
    if isinstance(value, bool):
        return str(int(value))
    return _param_text(value)


def _unicode(text: str) -> str:
    """Text that can be sent as UTF-8: bytes a file name or argument held that were not UTF-8 (which Python
    keeps as lone surrogates) become U+FFFD, as they are shown when read back."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode(errors="surrogateescape").decode(errors="replace")
    return text


def _param_text(value: Any) -> str:
    """A value as a ClickHouse literal: strings quoted, containers of quoted elements, None as NULL."""
    if value is None:
        return "NULL"
    if isinstance(value, tuple):
        return "(" + ",".join(_param_text(v) for v in value) + ")"
    if isinstance(value, list):
        return "[" + ",".join(_param_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_param_text(str(k))}:{_param_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return "'" + _unicode(value).translate(_QUOTED) + "'"
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


def _text(data: bytes | str) -> str:
    """A result's bytes as text; a byte that is not UTF-8 becomes U+FFFD instead of failing the read."""
    return data if isinstance(data, str) else bytes(data).decode("utf-8", errors="replace")


def _too_large(size: int, cap: int) -> str:
    return (f"the answer is {size / 2**20:,.1f} MiB, more than the {cap / 2**20:,.0f} MiB a query may return: "
            f"select fewer or smaller columns")


def _clean_error(text: str) -> str:
    """ClickHouse messages carry a stack trace and version suffix; keep the first sentence block."""
    text = text.strip().splitlines()[0] if text.strip() else text
    return re.sub(r"\s*\(version [^)]*\)\s*$", "", text)
