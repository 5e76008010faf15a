"""Live progress of a run: requests, errors, VUs and recent p95 from the tools' growing output files, as lines."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol, TextIO

from warehouse.ingest.jtl_csv import TRANSACTION_MESSAGE


@dataclass
class Counts:
    requests: int = 0
    errors: int = 0
    durations: list[float] = field(default_factory=list)  # ms, of the requests since the last `take_p95`

    def take_p95(self) -> float | None:
        """The p95 (nearest rank) of the durations fed since the last call, which it then forgets."""
        if not self.durations:
            return None
        ordered = sorted(self.durations)
        self.durations = []
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class Counter(Protocol):
    """Counts requests, errors and durations in complete lines of one result format, fed as the file grows;
    `vus` is the tool's latest count of active VUs (threads) in this file, None until it says."""

    suffix: ClassVar[str]
    vus: int | None

    def feed(self, lines: list[bytes], counts: Counts) -> None: ...


COUNTERS: dict[str, type[Counter]] = {}


def register(cls: type) -> type:
    COUNTERS[cls.suffix] = cls  # type: ignore[attr-defined]
    return cls


_VALUE = re.compile(rb'"value":(-?[0-9][0-9.eE+-]*)')


def _value(line: bytes) -> float | None:
    m = _VALUE.search(line)
    try:
        return float(m[1]) if m else None
    except ValueError:
        return None


@register
class K6JsonCounter:
    """k6 `--out json`: one http_reqs point per request; http_req_failed points with value 1 are errors;
    http_req_duration points are the durations; `vus` points (about one a second) the active VUs."""

    suffix: ClassVar[str] = ".json"

    def __init__(self) -> None:
        self.vus: int | None = None

    def feed(self, lines: list[bytes], counts: Counts) -> None:
        for line in lines:
            if b'"type":"Point"' not in line:
                continue
            if b'"metric":"http_reqs"' in line:
                counts.requests += 1
            elif b'"metric":"http_req_failed"' in line and b'"value":1,' in line:
                counts.errors += 1
            elif b'"metric":"http_req_duration"' in line:
                if (value := _value(line)) is not None:
                    counts.durations.append(value)
            elif b'"metric":"vus"' in line and (value := _value(line)) is not None:
                self.vus = int(value)


# allThreads in the headerless default layouts, by column count: JMeter 2.13's 12 and 5.x's 17
_ALL_THREADS = {12: 10, 17: 12}


@register
class JtlCsvCounter:
    """JMeter CSV JTL: one line per sample; `success` false is an error, `elapsed` the duration, `allThreads`
    the active threads of this JMeter (header row, or the default layouts of 2.13's 12 and 5.x's 17 columns).
    A Transaction Controller's own sample (a group of requests, not a request) is not counted, as the warehouse
    does not store it."""

    suffix: ClassVar[str] = ".jtl"

    def __init__(self) -> None:
        self.success_column: int | None = None
        self.elapsed_column = 1
        self.threads_column: int | None = None
        self.message_column: int | None = 4  # responseMessage, 5th in both default layouts
        self.header = False
        self.vus: int | None = None

    def feed(self, lines: list[bytes], counts: Counts) -> None:
        text = b"\n".join(line.rstrip(b"\r\n") for line in lines).decode("utf-8", errors="replace")
        for row in csv.reader(io.StringIO(text)):
            if not row:
                continue
            if self.success_column is None:
                if "success" in row:
                    self.header = True
                    self.success_column = row.index("success")
                    self.elapsed_column = row.index("elapsed") if "elapsed" in row else 1
                    self.threads_column = row.index("allThreads") if "allThreads" in row else None
                    self.message_column = row.index("responseMessage") if "responseMessage" in row else None
                    continue
                self.success_column = 7
            if not self.header and self.threads_column is None:
                self.threads_column = _ALL_THREADS.get(len(row))
            if self.message_column is not None and len(row) > self.message_column and row[
                    self.message_column].startswith(TRANSACTION_MESSAGE):
                continue
            counts.requests += 1
            if len(row) > self.success_column and row[self.success_column].strip().lower() != "true":
                counts.errors += 1
            if len(row) > self.elapsed_column:
                with contextlib.suppress(ValueError):
                    counts.durations.append(float(row[self.elapsed_column]))
            if self.threads_column is not None and len(row) > self.threads_column:
                with contextlib.suppress(ValueError):
                    self.vus = int(row[self.threads_column])


@dataclass
class _Tail:
    path: Path
    counter: Counter
    offset: int = 0
    pending: bytes = b""

    def read(self, counts: Counts) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return
        self.offset += len(data)
        data = self.pending + data
        cut = data.rfind(b"\n") + 1
        self.pending = data[cut:]
        if cut:
            self.counter.feed(data[:cut].splitlines(), counts)


@dataclass
class Progress:
    """Prints `<tool>: 12s/30s, 6 VUs, 340 requests, 2 errors, p95 41ms` every interval while the run goes.

    VUs add up the latest count of every output (one per generator); p95 is over the requests that
    appeared since the previous line (`-` when none did). Each update reads only the bytes added since.
    """

    tool: str
    outputs: list[Path]
    total_s: float
    interval_s: float
    echo: Callable[[str], None]
    screen: TextIO | None = None  # a terminal: one line redrawn in place each second, not lines
    counts: Counts = field(default_factory=Counts)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = 0.0

    def __post_init__(self) -> None:
        self._tails = [_Tail(p, COUNTERS[p.suffix]()) for p in self.outputs if p.suffix in COUNTERS]

    def update(self) -> Counts:
        for tail in self._tails:
            tail.read(self.counts)
        return self.counts

    @property
    def vus(self) -> int:
        return sum(t.counter.vus or 0 for t in self._tails)

    def line(self) -> str:
        """The progress line; it starts a new p95 interval."""
        elapsed = time.monotonic() - self._started
        total = f"/{self.total_s:.0f}s" if self.total_s else ""
        c = self.counts
        p95 = c.take_p95()
        recent = "-" if p95 is None else f"{p95:.0f}ms"
        return f"{self.tool}: {elapsed:.0f}s{total}, {self.vus} VUs, {c.requests} requests, {c.errors} errors, p95 {recent}"

    def _loop(self) -> None:
        while not self._stop.wait(min(self.interval_s, 1.0) if self.screen else self.interval_s):
            self.update()
            if self.screen is not None:
                self.screen.write("\r\x1b[K" + self.line())
                self.screen.flush()
            else:
                self.echo(self.line())

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="perfhouse-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.screen is not None:  # the final line is echoed as usual, in place of the live one
            self.screen.write("\r\x1b[K")
            self.screen.flush()
