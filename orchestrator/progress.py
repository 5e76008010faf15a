"""Live progress of a run: counts requests and errors in the tools' growing output files, prints lines."""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol


@dataclass
class Counts:
    requests: int = 0
    errors: int = 0


class Counter(Protocol):
    """Counts requests and errors in complete lines of one result format, fed as the file grows."""

    suffix: ClassVar[str]

    def feed(self, lines: list[bytes], counts: Counts) -> None: ...


COUNTERS: dict[str, type[Counter]] = {}


def register(cls: type) -> type:
    COUNTERS[cls.suffix] = cls  # type: ignore[attr-defined]
    return cls


@register
class K6JsonCounter:
    """k6 `--out json`: one http_reqs point per request; http_req_failed points with value 1 are errors."""

    suffix: ClassVar[str] = ".json"

    def feed(self, lines: list[bytes], counts: Counts) -> None:
        for line in lines:
            if b'"type":"Point"' not in line:
                continue
            if b'"metric":"http_reqs"' in line:
                counts.requests += 1
            elif b'"metric":"http_req_failed"' in line and b'"value":1,' in line:
                counts.errors += 1


@register
class JtlCsvCounter:
    """JMeter CSV JTL: one line per sample; `success` false is an error (header row or 2.13's 12 columns)."""

    suffix: ClassVar[str] = ".jtl"

    def __init__(self) -> None:
        self.success_column: int | None = None

    def feed(self, lines: list[bytes], counts: Counts) -> None:
        for row in csv.reader(io.StringIO(b"".join(lines).decode("utf-8", errors="replace"))):
            if not row:
                continue
            if self.success_column is None:
                if "success" in row:
                    self.success_column = row.index("success")
                    continue
                self.success_column = 7
            counts.requests += 1
            if len(row) > self.success_column and row[self.success_column].strip().lower() != "true":
                counts.errors += 1


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
    """Prints `<tool>: 12s/30s, 340 requests, 2 errors` every interval while the run goes."""

    tool: str
    outputs: list[Path]
    total_s: float
    interval_s: float
    echo: Callable[[str], None]
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

    def line(self) -> str:
        elapsed = time.monotonic() - self._started
        total = f"/{self.total_s:.0f}s" if self.total_s else ""
        c = self.counts
        return f"{self.tool}: {elapsed:.0f}s{total}, {c.requests} requests, {c.errors} errors"

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.update()
            self.echo(self.line())

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="perfhouse-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
