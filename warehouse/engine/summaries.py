"""Step summaries: each run's per-step and whole-run figures (count, request errors, exact P50/P95/P99, first
and last request), written when a batch of its rows commits, so trends and the noise of a history read a few
rows per run instead of every request.

A summary says which rows it was computed from: the run's batches recorded done, plus the batch being
committed, as their number and an order-free hash (`batches`, `batches_hash`). It is current while the run's
done batches are exactly those; a reader uses the current summary of a run and reads the raw requests of
any run that has none (a batch being committed or rolled back, rows written outside an ingest), so the
figures are always the ones the raw rows give.

A summary is computed from histograms of durations per step (queries.STEP_SUMMARY), which give the same exact
quantiles as the raw reads bit for bit. Each batch's histogram is kept (table step_histograms): written in its
commit from its own rows alone (a staged batch's from its staging requests table, which holds that batch alone; a
small batch's from its rows in requests, by batch id), so the summary adds up the kept histograms of the run's
batches and a commit never reads the run's earlier requests again. A live run's commit every few seconds so costs
the same at its end as at its start: measured on 120 commits of 50 writes each into one run (1.2 M requests in
all; two processes of each version, alternating), the 120th commit took 1.03-1.09 s when the summary read the
run's requests, and takes 0.35 s with the kept histograms, as the first commits did (0.33-0.39 s). The
summary also gives the batch's steps and time range, which the record of a run the batch creates needs
(`batch_shape`). (A materialized view on the staging table once kept the histogram as the rows loaded; but
ClickHouse writes a table that has a view with one thread, and the load's two writing threads are worth more than
the one pass over the staged columns: measured on a 4 M-row JTL, the load took 2.2-2.3 s of wall time with the
view, 1.5-1.6 s without, and the pass over 17.8 M staged rows 0.3-0.5 s.)

Writing a batch's histogram and its run's summary are two INSERT ... SELECT before the batch's "done" record
(ingest_file's commit): a batch that never reaches "done" leaves a summary that can never be current and a
histogram no summary covers, and rolling the batch back deletes both.
The table replaces a run's older summaries by newer ones as it merges (ReplacingMergeTree), so a live run
that commits a batch every few seconds keeps one summary, not one per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warehouse.engine.backends import Backend, quote_identifier, settings_sql
from warehouse.engine.cluster import home
from warehouse.read import queries

TABLE = "step_summaries"
HISTOGRAMS = "step_histograms"
# The columns of step_histograms, in the order queries.batch_histogram and queries.DONE_BATCH_HISTOGRAMS select them.
HISTOGRAM_COLUMNS = "run_id, batch, journey, step, duration_ms, n, errors, first_ts, last_ts"
# The columns queries.STEP_SUMMARY selects, in its order.
COLUMNS = ("run_id, batch, batches, batches_hash, overall, journey, step, requests, errors, p50, p95, p99, "
           "first_ts, last_ts, summarised_at")


def write_summaries(backend: Backend, run_id: str, batch: str, staged: str = "",
                    settings: dict[str, Any] | None = None) -> None:
    """Keep the histogram of `batch` (the batch being committed; '' for none) and summarise run `run_id` over its
    done batches and that one, from their kept histograms. `staged`: the staging requests table holding `batch`'s
    rows, else they are read from requests by their batch id.
    On a cluster the histogram and the summary are written beside the batch's rows, on the connected node's local
    tables, where rolling the batch back finds them; reads go through the Distributed tables as for every other
    table."""
    params = {"run": run_id, "batch": batch}
    if batch:
        source = quote_identifier(staged) if staged else "requests"
        backend.command(f"INSERT INTO {home(backend, HISTOGRAMS)} ({HISTOGRAM_COLUMNS}) "
                        f"{queries.batch_histogram(source, by_batch=not staged)}{settings_sql(settings)}", params)
    done = backend.query("SELECT DISTINCT batch FROM ingested_files FINAL WHERE run_id = {run:String} "
                         "AND state = 'done'", {"run": run_id})
    covered = sorted({str(r["batch"]) for r in done} | ({batch} if batch else set()))
    if not covered:
        return
    backend.command(f"INSERT INTO {home(backend, TABLE)} ({COLUMNS}) {queries.STEP_SUMMARY}{settings_sql(settings)}",
                    {**params, "covered": covered})


@dataclass(frozen=True)
class BatchShape:
    """The steps a batch's requests name, and its first and last request (ClickHouse's text of the times)."""

    steps: list[tuple[str, str]]
    first_ts: str
    last_ts: str


def batch_shape(backend: Backend, run_id: str, batch: str) -> BatchShape | None:
    """From the summary `batch` wrote for run `run_id` (a run the batch creates: it covers that batch alone);
    None when it wrote none (no requests)."""
    rows = backend.query(
        f"SELECT overall, journey, step, toString(first_ts) AS first_ts, toString(last_ts) AS last_ts "
        f"FROM {home(backend, TABLE)} WHERE run_id = {{run:String}} AND batch = {{batch:String}} "
        "ORDER BY overall, journey, step",
        {"run": run_id, "batch": batch},
    )
    whole = [r for r in rows if int(r["overall"])]
    if not whole:
        return None
    steps = [(str(r["journey"]), str(r["step"])) for r in rows if not int(r["overall"])]
    return BatchShape(steps, str(whole[0]["first_ts"]), str(whole[0]["last_ts"]))


def discard_summaries(backend: Backend, batch: str) -> None:
    """Delete the histogram and the summaries a batch that is being rolled back wrote (none before the tables
    exist)."""
    exists = {str(r["name"]) for r in backend.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND name IN {t:Array(String)}",
        {"t": [TABLE, HISTOGRAMS]})}
    for table in (HISTOGRAMS, TABLE):
        if table in exists:
            backend.command(f"DELETE FROM {home(backend, table)} WHERE batch = {{b:String}}", {"b": batch})


# Rebuilding groups the rows of every done batch at once: the aggregation spills to disk past this much memory.
_REBUILD: dict[str, Any] = {"max_threads": 2, "max_bytes_before_external_group_by": 64 << 20}


def summarise_all(backend: Backend) -> int:
    """(Re)write the histogram of every done batch and the summary of every run that has done batches, from their
    rows as they are now; returns how many runs. Runs ingested before histograms were kept get theirs here (the
    migration that adds the table)."""
    backend.command(f"TRUNCATE TABLE {HISTOGRAMS}")
    backend.command(f"INSERT INTO {HISTOGRAMS} ({HISTOGRAM_COLUMNS}) {queries.DONE_BATCH_HISTOGRAMS}"
                    f"{settings_sql(_REBUILD)}")
    runs = backend.query(queries.SUMMARISABLE_RUNS)
    for row in runs:
        write_summaries(backend, str(row["run_id"]), "")
    return len(runs)
