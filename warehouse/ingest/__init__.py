"""Ingestion of result files: format detection, the registry of formats, and the shared load path.

Every format follows the same path: ClickHouse parses the file into a staging table (the bytes never
go through Python rows), SQL moves the valid rows into the warehouse tables tagged with a batch id,
and the batch is recorded as done last. A batch that never reached "done" (a killed process) is
deleted the next time the warehouse opens, so a file's rows are all there or none are.
"""

from __future__ import annotations

import gzip
import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from warehouse.backends import Backend
from warehouse.errors import IngestError, WarehouseError

SAMPLE_REJECTS = 5


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
        }


@dataclass(frozen=True)
class IngestJob:
    """What a format's loader needs: where to put rows and how to tag them."""

    backend: Backend
    path: Path
    run_id: str
    batch: str
    generator: str = ""
    services: dict[tuple[str, str], str] = field(default_factory=dict)  # (journey, step) -> service

    @property
    def stage(self) -> str:
        return f"stage_{self.batch}"


class Format(Protocol):
    name: ClassVar[str]
    tool: ClassVar[str]

    def sniff(self, head: bytes) -> bool:
        """Does a file starting with these bytes look like this format?"""

    def load(self, job: IngestJob, result: IngestResult) -> None:
        """Parse the file with ClickHouse and insert its valid rows; fill the counts in `result`."""


FORMATS: dict[str, Format] = {}


def register(cls: type) -> type:
    FORMATS[cls.name] = cls()  # type: ignore[attr-defined]
    return cls


def read_head(path: Path, size: int = 65536) -> bytes:
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
        opener: Any = gzip.open if magic == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:
            return bytes(fh.read(size))
    except (OSError, EOFError) as exc:
        raise IngestError(f"{path}: cannot read: {exc}") from None


def detect_format(path: Path) -> Format:
    head = read_head(path)
    if not head.strip():
        raise IngestError(f"{path}: the file is empty; nothing to ingest")
    for fmt in FORMATS.values():
        if fmt.sniff(head):
            return fmt
    first = head.splitlines()[0][:80].decode(errors="replace")
    raise IngestError(
        f"{path}:1: not a results file perfhouse knows (k6 JSON, JMeter JTL CSV); it starts with {first!r}"
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def ingest_file(
    backend: Backend,
    path: Path,
    run_id: str,
    fmt: str | None = None,
    generator: str = "",
    services: dict[tuple[str, str], str] | None = None,
) -> IngestResult:
    """Ingest one file into run `run_id` (which the caller records in `runs`)."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: the file is empty; nothing to ingest")
    fmt_impl = FORMATS[fmt] if fmt else detect_format(path)
    sha = file_sha256(path)
    result = IngestResult(run_id, str(path), fmt_impl.name, fmt_impl.tool)
    with backend.session():
        seen = backend.query(
            "SELECT run_id FROM ingested_files FINAL WHERE sha256 = {sha:String} AND state = 'done' LIMIT 1",
            {"sha": sha},
        )
        if seen:
            result.run_id, result.duplicate = seen[0]["run_id"], True
            return result
        job = IngestJob(backend, path, run_id, uuid.uuid4().hex, generator, services or {})
        _record(backend, job, sha, fmt_impl.name, "started", result)
        try:
            fmt_impl.load(job, result)
        except BaseException:
            discard_batch(backend, job.batch)
            raise
        finally:
            backend.command(f"DROP TABLE IF EXISTS {job.stage}")
        _record(backend, job, sha, fmt_impl.name, "done", result)
        if result.rows == 0 and result.points == 0:
            discard_batch(backend, job.batch)
            raise IngestError(_nothing_valid(path, result))
    return result


def _nothing_valid(path: Path, result: IngestResult) -> str:
    where = f" (line {result.samples[0].line}: {result.samples[0].reason})" if result.samples else ""
    return f"{path}: no valid {result.format} rows; {result.rejected} rejected{where}"


def _record(backend: Backend, job: IngestJob, sha: str, fmt: str, state: str, result: IngestResult) -> None:
    backend.command(
        "INSERT INTO ingested_files (batch, run_id, sha256, path, format, state, rows, rejected, ingested_at) "
        "VALUES ({batch:String}, {run:String}, {sha:String}, {path:String}, {fmt:String}, {state:String}, "
        "{rows:UInt64}, {rejected:UInt64}, now64(3))",
        {
            "batch": job.batch,
            "run": job.run_id,
            "sha": sha,
            "path": str(job.path),
            "fmt": fmt,
            "state": state,
            "rows": result.rows,
            "rejected": result.rejected,
        },
    )


def discard_batch(backend: Backend, batch: str) -> None:
    """Remove every row of a batch that did not finish, and mark it failed."""
    for table in ("requests", "k6_points"):
        backend.command(f"DELETE FROM {table} WHERE batch = {{b:String}}", {"b": batch})
    backend.command(
        "INSERT INTO ingested_files (batch, run_id, sha256, path, format, state, rows, rejected, ingested_at) "
        "SELECT batch, run_id, sha256, path, format, 'failed', 0, rejected, now64(3) "
        "FROM ingested_files FINAL WHERE batch = {b:String}",
        {"b": batch},
    )


def recover(backend: Backend) -> list[str]:
    """Discard batches left unfinished by a process that died mid-ingest; drop their staging tables."""
    with backend.session():
        stale = backend.query("SELECT batch FROM ingested_files FINAL WHERE state = 'started'")
        for row in stale:
            discard_batch(backend, row["batch"])
        for row in backend.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE 'stage\\_%'"
        ):
            backend.command(f"DROP TABLE IF EXISTS {row['name']}")
    return [r["batch"] for r in stale]


def stage_lines(job: IngestJob, columns: list[str], fmt: str, settings: dict[str, Any] | None = None) -> int:
    """Create the staging table (file order kept) and let ClickHouse parse the file into it."""
    cols = ", ".join(f"{c} String" for c in columns)
    job.backend.command(f"CREATE TABLE {job.stage} ({cols}) ENGINE = Log")
    try:
        job.backend.load_file(job.stage, columns, job.path, fmt, settings)
    except WarehouseError as exc:
        raise IngestError(f"{job.path}: ClickHouse could not read the file: {exc}") from None
    rows = job.backend.query(f"SELECT count() AS n FROM {job.stage}")
    return int(rows[0]["n"])


def service_map_params(job: IngestJob) -> dict[str, Any]:
    """(journey, step) → service as two arrays for ClickHouse's transform()."""
    keys = [f"{j}\t{s}" for j, s in job.services]
    return {"svc_keys": keys, "svc_values": list(job.services.values())}


def count_rejects(
    job: IngestJob,
    result: IngestResult,
    reason_sql: str,
    keep_sql: str = "1",
    text_sql: str = "line",
    first_line: int = 1,
) -> None:
    """Count staged rows whose `reason_sql` is not empty; keep the first few with their line numbers."""
    rows = job.backend.query(
        f"SELECT count() AS n, groupArray({SAMPLE_REJECTS})((lineno, reason, text)) AS sample FROM ("
        f"  SELECT lineno, reason, text FROM ("
        f"    SELECT rowNumberInAllBlocks() + {int(first_line)} AS lineno, ({reason_sql}) AS reason,"
        f"           substring({text_sql}, 1, 120) AS text, ({keep_sql}) AS keep FROM {job.stage}"
        f"  ) WHERE reason != '' AND keep ORDER BY lineno"
        f") SETTINGS max_threads = 1"
    )
    result.rejected = int(rows[0]["n"])
    result.samples = [Rejected(int(line), str(reason), str(text)) for line, reason, text in rows[0]["sample"]]


# Register the built-in formats.
from warehouse.ingest import jtl_csv, k6_json  # noqa: E402

__all__ = [
    "FORMATS",
    "IngestError",
    "IngestResult",
    "Rejected",
    "detect_format",
    "ingest_file",
    "jtl_csv",
    "k6_json",
    "recover",
]
