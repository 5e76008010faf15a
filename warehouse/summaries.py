"""Step summaries: each run's per-step and whole-run figures (count, request errors, exact P50/P95/P99, first
and last request), written when a batch of its rows commits, so trends and the noise of a history read a few
rows per run instead of every request.

A summary says which rows it was computed from: the run's batches recorded done, plus the batch being
committed, as their number and an order-free hash (`batches`, `batches_hash`). It is current while the run's
done batches are exactly those; a reader uses the current summary of a run and reads the raw requests of
any run that has none (a batch being committed or rolled back, rows written outside an ingest), so the
figures are always the ones the raw rows give. The summary is computed over those batches' rows with the
same exact functions the raw queries use (queries.STEP_SUMMARY), so they are equal bit for bit.

Writing a summary is one INSERT ... SELECT before a batch's "done" record (ingest_file's commit): a batch that
never reaches "done" leaves a summary that can never be current, and rolling the batch back deletes it too.
The table replaces a run's older summaries by newer ones as it merges (ReplacingMergeTree), so a live run
that commits a batch every few seconds keeps one summary, not one per batch.
"""

from __future__ import annotations

from warehouse import queries
from warehouse.backends import Backend
from warehouse.cluster import home

TABLE = "step_summaries"
# The columns queries.STEP_SUMMARY selects, in its order.
COLUMNS = ("run_id, batch, batches, batches_hash, overall, journey, step, requests, errors, p50, p95, p99, "
           "first_ts, last_ts, summarised_at")


def write_summaries(backend: Backend, run_id: str, batch: str) -> None:
    """Summarise run `run_id` over its done batches and `batch` (the batch being committed; '' for none).
    On a cluster the summary is written beside the batch's rows, on the connected node's local table, where
    rolling the batch back finds it; reads go through the Distributed table as for every other table."""
    backend.command(f"INSERT INTO {home(backend, TABLE)} ({COLUMNS}) {queries.STEP_SUMMARY}",
                    {"run": run_id, "batch": batch})


def discard_summaries(backend: Backend, batch: str) -> None:
    """Delete the summaries a batch that is being rolled back wrote (none before the table exists)."""
    exists = backend.query(
        "SELECT 1 FROM system.tables WHERE database = currentDatabase() AND name = {t:String}", {"t": TABLE}
    )
    if exists:
        backend.command(f"DELETE FROM {home(backend, TABLE)} WHERE batch = {{b:String}}", {"b": batch})


def summarise_all(backend: Backend) -> int:
    """(Re)write the summary of every run that has done batches, from its rows as they are now; returns how
    many runs. Runs ingested before summaries existed get theirs here (the migration that adds the table)."""
    runs = backend.query(queries.SUMMARISABLE_RUNS)
    for row in runs:
        write_summaries(backend, str(row["run_id"]), "")
    return len(runs)
