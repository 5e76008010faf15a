"""Writes received over the network (InfluxDB line protocol) stored into a run: batched and idempotent.

The results receiver hands over the writes it holds every few seconds; they are stored as one ingest
batch of the `influx-line` format, through the same path as a file (`ingest --format influx-line`), so a
write's points and requests land exactly as the same lines from a file would. A write is identified by
the sha256 of its (decompressed) body: `received_writes` records each hash with the hash of the batch
file that carries it before the batch is loaded, and a hash counts as stored only while that batch is
done. A client that sends a write again (its retry after a lost acknowledgement, a receiver killed after
storing it) is so acknowledged without a second copy, and the writes of a batch that died midway, which
recovery discards, are stored when they come again.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from warehouse.engine.backends import Backend
from warehouse.engine.owners import scratch_dir
from warehouse.ingest.batch import ingest_file
from warehouse.ingest.files import file_sha256
from warehouse.ingest.formats import IngestResult, StepFacts
from warehouse.read import queries


@dataclass(frozen=True)
class Write:
    """One write's body (line protocol, decompressed) and its content hash."""

    body: bytes
    sha256: str

    @classmethod
    def of(cls, body: bytes) -> Write:
        return cls(body, hashlib.sha256(body).hexdigest())


@dataclass
class Stored:
    """What storing a batch of writes did."""

    stored: set[str] = field(default_factory=set)  # hashes of the writes this batch added
    duplicates: set[str] = field(default_factory=set)  # hashes the run held already
    result: IngestResult | None = None


def stored_hashes(backend: Backend, run_id: str, hashes: list[str]) -> set[str]:
    """The hashes among `hashes` whose writes the run holds (in a batch that is done)."""
    if not hashes:
        return set()
    rows = backend.query(queries.RECEIVED_WRITES, {"run": run_id, "hashes": hashes})
    return {str(r["sha256"]) for r in rows}


def store_writes(
    backend: Backend,
    run_id: str,
    writes: list[Write],
    services: dict[tuple[str, str], str] | None = None,
    generator: str = "",
    steps: dict[tuple[str, str], StepFacts] | None = None,
) -> Stored:
    """Store the writes the run does not hold yet as one batch; raises IngestError when none of their lines
    is valid, WarehouseError when the warehouse fails (nothing of the batch is then kept)."""
    unique = list({w.sha256: w for w in writes}.values())
    outcome = Stored()
    with backend.session():
        outcome.duplicates = stored_hashes(backend, run_id, [w.sha256 for w in unique])
        new = [w for w in unique if w.sha256 not in outcome.duplicates]
        if not new:
            return outcome
        with scratch_dir("receive") as tmp:
            path = Path(tmp) / f"received-{run_id}.lp"
            with open(path, "wb") as out:
                # A comment naming the run and batch: the file's hash (which ingestion keeps to refuse a file
                # seen before) is then this batch's alone, even for the same points sent to two runs.
                out.write(f"# perfhouse receive run={run_id} batch={uuid.uuid4().hex}\n".encode())
                for w in new:
                    out.write(w.body)
                    if not w.body.endswith(b"\n"):
                        out.write(b"\n")
            batch_sha = file_sha256(path)
            backend.command(
                "INSERT INTO received_writes (run_id, sha256, batch_sha256, received_at) "
                "SELECT {run:String}, arrayJoin({hashes:Array(String)}), {batch:String}, now64(3)",
                {"run": run_id, "hashes": [w.sha256 for w in new], "batch": batch_sha},
            )
            # named for what it is in messages and records: the batch file is a temporary file of the receiver's
            outcome.result = ingest_file(backend, path, run_id, "influx-line", generator, services, steps,
                                         source=Path(f"writes received into run {run_id}"))
        outcome.stored = {w.sha256 for w in new}
    return outcome
