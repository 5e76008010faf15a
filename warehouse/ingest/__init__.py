"""Ingestion of result files into runs: what a format is and which file is which (formats), the batch that makes
a file's rows appear all at once or not at all (batch), plain copies and hashes of files (files), and the
statements every format shares (sql). The format modules beside them register themselves (formats.all_formats).
This module only hands their names on."""

from warehouse.engine.batches import discard_batch
from warehouse.errors import IngestError
from warehouse.ingest.batch import (
    claim,
    commit,
    ingest_file,
    recover,
    undo_dead_batch,
)
from warehouse.ingest.files import count_lines, file_sha256, quick_fingerprint, read_head, readable
from warehouse.ingest.formats import (
    UNKNOWN_STEP,
    Format,
    IngestJob,
    IngestResult,
    NeedsStaging,
    Rejected,
    StepFacts,
    all_formats,
    detect_format,
    register,
)

__all__ = [
    "UNKNOWN_STEP",
    "Format",
    "IngestError",
    "IngestJob",
    "IngestResult",
    "NeedsStaging",
    "Rejected",
    "StepFacts",
    "all_formats",
    "claim",
    "commit",
    "count_lines",
    "detect_format",
    "discard_batch",
    "file_sha256",
    "ingest_file",
    "quick_fingerprint",
    "read_head",
    "readable",
    "recover",
    "register",
    "undo_dead_batch",
]
