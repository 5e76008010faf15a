"""Live progress of a run: requests, errors, VUs and recent p95 from the tools' growing output files, as lines."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from orchestrator.tools import Counter, Counts, Output

__all__ = ["Counter", "Counts", "Progress"]


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
    outputs: list[Output]
    total_s: float
    interval_s: float
    echo: Callable[[str], None]
    screen: TextIO | None = None  # a terminal: one line redrawn in place each second, not lines
    counts: Counts = field(default_factory=Counts)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = 0.0

    def __post_init__(self) -> None:
        self._tails = [_Tail(o.path, o.format.counter()) for o in self.outputs if o.format.counter is not None]

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
