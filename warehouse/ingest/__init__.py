"""Ingestion of result files: format detection, the registry of formats, and the shared load path.

Every format follows the same path: ClickHouse parses the file (the bytes never go through Python rows)
and SQL writes the valid rows, tagged with a batch id, into the batch's own staging copies of the
warehouse tables (`IngestJob.table`: same engine, partition key, sorting key, codecs and TTL). Readers
never look there, so a file's rows stay invisible while they load, and a load that fails only drops its
staging tables. A loaded batch is then moved into the warehouse tables partition by partition with
ATTACH PARTITION FROM (a part swap, no copy of the data: each partition's rows appear at once), and
recorded as done last (see `ingest_file` for the commit). A batch that never reached "done" (a killed
process) is removed the next time the warehouse opens: its staging tables dropped, its rows deleted when
they may have been attached, and the record of the run it created deleted too, so a file's run and rows
are all there or none are. The file's sha256 (re-ingest adds nothing) is computed in a thread
while ClickHouse loads it; a cheap fingerprint decides beforehand whether the file may be a duplicate, and
only then is the full hash awaited before loading.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from warehouse.engine.backends import Backend, literal, quote_identifier
from warehouse.engine.cluster import home, stage_clause
from warehouse.engine.owners import scratch_dir
from warehouse.engine.summaries import create_histogram, discard_summaries, write_summaries
from warehouse.errors import IngestError, WarehouseError

SAMPLE_REJECTS = 5
# The warehouse tables a batch adds rows to, in the order its rows are attached: a run's requests (what
# reports read) appear last, once the raw points and aggregates they come with are there.
BATCH_TABLES = ("k6_points", "aggregates", "requests")
# Every staging table of a batch is stage_<batch><suffix>: the parsed lines ("", "_lines"; Log tables),
# a copy of each warehouse table its rows go to before they are attached, and the histogram of its requests
# ("_summary", filled by the materialized view "_summary_mv" as they are inserted; dropped first).
LINE_SUFFIXES = ("", "_lines")
HISTOGRAM_SUFFIX = "_summary"
STAGE_SUFFIXES = (f"{HISTOGRAM_SUFFIX}_mv", *LINE_SUFFIXES, *(f"_{name}" for name in BATCH_TABLES), HISTOGRAM_SUFFIX)
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
    def histogram(self) -> str:
        """The table that keeps the histogram of a staged batch's requests (engine.summaries), '' for a
        direct job (its summary reads its rows)."""
        return "" if self.direct else self.stage + HISTOGRAM_SUFFIX

    def restart(self, name: str) -> None:
        """Empty the batch's staging copy of `name` (a loader that starts over), with what was derived from it."""
        self.backend.command(f"TRUNCATE TABLE {quote_identifier(self.table(name))}")
        if name == "requests" and self.histogram:
            self.backend.command(f"TRUNCATE TABLE {quote_identifier(self.histogram)}")


class NeedsStaging(Exception):
    """Raised by a loader of a direct job when the file needs what only the staging path does (rejected
    lines counted after a failed strict pass): ingest_file undoes the batch and stages the file."""


class Format(Protocol):
    name: ClassVar[str]
    tool: ClassVar[str]
    # A format whose small files may load straight into the warehouse tables (IngestJob.direct) says so with a
    # class attribute `direct = True`; its loader then reads its rows back by batch and raises NeedsStaging for
    # what it cannot do there.

    def sniff(self, head: bytes) -> bool:
        """Does a file starting with these bytes look like this format?"""

    def load(self, job: IngestJob, result: IngestResult) -> None:
        """Parse the file with ClickHouse and insert its valid rows; fill the counts in `result`."""


FORMATS: dict[str, Format] = {}


def register(cls: type) -> type:
    FORMATS[cls.name] = cls()  # type: ignore[attr-defined]
    return cls


BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"


# A file up to this size loads straight into the warehouse tables when its format can (Format.direct): one
# INSERT per table, whose rows, fewer than an insert block (min_insert_block_size_rows), form one part per table
# and partition that appears at once, as an attached partition does; the staging tables, their attaching and
# dropping (some twenty statements, most of a small run's ingest) are left out. Larger files are staged.
DIRECT_MAX_BYTES = 4 << 20


def read_head(path: Path, size: int = 65536) -> bytes:
    """The first bytes of a file's content as the loaders see it: gzip decompressed, a UTF-8 byte order mark
    left out, and line breaks that are CR alone read as LF (see `_plain`)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(size)
            if head.startswith(GZIP_MAGIC):  # what decompresses, up to a break in the data (see _plain)
                fh.seek(0)
                decomp, head = zlib.decompressobj(wbits=47), b""
                while len(head) < size and not decomp.eof and (block := fh.read(1 << 14)):
                    saved = decomp.copy()
                    try:
                        head += decomp.decompress(block, size - len(head))
                    except zlib.error:
                        head += until_damage(saved, block)
                        break
                head = head[:size]
    except OSError as exc:
        raise IngestError(f"{path}: cannot read: {exc}") from None
    head = head.removeprefix(BOM)
    return head.replace(b"\r", b"\n") if _cr_only(head) else head


def until_damage(decomp: Any, block: bytes) -> bytes:
    """What `decomp` gives of `block` before the byte where the data is damaged: fed a byte at a time, so
    everything before the damage comes out, as zcat keeps it (a whole block at once gives nothing on an error)."""
    out = []
    for i in range(len(block)):
        try:
            out.append(decomp.decompress(block[i : i + 1]))
        except zlib.error:
            break
    return b"".join(out)


def _cr_only(head: bytes) -> bool:
    """Lines ending in CR alone (classic Mac OS): CRs and not a single LF."""
    return b"\r" in head and b"\n" not in head


def _refuse_binary(head: bytes, path: Path) -> None:
    """A file whose first line holds a NUL byte is binary data; one bad line further on is only rejected."""
    first = head.split(b"\n", 1)[0]
    if (at := first.find(b"\0")) >= 0:
        raise IngestError(f"{path}:1: binary data (a NUL byte at offset {at}), not a results file")


STDIN = "-"


@contextlib.contextmanager
def readable(path: Path) -> Iterator[Path]:
    """A regular file to read: the file itself, or for `-` (standard input), a FIFO or another pipe, what it
    gives copied into a temporary file first (read once, streamed), since a file is read more than once."""
    stdin = str(path) == STDIN
    if not stdin:
        if path.is_dir():
            raise IngestError(f"{path}: a directory, not a results file")
        if not path.exists():
            raise IngestError(f"{path}: no such file")
        if path.is_file():
            yield path
            return
    if stdin and sys.stdin.isatty():
        raise IngestError("-: standard input is a terminal; pipe a results file into it (perfhouse ingest - < FILE)")
    with scratch_dir("pipe") as tmp:
        copy = Path(tmp) / ("stdin" if stdin else path.name or "pipe")
        try:
            with open(copy, "wb") as out:
                if stdin:
                    shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
                else:
                    with open(path, "rb") as fh:
                        shutil.copyfileobj(fh, out, 1 << 20)
        except OSError as exc:
            raise IngestError(f"{path}: cannot read: {exc}") from None
        yield copy


def detect_format(path: Path, shown: Path | None = None) -> Format:
    shown = shown or path
    head = read_head(path)
    if not head.strip():
        raise IngestError(f"{shown}: {_nothing_read(path)}; nothing to ingest")
    for fmt in FORMATS.values():
        if fmt.sniff(head):
            return fmt
    _refuse_binary(head, shown)
    first = head.splitlines()[0][:80].decode(errors="replace")
    raise IngestError(
        f"{shown}:1: not a results file perfhouse knows ({', '.join(FORMATS)}); it starts with {first!r}"
    )


def _nothing_read(path: Path) -> str:
    """Why a file gave no content: empty, or gzip damaged before its first line."""
    with open(path, "rb") as fh:
        packed = fh.read(2) == GZIP_MAGIC
    return "the gzip data is damaged before its first line (nothing decompresses)" if packed else "the file is empty"


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


def _done_run(backend: Backend, *shas: str) -> str | None:
    seen = backend.query(
        "SELECT run_id FROM ingested_files FINAL WHERE sha256 IN {shas:Array(String)} AND state = 'done' LIMIT 1",
        {"shas": list(shas)},
    )
    return str(seen[0]["run_id"]) if seen else None


RunRecord = Callable[[IngestJob, IngestResult], None]


def ingest_file(
    backend: Backend,
    path: Path,
    run_id: str,
    fmt: str | None = None,
    generator: str = "",
    services: dict[tuple[str, str], str] | None = None,
    steps: dict[tuple[str, str], StepFacts] | None = None,
    run_record: RunRecord | None = None,
    source: Path | None = None,
) -> IngestResult:
    """Ingest one file into run `run_id`: an existing run, or with `run_record` a run this batch creates.

    The commit. ClickHouse has no transaction across statements on either backend; what is atomic on both
    is one INSERT of one row, and each ATTACH PARTITION of one partition. So one row is the commit: the
    batch's "done" record in ingested_files, written last. In order:

    1. "staging" recorded; the file loads into the batch's staging tables (invisible to readers);
    2. "attaching" recorded, with `new_run` when the batch creates its run; the partitions are attached;
    3. the run's step summaries are written over its done batches and this one (`write_summaries`); a
       summary counts only once its batches are all done, and rolling the batch back deletes it;
    3b. `run_record(job, result)` writes the run's record (its steps and times read from the batch's
       summary), so a run is seen only once all its rows are in;
    4. "done" recorded: the commit (`commit`). Re-ingesting the file is a duplicate from here on, never before.

    A small file of a format that can (DIRECT_MAX_BYTES, Format.direct) skips the staging tables: "attaching"
    is recorded first, the content claimed, and its rows are inserted straight into the warehouse tables, then
    3, 3b and 4 as above (`_load_directly`).

    A process that stops anywhere before 4 leaves an unfinished batch: the next open (`recover`) deletes
    its rows from the warehouse tables and, for a batch that created its run, the run's record, then marks
    it failed, so the warehouse holds the whole run with all its rows or nothing of it, and the file can
    be ingested again. A failure inside this process undoes the same at once (`discard_batch`). Between 3
    and 4 a reader may see a run that a kill at that moment would take back at the next open; it never
    sees a run without its rows, nor a file recorded as ingested into a run that does not exist.

    A file is known by its content: the sha256 of its bytes, decompressed when it is gzip (the same results
    gzipped are the same file). `source` is the path the user gave when `path` is a copy of it (standard
    input or a pipe), named in messages and records.
    """
    path = Path(path)
    shown = Path(source) if source is not None else path
    if not path.is_file():
        raise IngestError(f"{shown}: no such file")
    if path.stat().st_size == 0:
        raise IngestError(f"{shown}: the file is empty; nothing to ingest")
    fmt_impl = _given_format(path, fmt, shown) if fmt else detect_format(path, shown)
    result = IngestResult(run_id, str(shown), fmt_impl.name, fmt_impl.tool)
    with backend.session(), ThreadPoolExecutor(1, thread_name_prefix="perfhouse-hash") as pool, \
            scratch_dir("ingest") as tmp:
        prepared = _plain(path, Path(tmp), shown)
        plain, cut = prepared.path, prepared.cut
        if plain.stat().st_size == 0:
            raise IngestError(f"{shown}: the file is empty; nothing to ingest{_where_cut(cut)}")
        quick = quick_fingerprint(plain)
        if prepared.sha:
            hashing: Future[str] = Future()
            hashing.set_result(prepared.sha)
        else:
            hashing = pool.submit(file_sha256, plain)  # sha256 releases the GIL; ClickHouse too
        direct = (getattr(fmt_impl, "direct", False) and cut is None and not getattr(backend, "cluster", None)
                  and plain.stat().st_size <= DIRECT_MAX_BYTES)
        # a small file's hash is at hand: asked for at once, not after its quick fingerprint
        maybe_seen = direct or prepared.sha or backend.query(
            "SELECT 1 FROM ingested_files FINAL WHERE quick = {q:String} AND state = 'done' LIMIT 1", {"q": quick}
        )
        if maybe_seen and (seen := _done_run(backend, hashing.result(), *prepared.also_known_as)):
            result.run_id, result.duplicate = seen, True
            return result
        result.notes.extend(prepared.notes)
        new_run = run_record is not None
        if direct:
            job = IngestJob(backend, plain, run_id, uuid.uuid4().hex, generator, services or {}, source=shown,
                            steps=steps or {}, direct=True)
            if (done := _load_directly(job, fmt_impl, hashing.result(), quick, result, run_record)) is not None:
                return done
            result = IngestResult(run_id, str(shown), fmt_impl.name, fmt_impl.tool, notes=list(prepared.notes))
        job = IngestJob(backend, plain, run_id, uuid.uuid4().hex, generator, services or {}, source=shown,
                    steps=steps or {})
        _record(backend, job, "", quick, fmt_impl.name, "staging", result, new_run)
        checkpoint("staging-recorded")
        attaching = False
        try:
            create_stage(job)
            fmt_impl.load(job, result)
            checkpoint("staged")
            if cut is not None:
                result.rejected += 1
                result.samples.append(Rejected(cut[0], cut[1], ""))
            sha = hashing.result()
            # Ingested meanwhile, or before quick fingerprints were recorded: this batch adds nothing.
            seen = _done_run(backend, sha)
            if not seen and (result.rows or result.points or result.aggregates):
                seen = claim(backend, job.batch, sha, shown)
                checkpoint("claimed")
            if not seen and (result.rows or result.points or result.aggregates):
                attaching = True
                _record(backend, job, sha, quick, fmt_impl.name, "attaching", result, new_run)
                checkpoint("attaching-recorded")
                attach_stage(job)
                commit(job, sha, quick, fmt_impl.name, result, run_record)
        except BaseException:
            discard_batch(backend, job.batch, attached=attaching)
            raise
        finally:
            drop_stage(backend, job.batch)
            checkpoint("stages-dropped")
        if seen:
            discard_batch(backend, job.batch, attached=False)
            return IngestResult(seen, str(shown), fmt_impl.name, fmt_impl.tool, duplicate=True)
        if not attaching:
            discard_batch(backend, job.batch, attached=False)
            raise IngestError(_nothing_valid(shown, result))
    return result


# How long an ingest waits for another process that is ingesting the same content before it gives up.
CLAIM_WAIT_S = 900.0
_SHA = re.compile(r"[0-9a-f]{64}")


def claim(backend: Backend, batch: str, sha: str, shown: Path, wait_s: float | None = None) -> str | None:
    """Make `batch` the one batch that may commit content `sha`; returns None once it is, or the run of a
    batch that committed the same content meanwhile (this batch is then a duplicate).

    Two processes ingesting the same file into a server both find it not yet done, and each would commit
    it. What decides between them is ClickHouse's insert deduplication: ingest_claims keeps one block per
    deduplication token, so of the concurrent INSERTs of one claim token exactly one row is stored, and
    its batch is the claimant. A claimant still loading is waited for (up to `wait_s`, CLAIM_WAIT_S by
    default); one that finished makes this batch a duplicate; one that failed, or whose process is gone
    (a dead owner's batch is discarded here as recovery would), passes the content to the next token,
    `sha#1`, `sha#2`, ..., which the waiting batches claim the same way.
    """
    if backend.exclusive:  # one process holds the warehouse for the whole ingest: no other batch can race this one
        return None
    if not _SHA.fullmatch(sha):
        raise WarehouseError(f"{shown}: unexpected content hash {sha!r}")
    deadline = time.monotonic() + (CLAIM_WAIT_S if wait_s is None else wait_s)
    attempt = 0
    while True:
        token = f"{sha}#{attempt}"
        # SETTINGS take no parameters: the token goes in as a literal
        backend.command(
            f"INSERT INTO ingest_claims (token, batch) SETTINGS insert_deduplication_token = {literal(token)} "
            "VALUES ({t:String}, {b:String})",
            {"t": token, "b": batch},
        )
        rows = backend.query(
            "SELECT argMin(c.batch, c.claimed_at) AS batch, any(f.state) AS state, any(f.run_id) AS run_id, "
            "any(f.owner) AS owner, any(dateDiff('second', f.ingested_at, now64(3))) AS age_s "
            "FROM ingest_claims AS c LEFT JOIN (SELECT * FROM ingested_files FINAL) AS f ON f.batch = c.batch "
            "WHERE c.token = {t:String}",
            {"t": token},
        )
        holder = rows[0] if rows else {}
        if holder.get("batch") == batch:
            return None
        state = holder.get("state", "")
        if state == "done":
            return str(holder["run_id"])
        if state == "failed" or not state:
            attempt += 1
            continue
        if _owner_dead(str(holder["owner"]), int(holder["age_s"]), CLAIM_WAIT_S * 4):
            undo_dead_batch(backend, str(holder["batch"]), state)
            attempt += 1
            continue
        if time.monotonic() > deadline:
            raise IngestError(
                f"{shown}: the same content is being ingested by another process ({holder['owner']}, batch "
                f"{holder['batch']}); ingest it again when that one ends"
            )
        time.sleep(0.2)


def commit(job: IngestJob, sha: str, quick: str, fmt: str, result: IngestResult, run_record: RunRecord | None) -> None:
    """Steps 3 and 4 of `ingest_file` (staged or direct), once every row of the batch is in the warehouse tables:
    the run's step summaries, the record of the run the batch creates, then the batch's "done" record, the
    commit."""
    write_summaries(job.backend, job.run_id, job.batch, job.histogram, BOUNDED)
    checkpoint("summaries-written")
    if run_record is not None:
        run_record(job, result)
        checkpoint("run-recorded")
    _record(job.backend, job, sha, quick, fmt, "done", result, run_record is not None)
    checkpoint("done-recorded")


def _load_directly(job: IngestJob, fmt: Format, sha: str, quick: str, result: IngestResult,
                   run_record: RunRecord | None) -> IngestResult | None:
    """A small file's rows inserted straight into the warehouse tables, and committed: the result, or a duplicate
    of the run that committed the same content meanwhile; None, with nothing of the batch left, when the file
    needs staging. "attaching" is recorded before the content is claimed (a batch waiting on this claim sees it
    going) and before any row goes in, so a process stopped before the commit leaves a batch that the next open
    undoes (`recover`), as a staged batch."""
    backend = job.backend
    _record(backend, job, sha, quick, fmt.name, "attaching", result, run_record is not None)
    checkpoint("attaching-recorded")
    try:
        seen = claim(backend, job.batch, sha, Path(job.source or job.path))
        checkpoint("claimed")
        if seen:
            discard_batch(backend, job.batch, attached=False)
            return IngestResult(seen, result.path, fmt.name, fmt.tool, duplicate=True)
        fmt.load(job, result)
        checkpoint("loaded")
        if not (result.rows or result.points or result.aggregates):
            raise IngestError(_nothing_valid(Path(job.source or job.path), result))
        commit(job, sha, quick, fmt.name, result, run_record)
    except NeedsStaging:  # a statement that failed wrote nothing; anything written is deleted
        discard_batch(backend, job.batch, attached=_has_rows(backend, job.batch))
        return None
    except BaseException:
        discard_batch(backend, job.batch)
        raise
    return result


def _has_rows(backend: Backend, batch: str) -> bool:
    """Does any warehouse table hold rows of the batch?"""
    return any(backend.query(f"SELECT 1 FROM {home(backend, table)} WHERE batch = {{b:String}} LIMIT 1", {"b": batch})
               for table in BATCH_TABLES)


def create_stage(job: IngestJob) -> None:
    """The batch's staging copy of each table it adds rows to. `CREATE TABLE ... AS` copies the engine,
    partition key, sorting key, codecs and TTL, which ATTACH PARTITION FROM requires to be the same."""
    for name in BATCH_TABLES:
        job.backend.command(f"CREATE TABLE {quote_identifier(job.table(name))} {stage_clause(job.backend, name)}")
        # No merges while the batch loads: on 2 cores, merging the parts of a large file as they are written
        # nearly doubled the load's time (measured on 2 GB of k6 JSON) and raised its memory. The attached
        # parts are merged by the warehouse table's background merges afterwards; a server where the user
        # may not stop merges loads the same way, only slower.
        with contextlib.suppress(WarehouseError):
            job.backend.command(f"SYSTEM STOP MERGES {quote_identifier(job.table(name))}")
    create_histogram(job.backend, job.table("requests"), job.histogram)


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
            job.backend.command(
                f"ALTER TABLE {home(job.backend, name)} ATTACH PARTITION ID {literal(partition)} FROM {stage}")
            checkpoint("partition-attached")
        checkpoint(f"attached-{name}")


def drop_stage(backend: Backend, batch: str) -> None:
    """Drop every staging table a batch may have; attached parts stay, the warehouse table has its own links
    to their files. SYNC frees the files now, not after the database's drop delay: live ingestion adds a batch
    every few seconds, and dropped tables would pile up meanwhile."""
    for suffix in STAGE_SUFFIXES:
        backend.command(f"DROP TABLE IF EXISTS {quote_identifier(f'stage_{batch}{suffix}')} SYNC")


def _given_format(path: Path, name: str, shown: Path | None = None) -> Format:
    """The format named by --format; a file that plainly is another format, or binary, is refused, saying so."""
    if name not in FORMATS:
        raise IngestError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    chosen, head = FORMATS[name], read_head(path)
    if not head.strip():
        raise IngestError(f"{shown or path}: {_nothing_read(path)}; nothing to ingest")
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


@dataclass
class Plain:
    """A file's content ready for ClickHouse: the file itself, or a plain copy of it (see `_plain`)."""

    path: Path
    sha: str = ""  # sha256 of the content, when the copy computed it (else hashed from `path`)
    cut: tuple[int, str] | None = None  # (line after the last complete one, why the rest is lost)
    notes: list[str] = field(default_factory=list)
    also_known_as: tuple[str, ...] = ()  # hashes the same file was recorded under before (its gzip container)


def _plain(path: Path, tmp: Path, shown: Path | None = None) -> Plain:
    """The file itself when ClickHouse can read it as it is, or a link to it in `tmp` when only its name is in
    the way (see `_plain_name`); otherwise (gzip, a UTF-8 byte order mark, line breaks of a lone CR as classic
    Mac OS wrote them) its content copied into `tmp` in one streamed pass (bounded memory) that decompresses
    gzip, leaves the byte order mark out and turns lone CRs into LF. The copy's sha256 is of the content as
    decompressed.

    ClickHouse fails a whole read on a damaged gzip, so Python decompresses: everything up to the damage is
    kept, in pieces small enough that the data before a corrupt block is not lost with it, and the break
    comes back as (line after the last complete one, reason) to count as rejected.
    """
    shown = shown or path
    with open(path, "rb") as fh:
        head = fh.read(65536)
    packed = head.startswith(GZIP_MAGIC)
    if not packed and not head.startswith(BOM) and not _cr_only(head):
        if _plain_name(path):
            return Plain(path)
        link = tmp / "data"  # ClickHouse's file() reads `*?{}` in a name as a glob, and names as UTF-8
        link.symlink_to(os.path.abspath(path))
        return Plain(link)
    out_path = tmp / "data"
    digest, counter, problem = hashlib.sha256(), _LineCounter(), ""
    pending, first, translate = b"", True, False

    def emit(data: bytes, final: bool = False) -> None:
        nonlocal pending, first, translate
        digest.update(data)
        if first:  # decide on the first 64 KiB of content: BOM and line breaks
            pending += data
            if len(pending) < 65536 and not final:
                return
            data, pending, first = pending.removeprefix(BOM), b"", False
            translate = _cr_only(data)
        if translate:
            data = data.replace(b"\r", b"\n")
        out.write(data)
        counter.feed(data)

    with open(path, "rb") as fh, open(out_path, "wb") as out:
        if not packed:
            while block := fh.read(1 << 20):
                emit(block)
        else:
            decomp, begun, offset = zlib.decompressobj(wbits=47), False, 0  # begun: a member not yet ended
            while not problem and (block := fh.read(1 << 16)):
                while block:
                    saved = decomp.copy()
                    try:
                        data = decomp.decompress(block)
                    except zlib.error as exc:
                        emit(until_damage(saved, block))  # the block's lines before the damage are kept
                        problem = (f"the gzip data is corrupt near byte {offset} of the compressed file ({exc}); "
                                   f"the rest of the file is lost")
                        break
                    emit(data)
                    used = len(block) - len(decomp.unused_data)
                    offset, begun, block = offset + used, not decomp.eof, b""
                    if decomp.eof:  # concatenated gzip members: the next one follows
                        block, decomp = decomp.unused_data, zlib.decompressobj(wbits=47)
            if begun and not problem:
                problem = "the gzip stream is cut short; what followed the cut is lost"
        emit(b"", final=True)
    plain = Plain(out_path, digest.hexdigest(), (counter.breaks + 1, problem) if problem else None)
    if packed:
        plain.also_known_as = (file_sha256(path),)
    if translate:
        plain.notes.append("line breaks were CR alone (classic Mac OS); read as line feeds")
    if problem:
        plain.notes.append(f"{shown}: {problem}; the valid records of the {counter.breaks} lines before it are kept")
    return plain


def _plain_name(path: Path) -> bool:
    """Can ClickHouse's file() open this path as it is written: UTF-8, and no glob characters?"""
    name = os.path.abspath(path)
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return not any(c in name for c in "*?{}")


def _where_cut(cut: tuple[int, str] | None) -> str:
    return f" ({cut[1]})" if cut else ""


def _nothing_valid(path: Path, result: IngestResult) -> str:
    where = f" (line {result.samples[0].line}: {result.samples[0].reason})" if result.samples else ""
    return f"{path}: no valid {result.format} rows; {result.rejected} rejected{where}"


OWNER = f"{socket.gethostname()}:{os.getpid()}"


def checkpoint(step: str) -> None:
    """A named step of an ingest's commit. Tests of what survives a kill set PERFHOUSE_TEST_KILL_AT to a step
    name, and the process signals itself right after that step: SIGKILL, or the signal named by
    PERFHOUSE_TEST_KILL_SIGNAL (INT: as Ctrl-C); unset, this does nothing."""
    if os.environ.get("PERFHOUSE_TEST_KILL_AT") == step:
        os.kill(os.getpid(), signal.Signals[f"SIG{os.environ.get('PERFHOUSE_TEST_KILL_SIGNAL', 'KILL')}"])


def _record(
    backend: Backend,
    job: IngestJob,
    sha: str,
    quick: str,
    fmt: str,
    state: str,
    result: IngestResult,
    new_run: bool = False,
) -> None:
    backend.command(
        "INSERT INTO ingested_files (batch, run_id, sha256, quick, path, format, state, rows, rejected, "
        "ingested_at, owner, new_run) VALUES ({batch:String}, {run:String}, {sha:String}, {quick:String}, "
        "{path:String}, {fmt:String}, {state:String}, {rows:UInt64}, {rejected:UInt64}, now64(3), {owner:String}, "
        "{new_run:UInt8})",
        {
            "new_run": int(new_run),
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
    attaching, or was written by a version that inserted there directly), delete them first, and the record
    of the run the batch created (the run came with the batch); a batch that never left its staging tables
    has nothing there, and its staging tables are dropped by the caller. Each step may be repeated: a
    process stopped while discarding leaves the batch unfinished, and the next recovery does it again."""
    if attached:
        for table in BATCH_TABLES:
            backend.command(f"DELETE FROM {home(backend, table)} WHERE batch = {{b:String}}", {"b": batch})
        created = backend.query(
            "SELECT run_id FROM ingested_files FINAL WHERE batch = {b:String} AND new_run = 1", {"b": batch}
        )
        for row in created:
            backend.command(f"DELETE FROM {home(backend, 'runs')} WHERE run_id = {{r:String}}", {"r": row["run_id"]})
        discard_summaries(backend, batch)
    backend.command(
        "INSERT INTO ingested_files (batch, run_id, sha256, quick, path, format, state, rows, rejected, "
        "ingested_at, owner, new_run) SELECT batch, run_id, sha256, quick, path, format, 'failed', 0, rejected, "
        "now64(3), owner, new_run FROM ingested_files FINAL WHERE batch = {b:String}",
        {"b": batch},
    )


def undo_dead_batch(backend: Backend, batch: str, state: str) -> None:
    """Take back a batch whose process died in `state`: its staging tables dropped, then its rows (when it may
    have attached them) and the run it created, and the batch marked failed."""
    drop_stage(backend, batch)
    discard_batch(backend, batch, attached=state != "staging")


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
            undo_dead_batch(backend, row["batch"], row["state"])
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


def step_map_params(job: IngestJob) -> dict[str, Any]:
    """(journey, step) → method, expected status (0: any 2xx or 3xx) and number of checks, as arrays for
    ClickHouse's transform(); `step_keys` holds "journey<TAB>step"."""
    return {
        "step_keys": [f"{j}\t{s}" for j, s in job.steps],
        "step_methods": [f.method for f in job.steps.values()],
        "step_expected": [f.expected_status for f in job.steps.values()],
        "step_checks": [f.checks for f in job.steps.values()],
    }


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


def trace_id_sql(cell: str) -> str:
    """SQL for a request's trace id as stored: a W3C trace id (32 lower-case hex digits), else '' (JMeter saves an
    unset sample variable as "null")."""
    return f"if(length({cell}) = 32 AND match({cell}, '^[0-9a-f]+$'), {cell}, '')"


# Register the built-in formats (influx_line last: its sniff accepts the loosest text).
from warehouse.ingest import jtl_csv, jtl_xml, k6_csv, k6_json, locust_csv, locust_jsonl  # noqa: E402, I001
from warehouse.ingest import influx_line  # noqa: E402

__all__ = [
    "FORMATS",
    "IngestError",
    "IngestResult",
    "NeedsStaging",
    "Rejected",
    "StepFacts",
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

