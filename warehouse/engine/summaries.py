"""Step summaries: each run's per-step and whole-run figures (count, request errors, exact P50/P95/P99, first
and last request), written when a batch of its rows commits, so trends and the noise of a history read a few
rows per run instead of every request.

A summary says which rows it was computed from: the run's batches recorded done, plus the batch being
committed, as their number and an order-free hash (`batches`, `batches_hash`). It is current while the run's
done batches are exactly those; a reader uses the current summary of a run and reads the raw requests of
any run that has none (a batch being committed or rolled back, rows written outside an ingest), so the
figures are always the ones the raw rows give.

A summary is computed from a histogram of durations per step (queries.step_summary), which gives the same
exact quantiles as the raw reads bit for bit. A staged batch's histogram comes from its staging requests table,
which holds that batch alone, in the same statement that reads the run's earlier batches; the summary also gives
the batch's steps and time range, which the record of a run the batch creates needs (`batch_shape`). (The
histogram used to be kept by a materialized view on the staging table as the rows loaded; but ClickHouse writes a
table that has a view with one thread, and the load's two writing threads are worth more than the one pass over
the staged columns the summary now makes: measured on a 4 M-row JTL, the load took 2.2-2.3 s of wall time with
the view, 1.5-1.6 s without, and the pass over 17.8 M staged rows 0.3-0.5 s.)

Writing a summary is one INSERT ... SELECT before a batch's "done" record (ingest_file's commit): a batch that
never reaches "done" leaves a summary that can never be current, and rolling the batch back deletes it too.
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
# The columns queries.step_summary selects, in its order.
COLUMNS = ("run_id, batch, batches, batches_hash, overall, journey, step, requests, errors, p50, p95, p99, "
           "first_ts, last_ts, summarised_at")


def write_summaries(backend: Backend, run_id: str, batch: str, staged: str = "",
                    settings: dict[str, Any] | None = None) -> None:
    """Summarise run `run_id` over its done batches and `batch` (the batch being committed; '' for none);
    `staged`: the staging requests table holding `batch`'s rows, else they are read from requests.
    On a cluster the summary is written beside the batch's rows, on the connected node's local table, where
    rolling the batch back finds it; reads go through the Distributed table as for every other table."""
    done = backend.query("SELECT DISTINCT batch FROM ingested_files FINAL WHERE run_id = {run:String} "
                         "AND state = 'done'", {"run": run_id})
    covered = sorted({str(r["batch"]) for r in done} | ({batch} if batch else set()))
    raw = [b for b in covered if not (staged and b == batch)]
    if not raw and not staged:
        return
    sql = queries.step_summary(quote_identifier(staged) if staged else "", requests=bool(raw))
    backend.command(f"INSERT INTO {home(backend, TABLE)} ({COLUMNS}) {sql}{settings_sql(settings)}",
                    {"run": run_id, "batch": batch, "covered": covered, "raw": raw})


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
