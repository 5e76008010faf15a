"""The batch: how a file's rows reach the warehouse all at once or not at all (claim, stage, attach, commit,
recover, undo).

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
import os
import re
import signal
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from warehouse.engine.backends import Backend, literal, quote_identifier
from warehouse.engine.batches import BATCH_TABLES, discard_batch
from warehouse.engine.cluster import home, stage_clause
from warehouse.engine.owners import scratch_dir
from warehouse.engine.summaries import write_summaries
from warehouse.errors import IngestError, WarehouseError
from warehouse.ingest.files import file_sha256, plain_content, quick_fingerprint
from warehouse.ingest.formats import (
    LINE_SUFFIXES,
    OLD_SUFFIXES,
    Format,
    IngestJob,
    IngestResult,
    NeedsStaging,
    Rejected,
    StepFacts,
    detect_format,
    given_format,
)
from warehouse.ingest.sql import BOUNDED

STAGE_SUFFIXES = (*OLD_SUFFIXES, *LINE_SUFFIXES, *(f"_{name}" for name in BATCH_TABLES))
_STAGE_NAME = re.compile(r"stage_([0-9a-f]{32})(?:_[a-z0-9_]+)?")
_PARTITION_ID = re.compile(r"[0-9A-Za-z_-]+")
# The states of a batch in ingested_files: "staging" while its rows load into its staging tables,
# "attaching" from the moment they may reach the warehouse tables, then "done" or "failed". "started" is
# what versions before staging wrote: their rows went straight into the warehouse tables.
UNFINISHED = ("staging", "attaching", "started")


# A file up to this size loads straight into the warehouse tables when its format can (Format.direct): one
# INSERT per table, whose rows, fewer than an insert block (min_insert_block_size_rows), form one part per table
# and partition that appears at once, as an attached partition does; the staging tables, their attaching and
# dropping (some twenty statements, most of a small run's ingest) are left out. Larger files are staged.
DIRECT_MAX_BYTES = 4 << 20


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
    3. the batch's histogram is kept and the run's step summaries are written over its done batches and this one
       (`write_summaries`); a summary counts only once its batches are all done, and rolling the batch back
       deletes both;
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
    fmt_impl = given_format(path, fmt, shown) if fmt else detect_format(path, shown)
    result = IngestResult(run_id, str(shown), fmt_impl.name, fmt_impl.tool)
    with backend.session(), ThreadPoolExecutor(1, thread_name_prefix="perfhouse-hash") as pool, \
            scratch_dir("ingest") as tmp:
        prepared = plain_content(path, Path(tmp), shown)
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
    write_summaries(job.backend, job.run_id, job.batch, job.staged_requests, BOUNDED)
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

