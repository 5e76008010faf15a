"""Locust's own CSV statistics (`locust --csv PREFIX`), from locustfiles perfhouse did not write: the
end-of-test table (PREFIX_stats.csv) and the table over time (PREFIX_stats_history.csv).

They hold what Locust computed, per request name, not requests: they are kept as interval aggregates (table
`aggregates`, tool `locust`, step = the request's name, journey empty), as JMeter's backend-listener lines are.
Metrics: count, failures, avg, min, max, median, rps, fps, avg_size, pct50 ... pct100 (Locust's own, rounded
percentiles) and, in the history, users. A value of N/A (no request yet) is left out. The end-of-test table
has no time of its own: its rows take the file's modification time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from warehouse.errors import IngestError
from warehouse.ingest.bounds import ANY_PARTITIONS_SQL, NS_FROM, NS_UNTIL, TIME_REASON
from warehouse.ingest.files import read_head
from warehouse.ingest.formats import IngestJob, IngestResult, register
from warehouse.ingest.sql import count_rejects, stage_lines

STATS_HEADER = b"Type,Name,Request Count,Failure Count,"
HISTORY_HEADER = b"Timestamp,User Count,Type,Name,"
PERCENTILES = ("50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%")
# metric -> the column holding it, in each file
STATS_METRICS = {
    "count": "Request Count", "failures": "Failure Count", "median": "Median Response Time",
    "avg": "Average Response Time", "min": "Min Response Time", "max": "Max Response Time",
    "avg_size": "Average Content Size", "rps": "Requests/s", "fps": "Failures/s",
    **{f"pct{p.rstrip('%')}": p for p in PERCENTILES},
}
HISTORY_METRICS = {
    "users": "User Count", "rps": "Requests/s", "fps": "Failures/s",
    **{f"pct{p.rstrip('%')}": p for p in PERCENTILES},
    "count": "Total Request Count", "failures": "Total Failure Count", "median": "Total Median Response Time",
    "avg": "Total Average Response Time", "min": "Total Min Response Time", "max": "Total Max Response Time",
    "avg_size": "Total Average Content Size",
}


def _load(job: IngestJob, result: IngestResult, metrics: dict[str, str], ts_column: str | None, source: str) -> int:
    """Stage the CSV (columns c0..cN by the header's order) and insert one aggregate per row and metric."""
    header = read_head(job.path).split(b"\n", 1)[0].decode(errors="replace").rstrip("\r").split(",")
    missing = [c for c in ("Type", "Name", *metrics.values()) if c not in header]
    if missing:
        raise IngestError(f"{job.source or job.path}:1: a Locust {source} file has a column {missing[0]!r}")
    col = {name: f"c{i}" for i, name in enumerate(header)}
    stage_lines(job, list(col.values()), "CSV", {"input_format_csv_skip_first_lines": 1,
                                                  "input_format_csv_allow_variable_number_of_columns": 1})
    values = ", ".join(f"toFloat64OrNull({col[column]})" for column in metrics.values())
    infinite = f"NOT arrayAll(x -> isNull(x) OR isFinite(assumeNotNull(x)), [{values}]), 'a value is not a finite number'"
    if ts_column is None:
        mtime = os.stat(job.source or job.path).st_mtime
        ts = f"toDateTime64({mtime!r}, 6, 'UTC')"
        reason = f"multiIf({col['Name']} = '', 'no Name', {infinite}, '')"
    else:
        ts = f"toDateTime64(toInt64OrZero({col[ts_column]}), 6, 'UTC')"
        reason = (f"multiIf(toInt64OrNull({col[ts_column]}) IS NULL, '{ts_column} is not a number', "
                  f"NOT ifNull(toInt64OrNull({col[ts_column]}) BETWEEN {NS_FROM // 10**9} AND {NS_UNTIL // 10**9 - 1}, 0), "
                  f"'{ts_column} {TIME_REASON}', {col['Name']} = '', 'no Name', {infinite}, '')")
    pairs = ", ".join(f"('{metric}', toFloat64OrNull({col[column]}))" for metric, column in metrics.items())
    job.backend.command(
        f"""
        INSERT INTO {job.table("aggregates")} (run_id, batch, ts, tool, journey, step, status, metric, value, tags)
        SELECT {{run:String}}, {{batch:String}}, {ts}, 'locust', '', {col['Name']}, 'all', m.1, assumeNotNull(m.2),
               map('type', {col['Type']}, 'source', '{source}')
        FROM {job.stage}
        ARRAY JOIN [{pairs}] AS m
        WHERE ({reason}) = '' AND m.2 IS NOT NULL
        {ANY_PARTITIONS_SQL}""",
        {"run": job.run_id, "batch": job.batch},
    )
    count_rejects(job, result, reason, text_sql=f"concat({col['Type']}, ',', {col['Name']})", first_line=2)
    return int(job.backend.query(f"SELECT count() AS n FROM {job.table('aggregates')}")[0]["n"])


@register
class LocustStats:
    name: ClassVar[str] = "locust-stats"
    tool: ClassVar[str] = "locust"

    def sniff(self, head: bytes) -> bool:
        return head.startswith(STATS_HEADER)

    def load(self, job: IngestJob, result: IngestResult) -> None:
        result.aggregates = _load(job, result, STATS_METRICS, None, "stats")
        result.notes.append("Locust's own statistics: per request name, as Locust computed them (no requests)")


@register
class LocustStatsHistory:
    name: ClassVar[str] = "locust-history"
    tool: ClassVar[str] = "locust"

    def sniff(self, head: bytes) -> bool:
        return head.startswith(HISTORY_HEADER)

    def load(self, job: IngestJob, result: IngestResult) -> None:
        result.aggregates = _load(job, result, HISTORY_METRICS, "Timestamp", "stats_history")
        result.notes.append("Locust's own statistics over time: per request name, as Locust computed them "
                            "(no requests)")


STATS_SUFFIX = "_stats.csv"
HISTORY_SUFFIX = "_stats_history.csv"


def csv_prefix(path: Path) -> str | None:
    """The `--csv PREFIX` a Locust statistics file was written with (its name less the suffix), or None."""
    for suffix in (HISTORY_SUFFIX, STATS_SUFFIX):
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            return path.name[: -len(suffix)]
    return None


def csv_partners(paths: list[Path]) -> dict[Path, tuple[Path, Path]]:
    """The Locust statistics files among `paths` whose partner of the same `--csv PREFIX` (same directory) is
    there too: each of both → (history, stats), the order they are ingested in (the history first: its times
    are the run's)."""
    by_prefix: dict[tuple[Path, str], dict[str, Path]] = {}
    for path in paths:
        prefix = csv_prefix(path)
        if prefix is not None:
            kind = "history" if path.name.endswith(HISTORY_SUFFIX) else "stats"
            by_prefix.setdefault((path.parent.resolve(), prefix), {})[kind] = path
    out: dict[Path, tuple[Path, Path]] = {}
    for pair in by_prefix.values():
        if len(pair) == 2 and _sniffs(pair["history"], HISTORY_HEADER) and _sniffs(pair["stats"], STATS_HEADER):
            out[pair["history"]] = out[pair["stats"]] = (pair["history"], pair["stats"])
    return out


def _sniffs(path: Path, header: bytes) -> bool:
    try:
        return path.is_file() and read_head(path).startswith(header)
    except OSError:
        return False
