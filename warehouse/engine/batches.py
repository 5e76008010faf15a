"""A batch's rows taken back: the primitive that both ingest's undo and the schema's migrations use.

A batch (warehouse.ingest.batch) adds rows, tagged with its id, to the warehouse tables in BATCH_TABLES, may create
the record of its run, and writes its step summaries; `discard_batch` deletes all of that and records the batch
failed, so its file can be ingested again.
"""

from __future__ import annotations

from warehouse.engine.backends import Backend
from warehouse.engine.cluster import home
from warehouse.engine.summaries import discard_summaries

# The warehouse tables a batch adds rows to, in the order its rows are attached: a run's requests (what
# reports read) appear last, once the raw points and aggregates they come with are there.
BATCH_TABLES = ("k6_points", "aggregates", "requests")


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
