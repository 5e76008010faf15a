"""The results receiver: the InfluxDB v1 write API, so k6 and JMeter anywhere send their results home into one run.

k6's `--out influxdb=http://HOST:PORT/DB` and JMeter's InfluxDB Backend Listener POST line protocol to
`/write?db=DB` (k6 1.1.0: a write per push interval, 1 s by default, plain text, `precision=ns`, up to
four writes at once; a write that fails is logged and dropped, never sent again). The receiver holds each
write until the next store, every `flush_interval_s`, stores all it holds as one batch
(ingest.receive: the same path as `ingest --format influx-line`, each write once by its content hash)
and only then answers: 204 once the write is stored (or was already), 400 when none of its lines is
valid, 503 when the warehouse could not store it (a client that retries sends it again; it is never
stored twice). Bodies may be gzip (Content-Encoding). `/ping` answers 204 as InfluxDB does, and `/query`
accepts k6's `CREATE DATABASE` at start.

An embedded (chdb) warehouse is written by a worker process replaced every WORKER_STORES stores, as live
ingestion does (orchestrator.live): the session is closed after each store so other commands take turns,
and the threads and memory each session leaves in its process go with the worker, so a receiver that runs
for hours does not grow.

Beyond loopback the receiver requires a token, given as InfluxDB clients give credentials: the `p` URL
parameter, `Authorization: Token T` (or `Bearer T`), or HTTP Basic with the token as the password
(k6: `http://perfhouse:T@HOST:PORT/DB` or K6_INFLUXDB_USERNAME/K6_INFLUXDB_PASSWORD).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import ipaddress
import json
import multiprocessing
import os
import socket
import sys
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from orchestrator.errors import PerfhouseError
from orchestrator.live import _worker_dies_with
from warehouse.engine.owners import OWNER_LABEL, me
from warehouse.errors import IngestError, WarehouseError
from warehouse.ingest import StepFacts
from warehouse.ingest.influx_line import check_write
from warehouse.ingest.receive import Stored, Write, store_writes
from warehouse.report.text import shorten
from warehouse.store import RunInfo, Warehouse, new_run_id

DEFAULT_LISTEN = "127.0.0.1:8086"
MAX_BODY = 64 << 20  # bytes of one write as sent
MAX_PLAIN = 64 << 20  # bytes of one write decompressed: the cap holds while decompressing (a gzip bomb stops there)
GUNZIP_STEP = 1 << 20  # bytes decompressed at a time
# Connections the kernel queues while the server's thread accepts: every pod of a large k6-operator run (hundreds)
# may connect at the same moment, and a connection refused for a full queue is a write lost (k6 does not retry).
BACKLOG = 1024
MAX_HELD = 64 << 20  # bytes held before a store is started early
ANSWER_WITHIN_S = 120.0  # a write not stored by then is answered 503 (the client may send it again)
PRECISIONS = {"", "n", "ns", "u", "us", "ms", "s", "m", "h"}
INFLUX_VERSION = "1.8.10"  # the API version the receiver answers as
GATHER_S = 0.2  # after an idle interval, how long the first write waits for others to share its store
WORKER_STORES = 20  # stores one worker process makes into an embedded warehouse before a fresh one replaces it


_WORKER_WAREHOUSES: dict[str, Warehouse] = {}


def _store_in_worker(url: str, run_id: str, writes: list[Write], services: dict[tuple[str, str], str],
                     steps: dict[tuple[str, str], StepFacts]) -> Stored:
    """In the worker process: store one batch, then close the session so other processes can use the warehouse."""
    warehouse = _WORKER_WAREHOUSES.get(url)
    if warehouse is None:
        warehouse = _WORKER_WAREHOUSES[url] = Warehouse.open(url)
    try:
        return store_writes(warehouse.backend, run_id, writes, services, steps=steps)
    finally:
        release = getattr(warehouse.backend, "release", None)
        if release is not None:
            release()


class _Storer:
    """Stores batches: through a recycled worker process for an embedded warehouse, else in this process."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self._pool: ProcessPoolExecutor | None = None

    def store(self, run_id: str, writes: list[Write], services: dict[tuple[str, str], str],
              steps: dict[tuple[str, str], StepFacts]) -> Stored:
        if not getattr(self.warehouse.backend, "exclusive", False):
            return store_writes(self.warehouse.backend, run_id, writes, services, steps=steps)
        release = getattr(self.warehouse.backend, "release", None)
        if release is not None:  # this process's own session would only keep the worker waiting
            release()
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_dies_with, initargs=(os.getpid(),),
                                             max_tasks_per_child=WORKER_STORES)
        try:
            return self._pool.submit(_store_in_worker, self.warehouse.url, run_id, writes, services, steps).result()
        except BrokenProcessPool:  # the worker died (killed, out of memory): a fresh one for the next batch
            self.close()
            raise WarehouseError("the receiver's store worker died; the batch was not stored") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class BodyError(ValueError):
    """A request body the receiver refuses, with the HTTP status that says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def gunzip(body: bytes, cap: int = MAX_PLAIN) -> bytes:
    """A gzip body decompressed GUNZIP_STEP bytes at a time, refused (413) as soon as it passes `cap`, so a gzip
    bomb costs at most `cap` bytes; corrupt or cut-short data, or bytes after it that are no gzip member, are a
    400. Concatenated members are read as one stream, as gzip itself does."""
    parts: list[bytes] = []
    size, data = 0, body
    decomp = zlib.decompressobj(wbits=31)
    while True:
        try:
            chunk = decomp.decompress(data, GUNZIP_STEP)
        except zlib.error as exc:
            raise BodyError(400, f"the gzip body is corrupt after {size} decompressed bytes: {exc}") from None
        size += len(chunk)
        if size > cap:
            raise BodyError(413, f"the body decompresses to more than {cap} bytes")
        parts.append(chunk)
        if decomp.eof:
            data = decomp.unused_data
            if not data:
                return b"".join(parts)
            decomp = zlib.decompressobj(wbits=31)  # the next member
            continue
        data = decomp.unconsumed_tail
        if not data and not chunk:
            raise BodyError(400, f"the gzip body is cut short after {size} decompressed bytes")


class _Server(ThreadingHTTPServer):
    """A thread per connection, a deep listen queue, and a client that goes away is no error."""

    request_queue_size = BACKLOG
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):  # the client closed or reset its connection
            return
        print(f"perfhouse receive: a request from {client_address[0]} failed: {exc!r}", file=sys.stderr)


class ReceiverError(PerfhouseError):
    """The receiver cannot listen where it was asked to, or was asked to listen beyond loopback without a token."""


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ReceiverError(f"--listen {listen!r}: expected HOST:PORT, e.g. {DEFAULT_LISTEN} (port 0: any free port)")
    return host.strip("[]") or "0.0.0.0", int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Ticket:
    """A write waiting for its store; the HTTP handler answers with `status` once `done` is set."""

    write: Write
    done: threading.Event = field(default_factory=threading.Event)
    status: int = 0
    message: str = ""

    def answer(self, status: int, message: str = "") -> None:
        self.status, self.message = status, message
        self.done.set()


@dataclass
class ReceiverStats:
    writes: int = 0  # writes acknowledged as stored (new or sent again)
    again: int = 0  # of which the run held already
    batches: int = 0
    points: int = 0
    requests: int = 0
    aggregates: int = 0
    rejected: int = 0  # lines that were not valid line protocol
    failures: int = 0  # stores that failed (their writes answered 503)

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Receiver:
    """Listens on `listen`, stores writes into run `run_id` every `flush_interval_s`; start() then stop()."""

    def __init__(
        self,
        warehouse: Warehouse,
        run_id: str,
        listen: str = DEFAULT_LISTEN,
        token: str | None = None,
        flush_interval_s: float = 2.0,
        services: dict[tuple[str, str], str] | None = None,
        echo: Callable[[str], None] = lambda _: None,
        steps: dict[tuple[str, str], StepFacts] | None = None,
    ):
        self.warehouse, self.run_id = warehouse, run_id
        self.host, self.port = parse_listen(listen)
        if token is None and not is_loopback(self.host):
            raise ReceiverError(f"listening on {self.host} (beyond loopback) needs a token: --token or "
                                "PERFHOUSE_RECEIVE_TOKEN")
        self.token = token
        self.flush_interval_s = flush_interval_s
        self.services = services or {}
        self.steps = steps or {}  # what the spec says of each step (expected status, checks)
        self.echo = echo
        self.stats = ReceiverStats()
        self.problems: list[str] = []
        self._held: list[Ticket] = []
        self._held_bytes = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._arrived = threading.Event()  # set by each write held
        self._stopping = threading.Event()
        self._closed = False  # set once the last store is taken: later writes are refused (503)
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._storer = _Storer(warehouse)

    @property
    def url(self) -> str:
        """The base URL clients write to (`/write` is below it)."""
        host = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def advertised_url(self) -> str:
        """The URL for clients on other hosts: this host's name when listening on every address."""
        if self.host in ("0.0.0.0", "::"):
            return f"http://{socket.getfqdn()}:{self.port}"
        return self.url

    def start(self) -> Receiver:
        handler = type("Handler", (_Handler,), {"receiver": self})
        try:
            server = _Server((self.host, self.port), handler)
        except OSError as exc:
            raise ReceiverError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        self._server = server
        self.port = int(server.server_address[1])
        self._threads = [
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                             name="perfhouse-receiver-http", daemon=True),
            threading.Thread(target=self._store_loop, name="perfhouse-receiver-store", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, store what is held, and answer every write still waiting."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._stopping.set()
        self._wake.set()
        self._arrived.set()
        for thread in self._threads:
            thread.join()
        self._threads = []
        with self._lock:
            self._closed = True
        self._store(self._take())  # writes that arrived as the server stopped
        self._storer.close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- storing ---------------------------------------------------------------------------------

    def submit(self, write: Write) -> Ticket:
        ticket = Ticket(write)
        with self._lock:
            if self._closed:  # a kept-alive connection outlives the server's shutdown
                ticket.answer(503, "the receiver is stopping; send the write to the next one")
                return ticket
            self._held.append(ticket)
            self._held_bytes += len(write.body)
            self._arrived.set()
            if self._held_bytes >= MAX_HELD:
                self._wake.set()
        return ticket

    def _take(self) -> list[Ticket]:
        with self._lock:
            held, self._held, self._held_bytes = self._held, [], 0
        return held

    def _store_loop(self) -> None:
        """A store every flush_interval_s from the start of the previous one (a long store is not followed by a
        whole interval of waiting), or at once when MAX_HELD bytes are held. When the interval is over and
        nothing is held, the next store starts GATHER_S after the next write arrives, with what came by then
        (clients answered together send their next writes together)."""
        started = time.monotonic()
        while not self._stopping.is_set():
            self._wake.wait(max(0.0, started + self.flush_interval_s - time.monotonic()))
            self._wake.clear()
            with self._lock:
                idle = not self._held
                self._arrived.clear()
            if idle:
                self._arrived.wait(self.flush_interval_s)
                if self._stopping.is_set():
                    break
                time.sleep(GATHER_S)
            started = time.monotonic()
            self._store(self._take())

    def _store(self, held: list[Ticket]) -> None:
        if not held:
            return
        try:
            outcome = self._storer.store(self.run_id, [t.write for t in held], self.services, self.steps)
        except IngestError as exc:
            for ticket in held:
                ticket.answer(400, str(exc))
            self.problems.append(str(exc))
            return
        except (WarehouseError, OSError) as exc:
            self.stats.failures += 1
            self._problem(f"a batch of {len(held)} writes was not stored (their clients get 503): {exc}")
            for ticket in held:
                ticket.answer(503, f"not stored: {exc}")
            return
        stats = self.stats
        stats.writes += len(held)
        stats.again += sum(1 for t in held if t.write.sha256 in outcome.duplicates)
        if outcome.result is not None:
            result = outcome.result
            stats.batches += 1
            stats.points += result.points
            stats.requests += result.rows
            stats.aggregates += result.aggregates
            stats.rejected += result.rejected
            rejected = f", {result.rejected} lines rejected" if result.rejected else ""
            self.echo(f"stored {len(outcome.stored)} writes: {result.points} points, {result.rows} requests"
                      f"{rejected}")
        for ticket in held:
            ticket.answer(204)

    def _problem(self, message: str) -> None:
        self.problems.append(message)
        self.echo(message)

    # -- authentication ----------------------------------------------------------------------------

    def authorized(self, headers: Any, query: dict[str, list[str]]) -> bool:
        if self.token is None:
            return True
        offered = [*query.get("p", [])]
        auth = str(headers.get("Authorization") or "")
        scheme, _, credential = auth.partition(" ")
        if scheme.lower() in ("token", "bearer"):
            offered.append(credential.strip())
        elif scheme.lower() == "basic":
            with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                offered.append(base64.b64decode(credential.strip()).decode().partition(":")[2])
        return any(hmac.compare_digest(o.encode(), self.token.encode()) for o in offered)


class _Handler(BaseHTTPRequestHandler):
    receiver: Receiver
    protocol_version = "HTTP/1.1"  # keep-alive: k6 reuses its connections
    server_version = "perfhouse-receiver"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("X-Influxdb-Version", INFLUX_VERSION)
        if body is not None:
            self.send_header("Content-Type", "application/json")
            if "error" in body:  # a header is one line of ASCII: the message quotes the client's bytes
                header = shorten(body["error"], 400).encode("ascii", "backslashreplace").decode("ascii")
                self.send_header("X-Influxdb-Error", header)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": message})

    def do_GET(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        try:
            body = self._body()
        except BodyError as exc:
            self.close_connection = True
            self._error(exc.status, str(exc))
            return
        if parts.path == "/ping":
            self._send(204)
        elif not self.receiver.authorized(self.headers, query):
            self._error(401, "authorization failed")
        elif parts.path == "/query":
            self._send(200, {"results": [{"statement_id": 0}]})  # k6 creates its database at start
        elif parts.path == "/write" and self.command == "POST":
            self._write(body, query)
        else:
            self._error(404, f"{self.command} {parts.path}: the receiver answers /write, /ping and /query")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(1024).split(b";")[0].strip()
                try:
                    n = int(line, 16)
                except ValueError:
                    raise BodyError(400, "malformed chunked body") from None
                if n == 0:
                    while self.rfile.readline(1024).strip():  # trailers
                        pass
                    return b"".join(chunks)
                size += n
                if size > MAX_BODY or n < 0:
                    raise BodyError(413, f"request too large (more than {MAX_BODY} bytes)")
                chunks.append(self.rfile.read(n))
                self.rfile.readline(8)
        text = self.headers.get("Content-Length") or "0"
        if not text.strip().isdigit():
            raise BodyError(400, f"Content-Length {text[:40]!r} is not a number")
        length = int(text)
        if length > MAX_BODY:
            raise BodyError(413, f"request too large ({length} bytes; at most {MAX_BODY})")
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise BodyError(400, f"the body ended after {len(body)} of {length} bytes")
        return body

    def _write(self, body: bytes, query: dict[str, list[str]]) -> None:
        precision = query.get("precision", [""])[0]
        if precision not in PRECISIONS:
            self._error(400, f"precision {precision!r} is not one of {', '.join(sorted(PRECISIONS - {''}))}")
            return
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            try:
                body = gunzip(body)
            except BodyError as exc:
                self.close_connection = True
                self._error(exc.status, str(exc))
                return
        if not body.strip():
            self._send(204)
            return
        checked = check_write(body)
        if not checked.valid:  # nothing to store: said at once, with the line of the write (as InfluxDB does)
            with self.receiver._lock:
                self.receiver.stats.rejected += checked.rejected
            self._error(400, f"unable to parse: {checked.problem}")
            return
        ticket = self.receiver.submit(Write.of(body))
        if not ticket.done.wait(ANSWER_WITHIN_S):
            self._error(503, "not stored in time; send the write again")
            return
        if ticket.status == 204 and checked.rejected:  # the valid lines are stored; InfluxDB says which were not
            self._error(400, f"partial write: {checked.rejected} lines dropped, the other {checked.valid} stored; "
                             f"{checked.problem}")
        elif ticket.status == 204:
            self._send(204)
        else:
            self._error(ticket.status, ticket.message)


@dataclass
class Received:
    """What a `perfhouse receive` session stored, into which run."""

    run_id: str
    url: str
    stats: ReceiverStats
    problems: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "url": self.url, **self.stats.to_dict(), "problems": self.problems}


def receive(
    warehouse: Warehouse,
    run_ref: str | None,
    listen: str,
    token: str | None,
    flush_interval_s: float,
    echo: Callable[[str], None],
    ready: Callable[[Receiver], None] = lambda _: None,
) -> Received:
    """Receive into an existing run (`run_ref`: an id, prefix or `latest`) or a new one, until Ctrl-C or
    SIGTERM (the caller turns it into KeyboardInterrupt); store what is held, and end a new run completed."""
    if run_ref:
        info = RunInfo(warehouse.resolve(run_ref), "")
        created = False
    else:
        # while it receives the run carries its owner: a receiver killed leaves it marked aborted, not running
        info = RunInfo(new_run_id("k6"), "k6", name="received", source="receive", labels={OWNER_LABEL: me().token})
        warehouse.save_run(info)
        created = True
    receiver = Receiver(warehouse, info.run_id, listen, token, flush_interval_s, echo=echo)
    try:
        receiver.start()
    except ReceiverError:
        if created:
            warehouse.finish_run(info, "failed", "the receiver could not listen")
        raise
    ready(receiver)
    try:
        while True:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
        if created:
            info.labels.pop(OWNER_LABEL, None)
            status = "completed" if receiver.stats.points or receiver.stats.aggregates else "failed"
            warehouse.finish_run(info, status, "" if status == "completed" else "the receiver stored nothing")
    return Received(info.run_id, receiver.url, receiver.stats, receiver.problems)
