"""The statements every format shares: memory bounds of an ingest's statements, parsing a file into a staging
table, the spec's step facts and services as ClickHouse arrays, counting rejected lines, trace ids."""

from __future__ import annotations

from typing import Any

from warehouse.errors import IngestError, WarehouseError
from warehouse.ingest.formats import LINE_SUFFIXES, IngestJob, IngestResult, Rejected

SAMPLE_REJECTS = 5

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
