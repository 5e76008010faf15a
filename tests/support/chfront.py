"""Test-only ClickHouse HTTP front: owns one chdb session and serves ClickHouse's HTTP interface from it.

The real driver (clickhouse-connect) talks to it as to a ClickHouse server. chdb allows one session per
process, so the front owns ONE session for its lifetime and serialises requests on a lock. In-process::

    with ClickHouseFront(data_dir) as front:
        client = clickhouse_connect.get_client(host="127.0.0.1", port=front.port, compress=False)

As a subprocess (so the test process keeps its own chdb session): ``python -m tests.support.chfront DIR``
prints ``PORT=<n>`` and serves until SIGTERM (or stdin EOF with ``--exit-on-stdin-eof``). Fixture sketch::

    @pytest.fixture(scope="session")
    def ch_port(tmp_path_factory):
        proc, port = start_front_process(tmp_path_factory.mktemp("ch") / "data")
        yield port
        assert stop_front_process(proc) == 0
"""

from __future__ import annotations

import argparse
import contextlib
import email.parser
import email.policy
import gzip
import importlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from chdb import session as chdb_session

# URL parameters consumed by the HTTP layer; every other one except param_* is a ClickHouse setting.
_TRANSPORT = frozenset(
    "query database default_format query_id session_id session_timeout session_check compress "  # noqa: SIM905
    "decompress wait_end_of_query buffer_size quota_key client_protocol_version role user password "
    "stacktrace close_session".split()
)
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INSERT = re.compile(rb"\s*INSERT\s", re.IGNORECASE)
# `INSERT INTO t (cols) FORMAT fmt`, newline, data. chdb truncates large inline Native data: use a file.
_INSERT_DATA = re.compile(rb"\s*(INSERT\s+INTO\s[^']*?)\s+FORMAT\s+(\w+)[ \t]*(?:\r?\n)?", re.IGNORECASE)
# `INSERT INTO t SELECT ... FROM input('structure') FORMAT fmt`, newline, data: the server's input().
_INSERT_INPUT = re.compile(
    rb"\s*(INSERT\s+INTO\s.*?(\binput\(\s*('(?:[^'\\]|\\.)*')\s*\)).*?)\s+FORMAT\s+(\w+)[ \t]*(?:\r?\n)?",
    re.IGNORECASE | re.DOTALL,
)
_USE = re.compile(rb"\s*USE\s", re.IGNORECASE)
_TRAILING_FORMAT = re.compile(rb"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)


def _decompress(data: bytes, encoding: str) -> bytes:
    """Undo a request's Content-Encoding (clickhouse-connect compresses each block as its own frame)."""
    if encoding in ("", "identity"):
        return data
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    if encoding == "zstd":
        module = "compression.zstd" if sys.version_info >= (3, 14) else "backports.zstd"
        return importlib.import_module(module).decompress(data)
    if encoding == "br":
        return importlib.import_module("brotli").decompress(data)
    if encoding == "lz4":
        out, frame = bytearray(), importlib.import_module("lz4.frame")
        while data:
            decompressor = frame.LZ4FrameDecompressor()
            out += decompressor.decompress(data)
            data = decompressor.unused_data
        return bytes(out)
    raise ValueError(f"chfront: unsupported Content-Encoding {encoding!r}")


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """Text fields of a multipart/form-data body (clickhouse-connect sends long parameter sets so)."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        if part.get_filename() or not isinstance(payload, bytes):
            raise ValueError("chfront: external data (form files) is not supported")
        fields[str(part.get_param("name", header="content-disposition"))] = payload.decode()
    return fields


class ClickHouseFront:
    """One chdb session behind a ThreadingHTTPServer on 127.0.0.1; engine calls are serialised."""

    def __init__(self, data_dir: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 0,
                 config_file: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.config_file = config_file  # a server configuration for the engine (clusters, macros)
        self._address = (host, port)
        self._lock = threading.Lock()
        self._session: Any = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._settings: dict[str, str] = {}  # settings the front has SET in the session
        self._database: str | None = None  # database last selected with USE (None: unknown)
        self.version = self.timezone = ""

    @property
    def port(self) -> int:
        assert self._server is not None, "front not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"clickhouse://default:@127.0.0.1:{self.port}/default"

    def __enter__(self) -> ClickHouseFront:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = f"?config-file={self.config_file}" if self.config_file else ""
        self._session = chdb_session.Session(f"{self.data_dir}{config}")
        info = self._session.query("SELECT version(), timezone()", "TSV").bytes().decode()
        self.version, self.timezone = info.split()
        self._server = _Server(self._address, _Handler)
        self._server.front = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="chfront", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self._session is not None:
                self._session.close()
            self._session = None

    def execute(
        self, params: dict[str, str], body: bytes, content_type: str = "", encoding: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: (status, headers, body); failures as ClickHouse's `Code: N. DB::Exception`."""
        headers = {
            "X-ClickHouse-Query-Id": params.get("query_id") or str(uuid.uuid4()),
            "X-ClickHouse-Timezone": self.timezone,
            "X-ClickHouse-Server-Display-Name": "chfront",
            "Content-Type": "text/plain; charset=UTF-8",
        }
        try:
            body = _decompress(body, encoding.strip().lower())
            if content_type.startswith("multipart/form-data"):
                params, body = {**params, **_form_fields(content_type, body)}, b""
            sql = (params["query"].encode() + b"\n" + body) if "query" in params else body
            binds = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
            wanted = {k: v for k, v in params.items() if k not in _TRANSPORT and not k.startswith("param_")}
            is_insert = bool(_INSERT.match(sql))
            explicit = None if is_insert else _TRAILING_FORMAT.search(sql[-256:])
            fmt = explicit[1].decode() if explicit else params.get("default_format") or "TabSeparated"
            # Format-less statements run WithNames: a result set always yields the names line, DDL nothing.
            with_names = not explicit and fmt in ("TabSeparated", "TSV")
            with self._lock:
                self._prepare(wanted, params.get("database") or "default")  # a `USE` lasts one request
                if _USE.match(sql):
                    self._database = None
                try:
                    if is_insert and (fed := _INSERT_INPUT.match(sql, 0, 65536)):
                        result = self._insert_from_input(fed, sql[fed.end() :], binds)
                    elif insert := _INSERT_DATA.match(sql, 0, 65536):
                        result = self._insert_from_file(insert[1], insert[2], sql[insert.end() :], binds)
                    else:
                        result = self._session.query(sql, "TSVWithNames" if with_names else fmt, params=binds)
                except Exception:
                    self._renew()  # a server answers each query on its own: no rows of a failed one linger
                    raise
            out = result.bytes() or b""
            if out and not is_insert:
                headers["X-ClickHouse-Format"] = fmt
                if fmt.startswith(("Native", "RowBinary", "Arrow", "Parquet", "ORC", "Avro")):
                    headers["Content-Type"] = "application/octet-stream"
            out = out.split(b"\n", 1)[1] if with_names and out else out
            summary = {
                "read_rows": result.rows_read(),
                "read_bytes": result.bytes_read(),
                "written_rows": result.rows_written(),
                "written_bytes": result.bytes_written(),
                "elapsed_ns": int(result.elapsed() * 1e9),
            }
            headers["X-ClickHouse-Summary"] = json.dumps({k: str(v) for k, v in summary.items()})
            return 200, headers, out
        except Exception as ex:
            text = str(ex).strip()
            at = text.find("Code: ")
            text = text[at:] if at >= 0 else f"Code: 1001. DB::Exception: chfront: {ex!r}"
            headers["X-ClickHouse-Exception-Code"] = text[6:].split(".", 1)[0]
            return 500, headers, f"{text} (version {self.version})\n".encode()

    def _renew(self) -> None:
        """A fresh engine session after a failed statement (caller holds the lock): chdb can keep a failed
        query's rows and hand them out with the next answer."""
        self._session.close()
        config = f"?config-file={self.config_file}" if self.config_file else ""
        self._session = chdb_session.Session(f"{self.data_dir}{config}")
        self._settings, self._database = {}, None

    def _insert_from_file(self, target: bytes, fmt: bytes, data: bytes, binds: dict[str, str]) -> Any:
        with tempfile.NamedTemporaryFile(prefix="chfront-", suffix=".data") as tmp:
            tmp.write(data)
            tmp.flush()
            path = tmp.name.replace("\\", "\\\\").replace("'", "\\'").encode()
            sql = target + b" FROM INFILE '" + path + b"' FORMAT " + fmt
            return self._session.query(sql, "TSV", params=binds)

    def _insert_from_input(self, fed: re.Match[bytes], data: bytes, binds: dict[str, str]) -> Any:
        """input('structure') reads the request's data: chdb reads the same bytes with file()."""
        with tempfile.NamedTemporaryFile(prefix="chfront-", suffix=".data") as tmp:
            tmp.write(data)
            tmp.flush()
            path = tmp.name.replace("\\", "\\\\").replace("'", "\\'").encode()
            start, end = fed.span(2)
            source = b"file('" + path + b"', '" + fed[4] + b"', " + fed[3] + b")"
            sql = fed.string[fed.start(1) : start] + source + fed.string[end : fed.end(1)]
            return self._session.query(sql, "TSV", params=binds)

    def _prepare(self, wanted: dict[str, str], database: str) -> None:
        """Bring the shared session to the request's settings and database (caller holds the lock)."""
        for name in [n for n in self._settings if n not in wanted]:
            self._session.query(f"SET {name} = DEFAULT", "TSV")
            del self._settings[name]
        for name, value in wanted.items():
            if self._settings.get(name) != value:
                if not _SETTING_NAME.fullmatch(name):
                    raise ValueError(f"chfront: invalid setting name {name!r}")
                quoted = value.replace("\\", "\\\\").replace("'", "\\'")
                self._session.query(f"SET {name} = '{quoted}'", "TSV")
                self._settings[name] = value
        if database != self._database:
            self._session.query("USE {db:Identifier}", "TSV", params={"db": database})
            self._database = database


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    front: ClickHouseFront


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: urllib3 pools connections
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: stderr belongs to the tests

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []  # clickhouse-connect streams inserts from a generator: chunked transfer encoding
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    def _serve(self) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        body = self._read_body()
        if url.path.rstrip("/") == "/ping" or ("query" not in params and not body):
            status, headers, out = 200, {"Content-Type": "text/plain; charset=UTF-8"}, b"Ok.\n"
        else:
            content = self.headers.get("Content-Type", ""), self.headers.get("Content-Encoding", "")
            status, headers, out = self.server.front.execute(params, body, *content)
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(out))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(out)


# One shard, one replica: the front's engine itself (its tcp_port is the replica's port, so it is local).
ONE_NODE = """<clickhouse>
  <tcp_port>9000</tcp_port>
  <remote_servers><perf><shard><replica><host>localhost</host><port>9000</port></replica></shard></perf></remote_servers>
</clickhouse>
"""


@contextlib.contextmanager
def one_node_cluster_front(directory: Path) -> Iterator[str]:
    """A front in a child process whose engine's configuration names the one-node cluster `perf`; its warehouse
    URL (clickhouse://, database default) while the block runs."""
    config = directory / "config.xml"
    config.write_text(ONE_NODE)
    proc, port = start_front_process(directory / "data", config_file=str(config))
    try:
        yield f"clickhouse://default:@127.0.0.1:{port}/default"
    except BaseException:
        stop_front_process(proc)
        raise
    assert stop_front_process(proc) == 0


def start_front_process(
    data_dir: str | os.PathLike[str], timeout: float = 60.0, config_file: str | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Run the front in a child process that exits when our stdin pipe closes; returns (process, port)."""
    command = [sys.executable, str(Path(__file__).resolve()), str(data_dir), "--exit-on-stdin-eof"]
    command += ["--config-file", config_file] if config_file else []
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    seen, deadline = b"", time.monotonic() + timeout
    poller = select.poll()  # not select(): a test process may hold descriptors past FD_SETSIZE
    poller.register(proc.stdout.fileno(), select.POLLIN)
    while (left := deadline - time.monotonic()) > 0 and poller.poll(left * 1000):
        chunk = os.read(proc.stdout.fileno(), 4096)
        seen += chunk
        if found := re.search(rb"^PORT=(\d+)\r?\n", seen, re.MULTILINE):
            proc.stdout.close()
            return proc, int(found[1])
        if not chunk:
            break
    code = stop_front_process(proc)
    raise RuntimeError(f"chfront did not report its port (exit code {code}, output {seen[-500:]!r})")


def stop_front_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM the child front and wait for it (SIGKILL after `timeout`); returns its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()
    return proc.returncode


def _stop_on_stdin_eof(stop: threading.Event) -> None:
    while os.read(0, 65536):  # the raw fd: a thread blocked in sys.stdin.read() aborts interpreter exit
        pass
    stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve ClickHouse's HTTP interface from chdb (tests only).")
    parser.add_argument("data_dir")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    parser.add_argument("--config-file", default=None, help="a ClickHouse server configuration for the engine")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with ClickHouseFront(args.data_dir, port=args.port, config_file=args.config_file) as front:
        print(f"PORT={front.port}", flush=True)
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nobody reads our stdout after the port line
        if args.exit_on_stdin_eof:
            threading.Thread(target=_stop_on_stdin_eof, args=(stop,), daemon=True).start()
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
