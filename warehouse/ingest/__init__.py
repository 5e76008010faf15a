"""Ingestion of result files: format detection, the registry of formats, and the shared load path.

Every format follows the same path: ClickHouse parses the file (the bytes never go through Python rows)
and SQL writes the valid rows, tagged with a batch id, into the batch's own staging copies of the
warehouse tables (`IngestJob.table`: same engine, partition key, sorting key, codecs and TTL). Readers
never look there, so a file's rows stay invisible while they load, and a load that fails only drops its
staging tables. A loaded batch is then moved into the warehouse tables partition by partition with
ATTACH PARTITION FROM (a part swap, no copy of the data: each partition's rows appear at once), and
recorded as done last. A batch that never reached "done" (a killed process) is removed the next time the
warehouse opens: its staging tables dropped and, when its rows may have been attached, deleted, so a
file's rows are all there or none are. The file's sha256 (re-ingest adds nothing) is computed in a thread
while ClickHouse loads it; a cheap fingerprint decides beforehand whether the file may be a duplicate, and
only then is the full hash awaited before loading.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import socket
import tempfile
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from warehouse.backends import Backend, quote_identifier
from warehouse.errors import IngestError, WarehouseError

SAMPLE_REJECTS = 5
# The warehouse tables a batch adds rows to, in the order its rows are attached: a run's requests (what
# reports read) appear last, once the raw points and aggregates they come with are there.
BATCH_TABLES = ("k6_points", "aggregates", "requests")
# Every staging table of a batch is stage_<batch><suffix>: the parsed lines ("", "_lines"; Log tables)
# and a copy of each warehouse table its rows go to before they are attached.
LINE_SUFFIXES = ("", "_lines")
STAGE_SUFFIXES = (*LINE_SUFFIXES, *(f"_{name}" for name in BATCH_TABLES))
_STAGE_NAME = re.compile(r"stage_([0-9a-f]{32})(?:_[a-z0-9_]+)?")
_PARTITION_ID = re.compile(r"[0-9A-Za-z_-]+")
# The states of a batch in ingested_files: "staging" while its rows load into its staging tables,
# "attaching" from the moment they may reach the warehouse tables, then "done" or "failed". "started" is
# what versions before staging wrote: their rows went straight into the warehouse tables.
UNFINISHED = ("staging", "attaching", "started")
# Memory bounds for the statements of an ingest: the peak stays a few hundred MB whatever the file size
# (aggregation and sorting spill to disk past these sizes; the input is read in blocks).
BOUNDED: dict[str, Any] = {
    "max_threads": 2,
    "max_insert_threads": 1,
    "max_block_size": 65536,
    "max_insert_block_size": 65536,
    "min_insert_block_size_rows": 65536,
    "min_insert_block_size_bytes": 16 << 20,
    "max_bytes_before_external_group_by": 64 << 20,
    "max_bytes_before_external_sort": 64 << 20,
}
# Reading a file: pread, not mmap (a mapped input counts in full in the process's resident memory).
READ_FILE: dict[str, Any] = {"storage_file_read_method": "pread"}


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


@dataclass(frozen=True)
class IngestJob:
    """What a format's loader needs: where to put rows and how to tag them."""

    backend: Backend
    path: Path
    run_id: str
    batch: str
    generator: str = ""
    services: dict[tuple[str, str], str] = field(default_factory=dict)  # (journey, step) -> service
    source: Path | None = None  # the file the user gave (path is its plain copy when it was gzip)

    @property
    def stage(self) -> str:
        """The table a loader may parse the file's lines into (stage_lines), before SQL checks them."""
        return f"stage_{self.batch}"

    def table(self, name: str) -> str:
        """The table a loader writes `name`'s rows of this batch to, and reads them back from: the batch's
        staging copy of warehouse table `name`, which ingest_file creates before the load and attaches after."""
        if name not in BATCH_TABLES:
            raise ValueError(f"not a table a batch adds rows to: {name!r}")
        return f"{self.stage}_{name}"


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
        f"{path}:1: not a results file perfhouse knows ({', '.join(FORMATS)}); it starts with {first!r}"
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def count_lines(path: Path) -> int:
    """Lines in a file; a last line without a line break counts."""
    counter = _LineCounter()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            counter.feed(block)
    return counter.lines


class _LineCounter:
    """Counts lines over a stream of blocks; a last line without a line break counts."""

    def __init__(self) -> None:
        self.breaks, self.last = 0, b"\n"

    def feed(self, block: bytes) -> None:
        if block:
            self.breaks += block.count(b"\n")
            self.last = block[-1:]

    @property
    def lines(self) -> int:
        return self.breaks + (self.last != b"\n")


def quick_fingerprint(path: Path, edge: int = 1 << 20) -> str:
    """Size and a hash of the first and last MiB: equal for identical files, cheap for large ones."""
    size, digest = path.stat().st_size, hashlib.sha256()
    with open(path, "rb") as fh:
        digest.update(fh.read(edge))
        if size > edge:
            fh.seek(max(edge, size - edge))
            digest.update(fh.read(edge))
    return f"{size}:{digest.hexdigest()}"


def _done_run(backend: Backend, sha: str) -> str | None:
    seen = backend.query(
        "SELECT run_id FROM ingested_files FINAL WHERE sha256 = {sha:String} AND state = 'done' LIMIT 1",
        {"sha": sha},
    )
    return str(seen[0]["run_id"]) if seen else None


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
    fmt_impl = _given_format(path, fmt) if fmt else detect_format(path)
    quick = quick_fingerprint(path)
    result = IngestResult(run_id, str(path), fmt_impl.name, fmt_impl.tool)
    with backend.session(), ThreadPoolExecutor(1, thread_name_prefix="perfhouse-hash") as pool:
        hashing = pool.submit(file_sha256, path)  # sha256 releases the GIL; ClickHouse too
        maybe_seen = backend.query(
            "SELECT 1 FROM ingested_files FINAL WHERE quick = {q:String} AND state = 'done' LIMIT 1", {"q": quick}
        )
        if maybe_seen and (seen := _done_run(backend, hashing.result())):
            result.run_id, result.duplicate = seen, True
            return result
        with tempfile.TemporaryDirectory(prefix="perfhouse-ingest-") as tmp:
            plain, cut = _plain(path, Path(tmp))
            job = IngestJob(backend, plain, run_id, uuid.uuid4().hex, generator, services or {}, source=path)
            _record(backend, job, "", quick, fmt_impl.name, "staging", result)
            attaching = False
            try:
                create_stage(job)
                fmt_impl.load(job, result)
                if cut is not None:
                    result.rejected += 1
                    result.samples.append(Rejected(cut[0], cut[1], ""))
                sha = hashing.result()
                # Ingested meanwhile, or before quick fingerprints were recorded: this batch adds nothing.
                seen = _done_run(backend, sha)
                if not seen and (result.rows or result.points or result.aggregates):
                    attaching = True
                    _record(backend, job, sha, quick, fmt_impl.name, "attaching", result)
                    attach_stage(job)
                    _record(backend, job, sha, quick, fmt_impl.name, "done", result)
            except BaseException:
                discard_batch(backend, job.batch, attached=attaching)
                raise
            finally:
                drop_stage(backend, job.batch)
        if seen:
            discard_batch(backend, job.batch, attached=False)
            return IngestResult(seen, str(path), fmt_impl.name, fmt_impl.tool, duplicate=True)
        if not attaching:
            discard_batch(backend, job.batch, attached=False)
            raise IngestError(_nothing_valid(path, result))
    return result


def create_stage(job: IngestJob) -> None:
    """The batch's staging copy of each table it adds rows to. `CREATE TABLE ... AS` copies the engine,
    partition key, sorting key, codecs and TTL, which ATTACH PARTITION FROM requires to be the same."""
    for name in BATCH_TABLES:
        job.backend.command(f"CREATE TABLE {quote_identifier(job.table(name))} AS {name}")
        # No merges while the batch loads: on 2 cores, merging the parts of a large file as they are written
        # nearly doubled the load's time (measured on 2 GB of k6 JSON) and raised its memory. The attached
        # parts are merged by the warehouse table's background merges afterwards; a server where the user
        # may not stop merges loads the same way, only slower.
        with contextlib.suppress(WarehouseError):
            job.backend.command(f"SYSTEM STOP MERGES {quote_identifier(job.table(name))}")


def attach_stage(job: IngestJob) -> None:
    """Move the batch's staged rows into the warehouse tables, one ATTACH PARTITION FROM per partition.

    Each statement makes a whole partition's parts visible at once. Statements are not atomic together:
    partitions go in ascending order, so while a batch spanning several months is attached a reader sees
    its earliest months first, as of a run still going, never a month missing in the middle; the batch
    is not "done" until every partition is in.
    """
    for name in BATCH_TABLES:
        stage = quote_identifier(job.table(name))
        partitions = job.backend.query(
            "SELECT DISTINCT partition_id FROM system.parts WHERE database = currentDatabase() "
            "AND table = {t:String} AND active ORDER BY partition_id",
            {"t": stage},
        )
        for row in partitions:
            partition = str(row["partition_id"])
            if not _PARTITION_ID.fullmatch(partition):
                raise WarehouseError(f"unexpected partition id {partition!r} in {stage}")
            job.backend.command(f"ALTER TABLE {name} ATTACH PARTITION ID '{partition}' FROM {stage}")


def drop_stage(backend: Backend, batch: str) -> None:
    """Drop every staging table a batch may have; attached parts stay, the warehouse table has its own links
    to their files. SYNC frees the files now, not after the database's drop delay: live ingestion adds a batch
    every few seconds, and dropped tables would pile up meanwhile."""
    for suffix in STAGE_SUFFIXES:
        backend.command(f"DROP TABLE IF EXISTS {quote_identifier(f'stage_{batch}{suffix}')} SYNC")


def _given_format(path: Path, name: str) -> Format:
    """The format named by --format; a file that plainly is another format is refused, saying which."""
    if name not in FORMATS:
        raise IngestError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    chosen, head = FORMATS[name], read_head(path)
    if not head.strip():
        raise IngestError(f"{path}: the file is empty; nothing to ingest")
    if not chosen.sniff(head):
        other = next((f for f in FORMATS.values() if f.sniff(head)), None)
        if other is not None:
            raise IngestError(
                f"{path}:1: --format {name} given, but the file is {other.name} ({other.tool} output); "
                f"use --format {other.name} or leave --format out"
            )
    return chosen


def _plain(path: Path, tmp: Path) -> tuple[Path, tuple[int, str] | None]:
    """The file itself, or for gzip its content decompressed (streamed, bounded memory) into `tmp`.

    ClickHouse fails a whole read on a gzip cut short, so Python decompresses: everything up to the cut
    is kept, and the cut comes back as (line after the last complete one, reason) to count as rejected.
    """
    with open(path, "rb") as fh:
        if fh.read(2) != b"\x1f\x8b":
            return path, None
        fh.seek(0)
        out_path = tmp / (path.name.removesuffix(".gz") or "data")
        counter, problem, pending = _LineCounter(), "", False  # pending: a gzip member begun, not ended
        decomp = zlib.decompressobj(wbits=47)
        with open(out_path, "wb") as out:
            while not problem and (block := fh.read(1 << 20)):
                while block:
                    try:
                        data = decomp.decompress(block)
                    except zlib.error as exc:
                        problem = f"the gzip data is corrupt ({exc}); the rest of the file is lost"
                        break
                    out.write(data)
                    counter.feed(data)
                    pending, block = not decomp.eof, b""
                    if decomp.eof:  # concatenated gzip members: the next one follows
                        block, decomp = decomp.unused_data, zlib.decompressobj(wbits=47)
            if pending and not problem:
                problem = "the gzip stream is cut short; what followed the cut is lost"
    return out_path, (counter.breaks + 1, problem) if problem else None


def _nothing_valid(path: Path, result: IngestResult) -> str:
    where = f" (line {result.samples[0].line}: {result.samples[0].reason})" if result.samples else ""
    return f"{path}: no valid {result.format} rows; {result.rejected} rejected{where}"


OWNER = f"{socket.gethostname()}:{os.getpid()}"


def _record(
    backend: Backend, job: IngestJob, sha: str, quick: str, fmt: str, state: str, result: IngestResult
) -> None:
    backend.command(
        "INSERT INTO ingested_files (batch, run_id, sha256, quick, path, format, state, rows, rejected, "
        "ingested_at, owner) VALUES ({batch:String}, {run:String}, {sha:String}, {quick:String}, {path:String}, "
        "{fmt:String}, {state:String}, {rows:UInt64}, {rejected:UInt64}, now64(3), {owner:String})",
        {
            "owner": OWNER,
            "batch": job.batch,
            "run": job.run_id,
            "sha": sha,
            "quick": quick,
            "path": str(job.source or job.path),
            "fmt": fmt,
            "state": state,
            "rows": result.rows,
            "rejected": result.rejected,
        },
    )


def discard_batch(backend: Backend, batch: str, attached: bool = True) -> None:
    """Mark a batch that did not finish failed. When its rows may have reached the warehouse tables (it was
    attaching, or was written by a version that inserted there directly), delete them first; a batch that
    never left its staging tables has nothing there, and its staging tables are dropped by the caller."""
    if attached:
        for table in BATCH_TABLES:
            backend.command(f"DELETE FROM {table} WHERE batch = {{b:String}}", {"b": batch})
    backend.command(
        "INSERT INTO ingested_files (batch, run_id, sha256, quick, path, format, state, rows, rejected, "
        "ingested_at, owner) SELECT batch, run_id, sha256, quick, path, format, 'failed', 0, rejected, now64(3), owner "
        "FROM ingested_files FINAL WHERE batch = {b:String}",
        {"b": batch},
    )


def recover(backend: Backend, stale_after_s: float = 6 * 3600) -> list[str]:
    """Discard batches left unfinished by a process that died mid-ingest; drop their staging tables.

    On the embedded backend the warehouse lock is held for a whole ingest, so any unfinished batch seen
    at open is dead. A server is shared: a batch is dead when its owner ran on this host and that pid is
    gone, or when it has been unfinished for longer than `stale_after_s` (an owner on another host).
    Staging tables are dropped before the batch is marked failed, and a process stopped between finishing
    a batch and dropping its staging tables leaves them to the next recovery, which drops the staging
    tables of finished batches too.
    """
    with backend.session():
        unfinished = backend.query(
            "SELECT batch, state, owner, dateDiff('second', ingested_at, now64(3)) AS age_s "
            "FROM ingested_files FINAL WHERE state IN {states:Array(String)}",
            {"states": list(UNFINISHED)},
        )
        stale = [
            r for r in unfinished if backend.exclusive or _owner_dead(r["owner"], int(r["age_s"]), stale_after_s)
        ]
        for row in stale:
            drop_stage(backend, row["batch"])
            discard_batch(backend, row["batch"], attached=row["state"] != "staging")
        left = [
            str(row["name"])
            for row in backend.query(
                "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE 'stage\\_%'"
            )
        ]
        if not backend.exclusive:  # a server is shared: only the staging tables of batches that are over
            over = _finished_batches(backend, {_stage_batch(name) for name in left} - {""})
            left = [name for name in left if _stage_batch(name) in over]
        for name in left:
            backend.command(f"DROP TABLE IF EXISTS {quote_identifier(name)} SYNC")
    return [str(r["batch"]) for r in stale]


def _stage_batch(table: str) -> str:
    """The batch a staging table belongs to ("" for a table not named like one)."""
    m = _STAGE_NAME.fullmatch(table)
    return m[1] if m else ""


def _finished_batches(backend: Backend, batches: set[str]) -> set[str]:
    if not batches:
        return set()
    rows = backend.query(
        "SELECT batch FROM ingested_files FINAL WHERE batch IN {batches:Array(String)} "
        "AND state NOT IN {states:Array(String)}",
        {"batches": sorted(batches), "states": list(UNFINISHED)},
    )
    return {str(r["batch"]) for r in rows}


def _owner_dead(owner: str, age_s: int, stale_after_s: float) -> bool:
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return age_s > stale_after_s


def stage_lines(
    job: IngestJob,
    columns: list[str],
    fmt: str,
    settings: dict[str, Any] | None = None,
    column_type: str = "String",
    types: list[str] | None = None,
    suffix: str = "",
) -> int:
    """Create a staging table (file order kept) and let ClickHouse parse the file into it, once.

    `types` gives each column its own type (typed staging: the input format parses the values);
    otherwise every column is `column_type`. Returns the number of rows staged.
    """
    assert suffix in LINE_SUFFIXES
    table = job.stage + suffix
    types = types or [column_type] * len(columns)
    cols = ", ".join(f"{c} {t}" for c, t in zip(columns, types, strict=True))
    job.backend.command(f"DROP TABLE IF EXISTS {table}")
    job.backend.command(f"CREATE TABLE {table} ({cols}) ENGINE = Log")
    try:
        job.backend.load_file(table, columns, job.path, fmt, {**BOUNDED, **READ_FILE, **(settings or {})}, types)
    except WarehouseError as exc:
        raise IngestError(f"{job.source or job.path}: ClickHouse could not read the file: {exc}") from None
    rows = job.backend.query(f"SELECT count() AS n FROM {table}")
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
    from_sql: str = "",
) -> None:
    """Count staged rows whose `reason_sql` is not empty; keep the first few with their line numbers."""
    rows = job.backend.query(
        f"SELECT count() AS n, groupArray({SAMPLE_REJECTS})((lineno, reason, text)) AS sample FROM ("
        f"  SELECT lineno, reason, text FROM ("
        f"    SELECT rowNumberInAllBlocks() + {int(first_line)} AS lineno, ({reason_sql}) AS reason,"
        f"           substring({text_sql}, 1, 120) AS text, ({keep_sql}) AS keep FROM {from_sql or job.stage}"
        f"  ) WHERE reason != '' AND keep ORDER BY lineno"
        f") SETTINGS max_threads = 1"
    )
    result.rejected = int(rows[0]["n"])
    result.samples = [Rejected(int(line), str(reason), str(text)) for line, reason, text in rows[0]["sample"]]


# Register the built-in formats (influx_line last: its sniff accepts the loosest text).
from warehouse.ingest import jtl_csv, jtl_xml, k6_csv, k6_json, locust_csv, locust_jsonl  # noqa: E402, I001
from warehouse.ingest import influx_line  # noqa: E402

__all__ = [
    "FORMATS",
    "IngestError",
    "IngestResult",
    "Rejected",
    "detect_format",
    "influx_line",
    "ingest_file",
    "jtl_csv",
    "jtl_xml",
    "k6_csv",
    "k6_json",
    "locust_csv",
    "locust_jsonl",
    "recover",
]
