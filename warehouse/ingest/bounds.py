"""What a possible value is: the ranges every format checks before it keeps a row, as SQL and for Python parsers.

A result file can hold numbers no tool writes (a duration of 1e20 ms, NaN, a negative elapsed, a count past
Int64, a year 9999): stored, they wrap, break the reports' arithmetic or crash a conversion. Each format's SQL
rejects such a line with a reason, counted as a rejected line like any other bad line, and keeps the rest.

- A duration (k6's time metrics, JMeter's elapsed, latency and connect, Locust's response time) is a finite
  number of milliseconds from 0 to MAX_DURATION_MS (a day: no HTTP request of a load test lasts longer).
- A time lies from 1970-01-01 up to (not including) 2100-01-01 UTC.
- Any other metric value is a finite number.
"""

from __future__ import annotations

MAX_DURATION_MS = 86_400_000
TS_FROM, TS_UNTIL = "1970-01-01 00:00:00", "2100-01-01 00:00:00"
_UNTIL_S = 4_102_444_800  # TS_UNTIL in Unix seconds
NS_FROM, NS_UNTIL = 0, _UNTIL_S * 10**9  # the same range in Unix nanoseconds
TS_FROM_MS, TS_UNTIL_MS = 0, _UNTIL_S * 1000  # and in Unix milliseconds
# k6's built-in metrics whose values are durations in milliseconds.
K6_DURATIONS = ("http_req_duration", "http_req_waiting", "http_req_connecting", "http_req_blocked",
                "http_req_sending", "http_req_receiving", "http_req_tls_handshaking", "iteration_duration",
                "group_duration")

# Every insert of a batch: its rows may span any number of months (a JTL of ten years), each month a partition of
# the warehouse tables, and ClickHouse refuses an insert block over more than 100 partitions by default.
ANY_PARTITIONS = {"max_partitions_per_insert_block": 0}
ANY_PARTITIONS_SQL = " SETTINGS max_partitions_per_insert_block = 0"

DURATION_REASON = f"out of range (0 to {MAX_DURATION_MS} ms)"
TIME_REASON = "out of range (1970 to 2099)"


def time_ok(expr: str) -> str:
    """SQL: is the DateTime64 `expr` (not NULL) within the range of a possible time?"""
    return (f"({expr} >= toDateTime64('{TS_FROM}', 0, 'UTC') AND {expr} < toDateTime64('{TS_UNTIL}', 0, 'UTC'))")


def duration_ok(expr: str) -> str:
    """SQL: is the Float64 `expr` (not NULL) a possible duration in milliseconds?"""
    return f"(isFinite({expr}) AND {expr} >= 0 AND {expr} <= {MAX_DURATION_MS})"


def integer_ok(cell: str, high: int = MAX_DURATION_MS, number: str = "") -> str:
    """SQL: is the text `cell` an integer from 0 to `high`, written as such (no wrap past Int64)? `number`: an
    expression that already holds toInt64OrNull(`cell`), so the text is parsed once."""
    return f"ifNull({number or f'toInt64OrNull({cell})'} BETWEEN 0 AND {high}, 0)"


MAX_COUNT = 1 << 53  # a byte or sample count: exact as a Float64


def count_ok(cell: str, high: int = MAX_COUNT, number: str = "") -> str:
    """SQL: a text cell that is not an integer (read as 0), or an integer from 0 to `high`. `number`: an expression
    that already holds toInt64OrNull(`cell`)."""
    number = number or f"toInt64OrNull({cell})"  # the common case, a number in range, needs no regular expression
    return f"if({number} IS NULL, NOT match({cell}, '^[-+]?[0-9]+$'), {number} BETWEEN 0 AND {high})"


def k6_value_ok(metric: str, value: str) -> str:
    """SQL: is a k6 point's value possible for its metric (durations in range, any value finite)?"""
    names = ", ".join(f"'{m}'" for m in K6_DURATIONS)
    return f"(isFinite({value}) AND ({metric} NOT IN ({names}) OR {duration_ok(value)}))"


def k6_value_problem(metric: str, value: float) -> str:
    """The same check in Python: why a k6 point's value is impossible, or ''."""
    if value != value or value in (float("inf"), float("-inf")):
        return f"{metric}: value {value} is not a finite number"
    if metric in K6_DURATIONS and not 0 <= value <= MAX_DURATION_MS:
        return f"{metric}: value {value:g} {DURATION_REASON}"
    return ""
