"""JMeter JTL in CSV: with or without a header row, any saveservice column layout, any delimiter.

A first, strict pass lets ClickHouse parse the file (integers as text, range-checked) straight into the batch's
requests table: a record that does not parse or is not a valid sample fails the statement, so a clean
file is read once. When it fails (or the last line was cut short), its rows are truncated away and the
checked path runs: the records are staged as text, split and checked in SQL, the valid ones inserted
and the rejected ones counted and explained with their line numbers. Both paths give valid records the
same values.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any, ClassVar

from warehouse.engine.backends import quote_identifier
from warehouse.errors import IngestError, WarehouseError
from warehouse.ingest.bounds import (
    ANY_PARTITIONS,
    ANY_PARTITIONS_SQL,
    DURATION_REASON,
    MAX_COUNT,
    MAX_DURATION_MS,
    TIME_REASON,
    TS_FROM_MS,
    TS_UNTIL_MS,
    count_ok,
    integer_ok,
    time_ok,
)
from warehouse.ingest.files import read_head
from warehouse.ingest.formats import UNKNOWN_STEP, IngestJob, IngestResult, register
from warehouse.ingest.sql import (
    BOUNDED,
    READ_FILE,
    count_rejects,
    service_map_params,
    stage_lines,
    step_map_params,
    trace_id_sql,
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
# JMeter variables saved with each sample (sample_variables) that the warehouse reads: the W3C trace id of a plan
# with trace context.
TRACE_ID = "trace_id"
KNOWN.add(TRACE_ID)
# The integer columns the warehouse keeps (read as text on both paths, so their ranges are checked as written). The
# others (grpThreads, allThreads, IdleTime, SampleCount, ErrorCount) are not read, so nothing of them rejects a
# record, as in an XML JTL. Parsing and checking two of them (JMeter 2.13's thread counts) took 7 % of the strict
# pass's CPU time (0.6 of 8.6 CPU-seconds on a 1.1 GB JTL).
INTEGERS = {"bytes", "sentBytes", "Latency", "Connect"}
# A Transaction Controller's own sample (a group of requests, not a request) says this.
TRANSACTION_MESSAGE = "Number of samples in transaction"
DELIMITERS = ",\t;|"
# The CSV reader's NULL text while staging: a control character no JTL cell consists of.
NO_NULL = "\x1f"


# JMeter fails a sample for a request error and for a failed assertion alike. A step of the spec says which
# status it expects (0: any 2xx or 3xx), so a request error is a status other than that (a transport failure
# has none). For a step the spec does not know (a JTL from a plan perfhouse did not write), a failed sample is
# a request error unless its status is 2xx/3xx, which JMeter's HTTP sampler accepts, so an assertion failed
# it; a response code assertion's failure ("Test failed: code ...") is a request error still (UNKNOWN_STEP).


def outcome_sql(key: str, code: str, success: str, failure: str, steps: bool = True) -> dict[str, str]:
    """SQL for a sample's expected status, `ok` (no request error) and whether an assertion failed it, from its
    "journey<TAB>step" key, response code, success flag and first failed assertion's message. Without `steps` (the
    spec knows no step: a JTL of a plan perfhouse did not write), every step is unknown and the key is not read."""
    expected = (f"transform({key}, {{step_keys:Array(String)}}, {{step_expected:Array(UInt16)}}, "
                f"toUInt16({UNKNOWN_STEP}))") if steps else f"toUInt16({UNKNOWN_STEP})"
    status = f"toUInt16OrZero({code})"
    ok = (f"multiIf(expected_ = {UNKNOWN_STEP}, {success} = 'true' OR ({status} BETWEEN 200 AND 399 "
          f"AND NOT startsWith({failure}, 'Test failed: code')), expected_ = 0, {status} BETWEEN 200 AND 399, "
          f"{status} = expected_)")
    return {
        "expected": expected,
        "ok": ok,
        "assertion_failed": f"({failure} != '' OR ({success} != 'true' AND ok_))",
        "checks": (f"transform({key}, {{step_keys:Array(String)}}, {{step_checks:Array(UInt16)}}, toUInt16(0))"
                   if steps else "toUInt16(0)"),
        "method": f"transform({key}, {{step_keys:Array(String)}}, {{step_methods:Array(String)}}, '')" if steps else "''",
    }


def _col(columns: list[str], name: str, default: str = "''") -> str:
    return f"f{columns.index(name)}" if name in columns else default


# Optional integer columns and their highest possible value: a value past it (or negative, or past Int64, which
# would wrap) rejects the record; text that is no integer reads as 0, as before.
_BOUNDED_INTEGERS = {name: MAX_DURATION_MS if name in ("Latency", "Connect") else MAX_COUNT for name in sorted(INTEGERS)}


def _number(columns: list[str], name: str) -> str:
    """The alias _requests_sql gives the integer of a record's cell `name` (toInt64OrNull of its text)."""
    return f"n{columns.index(name)}_"


def range_checks(columns: list[str], ts: str) -> list[tuple[str, str]]:
    """(SQL true for an impossible record, its reason) for the numbers of a record with text cells f0.. and time
    `ts` (not NULL): elapsed, the time, then the optional integer columns present (the checked pass)."""
    elapsed = _col(columns, "elapsed")
    checks = [(f"NOT {integer_ok(elapsed)}", f"elapsed {DURATION_REASON}"),
              (f"NOT ifNull({time_ok(ts)}, 0)", f"timeStamp {TIME_REASON}")]
    for name, high in _BOUNDED_INTEGERS.items():
        if name in columns:
            limit = DURATION_REASON if high == MAX_DURATION_MS else f"out of range (0 to {high})"
            checks.append((f"NOT {count_ok(_col(columns, name), high)}", f"{name} {limit}"))
    return checks


def _layout(head: bytes, path: str) -> tuple[list[str], bool, str]:
    """Column names, whether the first line is a header, and the delimiter."""
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    delimiter = max(DELIMITERS, key=first.count)
    try:
        fields = next(csv.reader(io.StringIO(first), delimiter=delimiter), [])
    except csv.Error as exc:
        raise IngestError(f"{path}:1: not a JTL CSV record ({exc}): {first[:120]!r}") from None
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
        """A header row, or a record of JMeter's default layout by its structure (not its date: a JTL from a
        machine whose clock said 1970 is a JTL): integer timeStamp and elapsed, and success where it belongs."""
        first = head.split(b"\n", 1)[0].rstrip(b"\r")
        if first.startswith(b"timeStamp"):
            return True
        m = re.match(rb"^\d+([,\t;|])\d+\1", first)
        if m is None:
            return False
        try:
            fields = next(csv.reader(io.StringIO(first.decode("utf-8", errors="replace")), delimiter=m[1].decode()))
        except (csv.Error, StopIteration):
            return False
        layout = LAYOUTS.get(len(fields))
        return layout is not None and fields[layout.index("success")] in ("true", "false")

    def load(self, job: IngestJob, result: IngestResult) -> None:
        head = read_head(job.path)
        columns, header, delimiter = _layout(head, str(job.source or job.path))
        # JMeter ends every record with a line break: a last line without one was cut short.
        with open(job.path, "rb") as fh:
            fh.seek(-1, 2)
            cut_short = fh.read(1) not in (b"\n", b"\r")
        if not cut_short:
            try:
                result.rows = _load_strict(job, columns, header, delimiter, head)
                return
            except WarehouseError:
                job.restart("requests")
        _load_checked(job, result, columns, header, delimiter, cut_short)


def _requests_sql(table: str, columns: list[str], ts: str, where: str, source: str, job: IngestJob,
                  time_number: bool = False) -> str:
    """The INSERT of requests from `source`'s records (cells named f0.., `ts` the time expression); the numeric
    cells are text on both passes (0 when not a number), each parsed once, as n<i>_ (see strict_invalid).
    The lookups of the spec's steps and services are left out when the job has none. `time_number`: the
    timeStamp cell is parsed likewise (a time in Unix milliseconds), for `ts` and `where` to use."""
    numbers = [name for name in ("timeStamp" if time_number else "", "elapsed", *sorted(INTEGERS))
               if name in columns]

    def num(name: str) -> str:
        return f"ifNull({_number(columns, name)}, 0)" if name in columns else "0"

    thread, label, url, success = (_col(columns, c) for c in ("threadName", "label", "URL", "success"))
    failure, message, code = (_col(columns, c) for c in ("failureMessage", "responseMessage", "responseCode"))
    journey = f"replaceRegexpOne({thread}, '\\\\s+[0-9]+-[0-9]+$', '')"
    outcome = outcome_sql("key_", code, success, failure, steps=bool(job.steps))
    service = (f"transform(key_, {{svc_keys:Array(String)}}, {{svc_values:Array(String)}}, domain({url}))"
               if job.services else f"domain({url})")
    parsed = "".join(f", toInt64OrNull({_col(columns, name)}) AS {_number(columns, name)}" for name in numbers)
    # CSV names the first failed assertion only: a sample counts one failed check at most.
    return f"""
            INSERT INTO {quote_identifier(table)} (run_id, batch, ts, tool, generator, journey, step, service, method,
                                  url, status, ok, checks, failed_checks, duration_ms, waiting_ms, connect_ms,
                                  bytes_sent, bytes_received, error, failed_check, vu, trace_id)
            SELECT {{run:String}}, {{batch:String}}, ts_, 'jmeter', {{generator:String}}, journey_, {label},
                   {service}, {outcome["method"]}, {url}, toUInt16OrZero({code}), ok_,
                   greatest({outcome["checks"]}, toUInt16(failed_)), failed_,
                   toFloat64({num("elapsed")}), toFloat64({num("Latency")}), toFloat64({num("Connect")}),
                   toUInt64({num("sentBytes")}), toUInt64({num("bytes")}),
                   if(ok_, '', {message}), if(failed_ = 0, '', if({failure} != '', {failure}, 'an assertion failed')),
                   {thread}, {trace_id_sql(_col(columns, TRACE_ID))}
            FROM (SELECT *, {outcome["ok"]} AS ok_, toUInt16({outcome["assertion_failed"]}) AS failed_
                  FROM (SELECT *, {ts} AS ts_, {journey} AS journey_, concat(journey_, '\\t', {label}) AS key_,
                               {outcome["expected"]} AS expected_{parsed} FROM {source}))
            WHERE {where} AND NOT startsWith({message}, '{TRANSACTION_MESSAGE}')
            """


def strict_invalid(columns: list[str], millis: bool) -> str:
    """SQL true for a record the strict pass does not take (it fails the statement, and the checked pass decides),
    over the cells f0.. (text) and their integers (n<i>_, see _requests_sql) and the time ts_.

    Stricter than the checked pass, so that it needs no regular expression per record: an integer cell must hold
    an integer in its range or be empty, where the checked pass also reads other text (not digits) as 0. A JTL
    holds integers there; a file that does not takes the checked pass, which gives the same values. A time in
    Unix milliseconds has at most 13 digits (the checked pass's rule: a longer number would wrap past Int64).
    """
    ts_col, success, label, elapsed = (_col(columns, c) for c in ("timeStamp", "success", "label", "elapsed"))
    parts = [f"{success} NOT IN ('true', 'false')", f"{label} = ''",
             f"NOT {integer_ok(elapsed, number=_number(columns, 'elapsed'))}"]
    if millis:
        n = _number(columns, "timeStamp")
        parts.insert(0, f"NOT ifNull({n} BETWEEN {TS_FROM_MS} AND {TS_UNTIL_MS - 1}, 0) OR length({ts_col}) > 13")
    else:
        parts.insert(0, f"ts_ IS NULL OR NOT {time_ok('ts_')}")
    for name, high in _BOUNDED_INTEGERS.items():
        if name in columns:
            parts.append(f"ifNull(NOT ({_number(columns, name)} BETWEEN 0 AND {high}), {_col(columns, name)} != '')")
    return " OR ".join(parts)


def _load_strict(job: IngestJob, columns: list[str], header: bool, delimiter: str, head: bytes) -> int:
    """One typed pass of ClickHouse's CSV reader into requests; raises WarehouseError on any bad record."""
    lines = head.split(b"\n")
    first = lines[1 if header else 0] if len(lines) > int(header) else b""
    millis = bool(re.match(rb"^\d+[,\t;|]", first))  # else a timestamp_format: parsed as text
    # every cell as text: an Int64 column would wrap a number past its range instead of failing
    types = ", ".join(f"f{i} String" for i in range(len(columns)))
    ts = (f"fromUnixTimestamp64Milli(assumeNotNull({_number(columns, 'timeStamp')}), 'UTC')" if millis
          else f"parseDateTime64BestEffortOrNull({_col(columns, 'timeStamp')}, 3, 'UTC')")
    where = f"throwIf({strict_invalid(columns, millis)}, 'a JTL record that is not a valid sample') = 0"
    fmt, settings = _format_settings(delimiter, header)
    # Parallel parsing in small chunks: one parsing thread was the statement's bottleneck (the checks, sorts and
    # writes after it run on both cores), and ClickHouse's default chunk (10 MB of text per parsing thread, several
    # in flight) added some 80 MB to the peak, while 1 MB chunks keep it below that of one parsing thread. Two
    # insert threads, each sorting and writing its blocks.
    # A text cell that is exactly \\N is that text, not NULL (null_as_default off reads it as written).
    strict = {**BOUNDED, **READ_FILE, **settings, "max_threads": 2, "max_insert_threads": 2,
              "input_format_parallel_parsing": 1, "min_chunk_bytes_for_parallel_parsing": 1 << 20,
              "input_format_null_as_default": 0,
              "input_format_csv_allow_variable_number_of_columns": 0,
              "input_format_custom_allow_variable_number_of_columns": 0, **ANY_PARTITIONS}
    sql = _requests_sql(job.table("requests"), columns, ts, where, "{input}", job, time_number=millis)
    params = {"run": job.run_id, "batch": job.batch,
              "generator": job.generator, **service_map_params(job), **step_map_params(job)}
    job.backend.insert_from_file(sql, params, job.path, fmt, types, strict)
    # counted in the table, as the checked pass counts its rows
    return int(job.backend.query(f"SELECT count() AS n FROM {quote_identifier(job.table('requests'))}")[0]["n"])


def _format_settings(delimiter: str, header: bool) -> tuple[str, dict[str, Any]]:
    """ClickHouse's input format and settings for a JTL with this delimiter (CSV quoting either way)."""
    if delimiter == "\t":  # ClickHouse's CSV refuses a tab delimiter; the same CSV quoting in a custom format
        return "CustomSeparatedWithNames" if header else "CustomSeparated", {
            "format_custom_escaping_rule": "CSV",
            "format_custom_field_delimiter": "\t",
            "input_format_with_names_use_header": 0,
        }
    return "CSV", {"format_csv_delimiter": delimiter, "input_format_csv_skip_first_lines": 1 if header else 0}


def _load_checked(job: IngestJob, result: IngestResult, columns: list[str], header: bool, delimiter: str,
                  cut_short: bool) -> None:
    """Stage every record as text, insert the valid ones, count and explain the others."""
    fields, total = _stage(job, len(columns), header, delimiter)
    if _swallowed_lines(job, fields, columns):
        fields, total = _stage(job, len(columns), header, delimiter, by_line=True)
    ts, elapsed, success = _col(columns, "timeStamp"), _col(columns, "elapsed"), _col(columns, "success")
    ts_expr = (
        f"if(match({ts}, '^[0-9]+$'), if(length({ts}) <= 13, fromUnixTimestamp64Milli(toInt64OrZero({ts}), 'UTC'), "
        f"NULL), "
        f"parseDateTime64BestEffortOrNull({ts}, 3, 'UTC'))"
    )
    n = len(columns)
    reason = (
        f"multiIf(lineno_ = {total} AND {int(cut_short)}, 'the last line was cut short',"
        f" ncols_ != {n}, concat(if(ncols_ > {n}, 'more than ', ''), toString(least(ncols_, {n})),"
        f"   ' columns, expected {n}'),"
        f" {ts_expr} IS NULL, 'timeStamp is not a time',"
        f" toInt64OrNull({elapsed}) IS NULL AND NOT match({elapsed}, '^[-+]?[0-9]+$'), 'elapsed is not a number',"
        + "".join(f" {bad}, {_sql_string(why)}," for bad, why in range_checks(columns, ts_expr)) +
        f" {success} NOT IN ('true', 'false'), 'success is neither true nor false',"
        f" {_col(columns, 'label')} = '', 'label is empty', '')"
    )
    staged = (f"(SELECT *, {reason} AS reason_ FROM (SELECT *, rowNumberInAllBlocks() + 1 AS lineno_ "
              f"FROM ({fields})) SETTINGS max_threads = 1)")
    job.backend.command(
        _requests_sql(job.table("requests"), columns, ts_expr, "reason_ = ''", staged, job) + ANY_PARTITIONS_SQL,
        {"run": job.run_id, "batch": job.batch, "generator": job.generator,
         **service_map_params(job), **step_map_params(job)},
    )
    result.rows = int(job.backend.query(f"SELECT count() AS n FROM {quote_identifier(job.table('requests'))}")[0]["n"])
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
    fmt, settings = _format_settings(delimiter, header)
    settings |= {
        "input_format_csv_allow_variable_number_of_columns": 1,
        "input_format_custom_allow_variable_number_of_columns": 1,
        "input_format_csv_empty_as_default": 0,
        # NULL marks a missing cell only: a cell that is exactly \\N is text (JMeter writes no NULLs).
        "format_csv_null_representation": NO_NULL,
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

