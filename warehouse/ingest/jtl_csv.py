"""JMeter JTL in CSV: with or without a header row, any saveservice column layout, any delimiter."""

from __future__ import annotations

import csv
import io
import re
from typing import Any, ClassVar

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
# Every saveservice column: the 5.x defaults plus the optional ones.
KNOWN = {*LAYOUTS[17], "Filename", "Encoding", "SampleCount", "ErrorCount", "Hostname"}
# A Transaction Controller's own sample (a group of requests, not a request) says this.
TRANSACTION_MESSAGE = "Number of samples in transaction"
DELIMITERS = ",\t;|"


def _col(columns: list[str], name: str, default: str = "''") -> str:
    return f"f{columns.index(name)}" if name in columns else default


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
        columns, header, delimiter = _layout(read_head(job.path), str(job.source or job.path))
        fields, total = _stage(job, len(columns), header, delimiter)
        if _swallowed_lines(job, fields, columns):
            fields, total = _stage(job, len(columns), header, delimiter, by_line=True)
        ts, elapsed, success = _col(columns, "timeStamp"), _col(columns, "elapsed"), _col(columns, "success")
        # JMeter ends every record with a line break: a last line without one was cut short.
        with open(job.path, "rb") as fh:
            fh.seek(-1, 2)
            cut_short = fh.read(1) not in (b"\n", b"\r")
        ts_expr = (
            f"if(match({ts}, '^[0-9]+$'), fromUnixTimestamp64Milli(toInt64OrZero({ts}), 'UTC'), "
            f"parseDateTime64BestEffortOrNull({ts}, 3, 'UTC'))"
        )
        n = len(columns)
        reason = (
            f"multiIf(lineno_ = {total} AND {int(cut_short)}, 'the last line was cut short',"
            f" ncols_ != {n}, concat(if(ncols_ > {n}, 'more than ', ''), toString(least(ncols_, {n})),"
            f"   ' columns, expected {n}'),"
            f" {ts_expr} IS NULL, 'timeStamp is not a time',"
            f" toInt64OrNull({elapsed}) IS NULL, 'elapsed is not a number',"
            f" {success} NOT IN ('true', 'false'), 'success is neither true nor false',"
            f" {_col(columns, 'label')} = '', 'label is empty', '')"
        )
        thread = _col(columns, "threadName")
        journey = f"replaceRegexpOne({thread}, '\\\\s+[0-9]+-[0-9]+$', '')"
        label = _col(columns, "label")
        url = _col(columns, "URL")
        staged = f"(SELECT *, rowNumberInAllBlocks() + 1 AS lineno_ FROM ({fields}))"
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
            FROM (SELECT *, {ts_expr} AS ts_, {journey} AS journey_, {reason} AS reason_ FROM {staged}
                  SETTINGS max_threads = 1)
            WHERE reason_ = '' AND NOT startsWith({_col(columns, "responseMessage")}, '{TRANSACTION_MESSAGE}')
            """,
            {"run": job.run_id, "batch": job.batch, "generator": job.generator, **service_map_params(job)},
        )
        result.rows = int(
            job.backend.query("SELECT count() AS n FROM requests WHERE batch = {b:String}", {"b": job.batch})[
                0
            ]["n"]
        )
        text = f"arrayStringConcat([{', '.join(f'f{i}' for i in range(n))}], {_sql_string(delimiter)})"
        count_rejects(
            job,
            result,
            reason.replace("lineno_", "(rowNumberInAllBlocks() + 1)"),
            text_sql=text,
            first_line=2 if header else 1,
            from_sql=f"({fields})",
        )


def _swallowed_lines(job: IngestJob, fields: str, columns: list[str]) -> bool:
    """Did an unbalanced quote make the CSV reader swallow following lines into one bad record?"""
    if "fields_" in fields:
        return False
    ts, elapsed = _col(columns, "timeStamp"), _col(columns, "elapsed")
    cells = ", ".join(f"f{i}" for i in range(len(columns)))
    rows = job.backend.query(
        f"SELECT count() AS n FROM ({fields}) WHERE ncols_ != {len(columns)} AND "
        f"arrayExists(x -> position(x, '\\n') > 0, [{cells}]) OR "
        f"(position({ts}, '\\n') + position({elapsed}, '\\n') > 0)"
    )
    return int(rows[0]["n"]) > 0


def _stage(job: IngestJob, n: int, header: bool, delimiter: str, by_line: bool = False) -> tuple[str, int]:
    """Stage the records; returns SQL giving f0..f{n-1} (text) and ncols_ per record, and the record count.

    ClickHouse's CSV reader parses the file (quoted fields, even multi-line ones). One more column than
    expected and Nullable cells tell a short or long record from empty cells. When the reader gives up
    (an unbalanced quote), every physical line is staged instead and split in SQL, so the rejects
    still have their line numbers.
    """
    staged = [f"c{i}" for i in range(n + 1)]
    settings: dict[str, Any] = {
        "format_csv_delimiter": delimiter,
        "input_format_csv_skip_first_lines": 1 if header else 0,
        "input_format_csv_allow_variable_number_of_columns": 1,
        "input_format_csv_empty_as_default": 0,
    }
    fmt = "CSV"
    if delimiter == "\t":  # ClickHouse's CSV refuses a tab delimiter; the same CSV quoting in a custom format
        fmt = "CustomSeparatedWithNames" if header else "CustomSeparated"
        settings = {
            "format_custom_escaping_rule": "CSV",
            "format_custom_field_delimiter": "\t",
            "input_format_custom_allow_variable_number_of_columns": 1,
            "input_format_with_names_use_header": 0,
            "input_format_csv_empty_as_default": 0,
        }
    if not by_line:
        try:
            total = stage_lines(job, staged, fmt, settings, column_type="Nullable(String)")
            cells = ", ".join(f"ifNull(c{i}, '') AS f{i}" for i in range(n))
            count = f"length(arrayFilter(x -> isNotNull(x), [{', '.join(staged)}]))"
            return f"SELECT {cells}, {count} AS ncols_ FROM {job.stage}", total
        except IngestError:
            pass
    total = stage_lines(job, ["line"], "LineAsString")
    d = _sql_string(delimiter)
    rd = "\\\\t" if delimiter == "\t" else "\\\\" + delimiter
    split = (
        f"if(position(line, '\"') = 0, splitByChar({d}, line), "
        f"arrayMap(x -> if(startsWith(x, '\"') AND endsWith(x, '\"') AND length(x) > 1, "
        f"replaceAll(substring(x, 2, length(x) - 2), '\"\"', '\"'), x), "
        f"extractAll(concat({d}, line), '{rd}(\"(?:[^\"]|\"\")*\"|[^{rd}]*)')))"
    )
    cells = ", ".join(f"arrayElement(fields_, {i + 1}) AS f{i}" for i in range(n))
    skip = "WHERE rowNumberInAllBlocks() > 0" if header else ""
    return (
        f"SELECT {cells}, length(fields_) AS ncols_ FROM "
        f"(SELECT {split} AS fields_ FROM {job.stage} {skip} SETTINGS max_threads = 1)",
        total - int(header),
    )


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\t", "\\t") + "'"

