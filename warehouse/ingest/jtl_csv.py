"""JMeter JTL in CSV: with or without a header row, any saveservice column layout, any delimiter."""

from __future__ import annotations

import csv
import io
import re
from typing import ClassVar

from warehouse.errors import IngestError
from warehouse.ingest import (
    IngestJob,
    IngestResult,
    count_rejects,
    read_head,
    register,
    service_map_params,
    stage_lines,
)

# Default column orders of headerless files, by column count.
LAYOUTS: dict[int, list[str]] = {
    # JMeter 2.13 defaults
    12: [
        "timeStamp",
        "elapsed",
        "label",
        "responseCode",
        "responseMessage",
        "threadName",
        "dataType",
        "success",
        "bytes",
        "grpThreads",
        "allThreads",
        "Latency",
    ],
    # JMeter 5.x defaults
    17: [
        "timeStamp",
        "elapsed",
        "label",
        "responseCode",
        "responseMessage",
        "threadName",
        "dataType",
        "success",
        "failureMessage",
        "bytes",
        "sentBytes",
        "grpThreads",
        "allThreads",
        "URL",
        "Latency",
        "IdleTime",
        "Connect",
    ],
}
KNOWN = {
    "timeStamp",
    "elapsed",
    "label",
    "responseCode",
    "responseMessage",
    "threadName",
    "dataType",
    "success",
    "failureMessage",
    "bytes",
    "sentBytes",
    "grpThreads",
    "allThreads",
    "URL",
    "Filename",
    "Latency",
    "Encoding",
    "SampleCount",
    "ErrorCount",
    "Hostname",
    "IdleTime",
    "Connect",
}
DELIMITERS = ",\t;|"


def _col(columns: list[str], name: str, default: str = "''") -> str:
    return f"c{columns.index(name)}" if name in columns else default


def _layout(head: bytes, path: str) -> tuple[list[str], bool, str]:
    """Column names, whether the first line is a header, and the delimiter."""
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    delimiter = max(DELIMITERS, key=first.count)
    fields = next(csv.reader(io.StringIO(first), delimiter=delimiter))
    if fields and fields[0] == "timeStamp":
        unknown = [f for f in fields if f not in KNOWN]
        if "elapsed" not in fields or "label" not in fields:
            raise IngestError(f"{path}:1: the JTL header lacks elapsed or label: {first[:120]!r}")
        return [f if f not in unknown else f"extra_{i}" for i, f in enumerate(fields)], True, delimiter
    if len(fields) not in LAYOUTS:
        raise IngestError(
            f"{path}:1: a JTL without a header row and {len(fields)} columns; perfhouse knows the defaults of "
            f"JMeter 2.13 (12) and 5.x (17): save with jmeter.save.saveservice.print_field_names=true"
        )
    return LAYOUTS[len(fields)], False, delimiter


@register
class JtlCsv:
    name: ClassVar[str] = "jtl-csv"
    tool: ClassVar[str] = "jmeter"

    def sniff(self, head: bytes) -> bool:
        first = head.split(b"\n", 1)[0]
        return first.startswith(b"timeStamp") or bool(re.match(rb"^\d{13}[,\t;|]\d+[,\t;|]", first))

    def load(self, job: IngestJob, result: IngestResult) -> None:
        columns, header, delimiter = _layout(read_head(job.path), str(job.path))
        staged = [f"c{i}" for i in range(len(columns))]
        settings = {
            "format_csv_delimiter": delimiter,
            "input_format_csv_skip_first_lines": 1 if header else 0,
            "input_format_csv_allow_variable_number_of_columns": 1,
            "input_format_csv_empty_as_default": 1,
        }
        total = stage_lines(job, staged, "CSV", settings)
        ts, elapsed, success = _col(columns, "timeStamp"), _col(columns, "elapsed"), _col(columns, "success")
        # JMeter ends every record with a line break: a last line without one was cut short.
        with open(job.path, "rb") as fh:
            fh.seek(-1, 2)
            cut_short = fh.read(1) not in (b"\n", b"\r") and not _is_gzip_path(job)
        ts_expr = (
            f"if(match({ts}, '^[0-9]+$'), fromUnixTimestamp64Milli(toInt64OrZero({ts}), 'UTC'), "
            f"parseDateTime64BestEffortOrNull({ts}, 3, 'UTC'))"
        )
        reason = (
            f"multiIf(rowNumberInAllBlocks() + 1 = {total} AND {int(cut_short)}, 'the last line was cut short',"
            f" {ts_expr} IS NULL, 'timeStamp is not a time',"
            f" toInt64OrNull({elapsed}) IS NULL, 'elapsed is not a number',"
            f" {success} NOT IN ('true', 'false'), 'success is neither true nor false',"
            f" {_col(columns, 'label')} = '', 'label is empty', '')"
        )
        thread = _col(columns, "threadName")
        journey = f"replaceRegexpOne({thread}, '\\\\s+[0-9]+-[0-9]+$', '')"
        label = _col(columns, "label")
        url = _col(columns, "URL")
        job.backend.command(
            f"""
            INSERT INTO requests (run_id, batch, ts, tool, generator, journey, step, service, method, url, status,
                                  ok, duration_ms, waiting_ms, connect_ms, bytes_sent, bytes_received, error, vu)
            SELECT {{run:String}}, {{batch:String}}, ts_, 'jmeter', {{generator:String}}, journey_, {label},
                   transform(concat(journey_, '\\t', {label}), {{svc_keys:Array(String)}},
                             {{svc_values:Array(String)}}, domain({url})),
                   '', {url}, toUInt16OrZero({_col(columns, "responseCode")}), {success} = 'true',
                   toFloat64(toInt64OrZero({elapsed})), toFloat64(toInt64OrZero({_col(columns, "Latency")})),
                   toFloat64(toInt64OrZero({_col(columns, "Connect")})),
                   toUInt64OrZero({_col(columns, "sentBytes")}), toUInt64OrZero({_col(columns, "bytes")}),
                   if({success} = 'true', '', if({_col(columns, "failureMessage")} != '',
                      {_col(columns, "failureMessage")}, {_col(columns, "responseMessage")})),
                   {thread}
            FROM (SELECT *, {ts_expr} AS ts_, {journey} AS journey_, {reason} AS reason_ FROM {job.stage}
                  SETTINGS max_threads = 1)
            WHERE reason_ = ''
            """,
            {"run": job.run_id, "batch": job.batch, "generator": job.generator, **service_map_params(job)},
        )
        result.rows = int(
            job.backend.query("SELECT count() AS n FROM requests WHERE batch = {b:String}", {"b": job.batch})[
                0
            ]["n"]
        )
        text = f"arrayStringConcat([{', '.join(staged)}], {_sql_string(delimiter)})"
        count_rejects(job, result, reason, text_sql=text, first_line=2 if header else 1)


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\t", "\\t") + "'"


def _is_gzip_path(job: IngestJob) -> bool:
    with open(job.path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"
