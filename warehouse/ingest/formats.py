"""The formats ingest reads, and what a format is: the protocol each format module fills, the job and result a
loader gets, and detection of a file's format from its first bytes.

A format module registers its class with `register`; `all_formats()` finds the modules on first use (discovery
under warehouse/tools/, one package per tool, as orchestrator.tools finds its tools), so adding a format is adding
a module to its tool's package. A format:

- `name` (what `--format` takes) and `tool` (the tool whose output it is: the run's tool);
- `sniff(head)`: does a file starting with these bytes (decompressed, see files.read_head) look like it?
- `load(job, result)`: let ClickHouse parse `job.path`, write the valid rows into `job.table(name)` for each
  warehouse table in BATCH_TABLES, and fill the counts of `result` (see sql.py for the shared statements);
- optional `direct = True`: small files may load straight into the warehouse tables (IngestJob.direct);
- optional `loose = True`: its sniff accepts text that other formats may also start with, so detection tries
  it after every other format;
- optional `run_meta(path)`: what the file says of its own run (a name, a start time, the tool's version, notes;
  Gatling's RUN record), which fills only what the user's options, sidecars and the file's name leave unsaid.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from warehouse.engine.backends import Backend, quote_identifier
from warehouse.engine.batches import BATCH_TABLES
from warehouse.engine.cluster import home
from warehouse.errors import IngestError
from warehouse.ingest.files import nothing_read, read_head

# Every staging table of a batch is stage_<batch><suffix>: the parsed lines ("", "_lines"; Log tables) and a copy
# of each warehouse table its rows go to before they are attached. ("_summary" and "_summary_mv", the histogram an
# older perfhouse kept by a materialized view, are dropped with them, for a batch such a version left behind.)
LINE_SUFFIXES = ("", "_lines")
OLD_SUFFIXES = ("_summary_mv", "_summary")


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    text: str


@dataclass
class IngestResult:
    run_id: str
    path: str
    format: str
    tool: str
    rows: int = 0  # HTTP requests added to the unified table
    points: int = 0  # raw metric points kept (k6)
    rejected: int = 0
    samples: list[Rejected] = field(default_factory=list)
    duplicate: bool = False
    first_ts: str = ""
    last_ts: str = ""
    aggregates: int = 0  # interval aggregates kept (JMeter's InfluxDB backend listener)
    notes: list[str] = field(default_factory=list)  # what a reader must know about these rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "rows": self.rows,
            "points": self.points,
            "rejected": self.rejected,
            "rejected_lines": [{"line": r.line, "reason": r.reason, "text": r.text} for r in self.samples],
            "duplicate": self.duplicate,
            "format": self.format,
            "tool": self.tool,
            "path": self.path,
            "aggregates": self.aggregates,
            "notes": self.notes,
        }


# The expected status of a step whose status alone does not decide (it expects several, or the spec does not know
# it): the tool's own success flag decides.
UNKNOWN_STEP = 65535


@dataclass(frozen=True)
class StepFacts:
    """What the spec knows of a step that a tool's output may not say: its method, the status it expects
    (0: any 2xx or 3xx) and how many checks it has. JMeter's results need it to tell a request error
    from a failed check, since JMeter fails a sample for either."""

    method: str = ""
    expected_status: int = 0
    checks: int = 0


@dataclass(frozen=True)
class IngestJob:
    """What a format's loader needs: where to put rows and how to tag them. A `direct` job's rows go straight
    into the warehouse tables (a small file: see `ingest_file`), so a loader reads back its rows by batch."""

    backend: Backend
    path: Path
    run_id: str
    batch: str
    generator: str = ""
    services: dict[tuple[str, str], str] = field(default_factory=dict)  # (journey, step) -> service
    source: Path | None = None  # the file the user gave (path is its plain copy when it was gzip)
    steps: dict[tuple[str, str], StepFacts] = field(default_factory=dict)  # (journey, step) -> what the spec says
    direct: bool = False

    @property
    def stage(self) -> str:
        """The table a loader may parse the file's lines into (stage_lines), before SQL checks them."""
        return f"stage_{self.batch}"

    def table(self, name: str) -> str:
        """The table a loader writes `name`'s rows of this batch to, and reads them back from (by batch): the
        batch's staging copy of warehouse table `name`, which ingest_file creates before the load and attaches
        after; for a direct job, the warehouse table itself."""
        if name not in BATCH_TABLES:
            raise ValueError(f"not a table a batch adds rows to: {name!r}")
        return home(self.backend, name) if self.direct else f"{self.stage}_{name}"

    @property
    def staged_requests(self) -> str:
        """The staging requests table whose rows the batch's summary reads (engine.summaries), '' for a direct
        job (its summary reads its rows in requests)."""
        return "" if self.direct else self.table("requests")

    def restart(self, name: str) -> None:
        """Empty the batch's staging copy of `name` (a loader that starts over)."""
        self.backend.command(f"TRUNCATE TABLE {quote_identifier(self.table(name))}")


class NeedsStaging(Exception):
    """Raised by a loader of a direct job when the file needs what only the staging path does (rejected
    lines counted after a failed strict pass): ingest_file undoes the batch and stages the file."""


class Format(Protocol):
    name: ClassVar[str]
    tool: ClassVar[str]
    # A format whose small files may load straight into the warehouse tables (IngestJob.direct) says so with a
    # class attribute `direct = True`; its loader then reads its rows back by batch and raises NeedsStaging for
    # what it cannot do there. A format whose sniff accepts loose text says so with `loose = True`: detection
    # tries it last.

    def sniff(self, head: bytes) -> bool:
        """Does a file starting with these bytes look like this format?"""

    def load(self, job: IngestJob, result: IngestResult) -> None:
        """Parse the file with ClickHouse and insert its valid rows; fill the counts in `result`."""


# Every registered format by name, in the order detection tries them once discovery has run (all_formats).
FORMATS: dict[str, Format] = {}
# Where the format modules live: every module under this package (one package per tool) is imported once.
FORMAT_HOME = "warehouse.tools"
_discovered = False


def register(cls: type) -> type:
    """Class decorator of a format module: one instance of the format, known by its name."""
    FORMATS[cls.name] = cls()  # type: ignore[attr-defined]
    return cls


def all_formats() -> dict[str, Format]:
    """Every format, by name, in the order detection tries them: found on first use by importing every module
    under FORMAT_HOME (each format module registers its formats); ordered by module, the loose ones last."""
    global _discovered
    if not _discovered:
        home = importlib.import_module(FORMAT_HOME)
        for module in pkgutil.walk_packages(home.__path__, f"{FORMAT_HOME}."):
            importlib.import_module(module.name)
        ordered = sorted(FORMATS.items(), key=lambda item: (bool(getattr(item[1], "loose", False)),
                                                            type(item[1]).__module__))
        FORMATS.clear()
        FORMATS.update(ordered)
        _discovered = True
    return FORMATS


def _refuse_binary(head: bytes, path: Path) -> None:
    """A file whose first line holds a NUL byte is binary data; one bad line further on is only rejected."""
    first = head.split(b"\n", 1)[0]
    if (at := first.find(b"\0")) >= 0:
        raise IngestError(f"{path}:1: binary data (a NUL byte at offset {at}), not a results file")


def detect_format(path: Path, shown: Path | None = None) -> Format:
    shown = shown or path
    head = read_head(path)
    if not head.strip():
        raise IngestError(f"{shown}: {nothing_read(path)}; nothing to ingest")
    for fmt in all_formats().values():
        if fmt.sniff(head):
            return fmt
    _refuse_binary(head, shown)
    first = head.splitlines()[0][:80].decode(errors="replace")
    raise IngestError(
        f"{shown}:1: not a results file perfhouse knows ({', '.join(FORMATS)}); it starts with {first!r}"
    )


def given_format(path: Path, name: str, shown: Path | None = None) -> Format:
    """The format named by --format; a file that plainly is another format, or binary, is refused, saying so."""
    if name not in all_formats():
        raise IngestError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    chosen, head = FORMATS[name], read_head(path)
    if not head.strip():
        raise IngestError(f"{shown or path}: {nothing_read(path)}; nothing to ingest")
    path = shown or path
    _refuse_binary(head, path)
    if not chosen.sniff(head):
        other = next((f for f in FORMATS.values() if f.sniff(head)), None)
        if other is not None:
            raise IngestError(
                f"{path}:1: --format {name} given, but the file is {other.name} ({other.tool} output); "
                f"use --format {other.name} or leave --format out"
            )
    return chosen

