"""Live ingestion: the tools' growing outputs cut at safe boundaries into chunks, each ingested into the run.

Every interval, each output is read from where the last chunk ended. A cutter (one per result format, which
the tool declares) says how many of the new bytes form a safe chunk: k6 JSON writes the points of one HTTP request as
consecutive lines with one timestamp, and the warehouse rebuilds the request from its points within a
batch, so a cut must never fall inside one request; a JTL CSV line is one sample (a quoted field may hold
a line break, so a cut falls only where the quotes are balanced). The chunk goes into a file in the run
directory (`live/`), is ingested as its own batch into the same run, and the offset moves past it. At the
end, the rest of each file is ingested the same way; the full raw file is never ingested on top of its
chunks. The chunks together hold exactly the file's bytes (a JTL chunk repeats the header row), so the
run's requests, counts and percentiles equal those of one ingest of the whole file.

An embedded (chdb) warehouse is written by a worker process, not by perfhouse itself: the session must be
closed between chunks so the dashboard can read, and every chdb session opened and closed in a process
leaves threads and memory behind in it, so a run of hours would grow without end. The worker is replaced
after WORKER_CHUNKS chunks, which bounds what it can accumulate whatever the length of the run.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.tools import Cutter, Output
from warehouse.errors import IngestError, WarehouseBusy
from warehouse.ingest import IngestResult, StepFacts
from warehouse.ingest.sql import SAMPLE_REJECTS
from warehouse.store import RunInfo, Warehouse

MAX_READ = 64 << 20  # bytes read from a file per chunk: memory stays bounded however far behind
WORKER_CHUNKS = 20  # chunks one worker process ingests before a fresh one replaces it


@dataclass
class LiveFile:
    """One growing output: where its next chunk starts and the header each chunk repeats."""

    path: Path
    generator: str
    cutter: Cutter
    offset: int = 0
    header: bytes | None = None  # None until read from the start of the file
    chunks: int = 0
    results: IngestResult | None = None  # what the chunks of this file added to the run, summed


_WORKER_WAREHOUSES: dict[str, Warehouse] = {}


def _worker_dies_with(parent: int) -> None:
    """In the worker process: exit as soon as perfhouse is gone (a kill -9 must not leave it writing)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="perfhouse-live-parent", daemon=True).start()


def _ingest_in_worker(url: str, run: RunInfo, path: Path, services: dict[tuple[str, str], str],
                      generator: str, steps: dict[tuple[str, str], StepFacts]) -> IngestResult:
    """In the worker process: ingest one chunk, then close the session so other processes can read."""
    warehouse = _WORKER_WAREHOUSES.get(url)
    if warehouse is None:
        warehouse = _WORKER_WAREHOUSES[url] = Warehouse.open(url)
    try:
        return warehouse.ingest(path, run, services=services, generator=generator, steps=steps)
    finally:
        release = getattr(warehouse.backend, "release", None)
        if release is not None:
            release()


class ChunkWriter:
    """Ingests chunks into the run: through a recycled worker process for an embedded warehouse, else here."""

    def __init__(self, warehouse: Warehouse, chunks_per_worker: int = WORKER_CHUNKS) -> None:
        self.warehouse = warehouse
        self.chunks_per_worker = chunks_per_worker
        self._pool: ProcessPoolExecutor | None = None

    @property
    def in_worker(self) -> bool:
        return bool(getattr(self.warehouse.backend, "exclusive", False))

    def ingest(self, path: Path, run: RunInfo, services: dict[tuple[str, str], str], generator: str,
               steps: dict[tuple[str, str], StepFacts]) -> IngestResult:
        if not self.in_worker:
            return self.warehouse.ingest(path, run, services=services, generator=generator, steps=steps)
        release = getattr(self.warehouse.backend, "release", None)
        if release is not None:  # this process's own session would only keep the worker waiting
            release()
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_dies_with, initargs=(os.getpid(),),
                                             max_tasks_per_child=self.chunks_per_worker)
        future = self._pool.submit(_ingest_in_worker, self.warehouse.url, run, path, services, generator, steps)
        try:
            return future.result()
        except BrokenProcessPool:  # the worker died (killed, out of memory): a fresh pool for the next chunk
            self.close()
            raise IngestError(f"the live ingest worker died while ingesting {path.name}") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@dataclass
class LiveIngest:
    """Ingests the outputs while the tools run (a thread, every `interval_s`), and the rest at `finish()`."""

    warehouse: Warehouse
    run: RunInfo
    outputs: list[Output]
    directory: Path  # chunk files go to directory/live
    interval_s: float = 5.0
    services: dict[tuple[str, str], str] = field(default_factory=dict)
    echo: Callable[[str], None] = lambda _: None
    # One result per output file, each chunk's counts added to it: nothing grows with the length of the run
    ingested: list[IngestResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    steps: dict[tuple[str, str], StepFacts] = field(default_factory=dict)  # what the spec says of each step
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.files = [LiveFile(o.path, o.generator, o.format.cutter()) for o in self.outputs if o.format.cutter]
        self.unsupported = [o.path for o in self.outputs if o.format.cutter is None]
        self.writer = ChunkWriter(self.warehouse)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="perfhouse-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def close(self) -> None:
        """Stop the thread and the worker process; what was not ingested stays out of the run."""
        self.stop()
        self.writer.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.tick(final=False)
            # An embedded warehouse's session lingers after a unit of work; with ticks closer together than
            # that, the run would hold it for good: let the dashboard and other readers in between ticks.
            release = getattr(self.warehouse.backend, "release", None)
            if release is not None:
                release()

    def finish(self, attempts: int = 3) -> None:
        """After the tools stopped: ingest what is left of every file, to its last byte."""
        self.stop()
        try:
            for _ in range(attempts):  # each attempt waits the warehouse's lock timeout when it is busy
                if self.tick(final=True):
                    return
            for live in self.files:
                if live.path.exists() and live.offset < live.path.stat().st_size:
                    self._problem(f"live ingest left {live.path} from byte {live.offset} on out of the run")
        finally:
            self.writer.close()

    def tick(self, final: bool) -> bool:
        """Ingest what is safe of every file; True when every file was read to its end."""
        for live in self.files:
            while self._step(live, final):
                pass
        return all(not f.path.exists() or f.offset >= f.path.stat().st_size for f in self.files)

    def _step(self, live: LiveFile, final: bool) -> bool:
        """Ingest one chunk of `live`; True when more may follow at once (a file read in MAX_READ pieces)."""
        try:
            with open(live.path, "rb") as fh:
                if live.header is None:
                    head = fh.read(MAX_READ)
                    size = live.cutter.header(head)
                    if size < 0 and not final:
                        return False
                    live.header = head[: max(size, 0)]
                    live.offset = len(live.header)
                fh.seek(live.offset)
                data = fh.read(MAX_READ)
                more = bool(fh.read(1))
        except FileNotFoundError:
            return False
        except OSError as exc:
            self._problem(f"live ingest: cannot read {live.path}: {exc}")
            return False
        size = live.cutter.cut(data, final and not more)
        if size == 0 and more:  # MAX_READ bytes without a safe boundary: cut after a whole line
            size = data.rfind(b"\n") + 1
        if size == 0:
            return False
        chunk = data[:size]
        if live.cutter.worth_ingesting(chunk) and not self._ingest(live, live.header + chunk):
            return False  # the warehouse was busy: the same bytes (and maybe more) next time
        live.offset += size
        return more

    def _ingest(self, live: LiveFile, content: bytes) -> bool:
        folder = self.directory / "live"
        folder.mkdir(exist_ok=True)
        live.chunks += 1
        path = folder / f"{live.path.stem}.{live.chunks:05d}{live.path.suffix}"
        path.write_bytes(content)
        try:
            result = self.writer.ingest(path, self.run, self.services, live.generator, self.steps)
        except WarehouseBusy as exc:
            self._problem(f"live ingest waits: {exc}")
            path.unlink(missing_ok=True)
            live.chunks -= 1
            return False
        except IngestError as exc:
            self._problem(f"live ingest of {live.path.name} bytes {live.offset}..: {exc}")
            return True
        path.unlink(missing_ok=True)  # its bytes are in the raw output; the warehouse holds its rows
        self._add(live, result)
        return True

    def _add(self, live: LiveFile, result: IngestResult) -> None:
        """Add a chunk's result to its file's (the first chunk's result, which stands for the whole file)."""
        total = live.results
        if total is None:
            live.results = result
            self.ingested.append(result)
            return
        total.rows += result.rows
        total.points += result.points
        total.rejected += result.rejected
        total.aggregates += result.aggregates
        total.samples.extend(result.samples[: max(0, SAMPLE_REJECTS - len(total.samples))])
        total.notes.extend(n for n in result.notes if n not in total.notes)
        total.first_ts = min(filter(None, (total.first_ts, result.first_ts)), default="")
        total.last_ts = max(total.last_ts, result.last_ts)

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)
            self.echo(text)
