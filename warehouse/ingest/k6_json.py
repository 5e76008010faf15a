"""k6 `--out json` (plain or gzip): every metric point kept, and one row per HTTP request derived.

ClickHouse parses each line once, with its JSONEachRow input format, straight into k6_points (data.time
read as DateTime64(9): ts keeps the microseconds, ts_ns the nanoseconds past them; tags as a Map):
there is no staging copy. Lines it cannot parse are skipped, not fatal. The requests are then SQL
over this batch's points of the four metrics they need. The points written plus the Metric lines
(counted by Python while hashing) must account for every line of the file; only when they do not
does a second, line-by-line pass locate the rejected lines, so a clean file is read once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from warehouse.errors import IngestError, WarehouseError
from warehouse.ingest import (
    BOUNDED,
    READ_FILE,
    IngestJob,
    IngestResult,
    Rejected,
    count_rejects,
    register,
    service_map_params,
    stage_lines,
)

# The columns of a k6 line as ClickHouse parses them (other keys, like a Metric's data, are skipped).
STRUCTURE = (
    "type LowCardinality(String), metric LowCardinality(String), "
    "data Tuple(time Nullable(DateTime64(9, 'UTC')), value Float64, tags Map(String, String))"
)
# A line the parser cannot read (not JSON, cut short, a value of the wrong type) is skipped and counted
# as an error instead of failing the file; best_effort reads k6's RFC 3339 times with any offset.
PARSE_SETTINGS = {
    "input_format_allow_errors_num": 1 << 62,
    "input_format_allow_errors_ratio": 1,
    "date_time_input_format": "best_effort",
    "input_format_skip_unknown_fields": 1,
}
# One parsing thread: parallel parsing holds several 10 MB segments and their blocks at once (measured:
# about 150 MB more anonymous memory for no faster ingest on 2 cores, where the insert uses both anyway).
INSERT_SETTINGS = {
    "input_format_parallel_parsing": 0,
}

# Grouping points into requests keeps one state per request (its tags are the key): spilling it to disk
# at BOUNDED's 64 MB more than doubles the query's time, so it spills later.
GROUP_SETTINGS = {"max_bytes_before_external_group_by": 256 << 20}

_POINTS = """
INSERT INTO k6_points (run_id, batch, ts, ts_ns, metric, value, tags, generator)
SELECT {run:String}, {batch:String}, toDateTime64(time, 6, 'UTC'), toUInt16(toUnixTimestamp64Nano(time) % 1000),
       metric, data.value, data.tags, {generator:String}
FROM (SELECT *, assumeNotNull(data.time) AS time FROM {input} WHERE type = 'Point' AND data.time IS NOT NULL)
"""

# k6 writes the metrics of one HTTP request (http_reqs, http_req_duration, ..., http_req_failed) as
# separate points with the same nanosecond timestamp and the same tags: grouping on both rebuilds
# the request (only the four metrics read here matter; the sorting key finds them). Tags written by
# perfhouse scripts name journey, step and service; other scripts fall back to the scenario and the
# name tag. The tags are a grouping key, so the outer query reads them once per request. Two requests
# that share timestamp and tags (VUs starting together) fall into one group: it yields a row per
# http_reqs point, so no request is lost and every duration is kept.
_REQUESTS = """
INSERT INTO requests (run_id, batch, ts, tool, generator, journey, step, service, method, url, status, ok,
                      duration_ms, waiting_ms, connect_ms, bytes_sent, bytes_received, error, vu)
SELECT {run:String}, {batch:String}, ts, 'k6', {generator:String},
       if(tags['journey'] != '', tags['journey'], tags['scenario']) AS journey_,
       if(tags['step'] != '', tags['step'], tags['name']) AS step_,
       if(tags['service'] != '', tags['service'],
          transform(concat(journey_, '\\t', step_), {svc_keys:Array(String)}, {svc_values:Array(String)},
                    domain(tags['url']))),
       tags['method'], tags['url'], toUInt16OrZero(tags['status']),
       if(tags['expected_response'] != '', tags['expected_response'] = 'true',
          toUInt16OrZero(tags['status']) BETWEEN 200 AND 399),
       durations[n], waits[n], connects[n], 0, 0, tags['error'], tags['vu']
FROM (
    SELECT ts, ts_ns, tags, countIf(metric = 'http_reqs') AS reqs,
           groupArrayIf(value, metric = 'http_req_duration') AS durations,
           groupArrayIf(value, metric = 'http_req_waiting') AS waits,
           groupArrayIf(value, metric = 'http_req_connecting') AS connects
    FROM k6_points
    WHERE run_id = {run:String} AND batch = {batch:String}
      AND metric IN ('http_reqs', 'http_req_duration', 'http_req_waiting', 'http_req_connecting')
    GROUP BY ts, ts_ns, tags
    HAVING reqs > 0
)
ARRAY JOIN arrayEnumerate(range(reqs)) AS n
"""

# The line-by-line reasons, for the files whose staged rows do not account for every line.
_REASON = """
multiIf(NOT isValidJSON(line), 'not valid JSON (a truncated or garbled line)',
        JSONExtractString(line, 'type') NOT IN ('Point', 'Metric'), 'not a k6 Point or Metric line',
        JSONExtractString(line, 'type') = 'Point'
          AND parseDateTime64BestEffortOrNull(JSONExtractString(line, 'data', 'time'), 6, 'UTC') IS NULL,
        'a Point without a valid data.time',
        JSONExtractString(line, 'type') = 'Point'
          AND JSONType(line, 'data', 'value') NOT IN ('Int64', 'UInt64', 'Double'),
        'a Point whose data.value is not a number', '')
"""


@register
class K6Json:
    name: ClassVar[str] = "k6-json"
    tool: ClassVar[str] = "k6"
    line_mark: ClassVar[bytes] = b'{"type":"Metric"'  # how k6 starts a Metric line

    def sniff(self, head: bytes) -> bool:
        first = head.lstrip().split(b"\n", 1)[0]
        try:
            doc = json.loads(first)
        except ValueError:
            return False
        return isinstance(doc, dict) and doc.get("type") in ("Metric", "Point") and "data" in doc

    def marked(self, line: bytes) -> bool:
        """A Metric line that ClickHouse parses too (it skips such lines: they describe, not measure)."""
        try:
            doc = json.loads(line)
        except ValueError:
            return False
        return isinstance(doc, dict) and doc.get("type") == "Metric"

    def load(self, job: IngestJob, result: IngestResult) -> None:
        params = {
            "run": job.run_id,
            "batch": job.batch,
            "generator": job.generator,
            **service_map_params(job),
        }
        points = {k: params[k] for k in ("run", "batch", "generator")}
        settings = {**BOUNDED, **READ_FILE, **INSERT_SETTINGS, **PARSE_SETTINGS}
        try:
            with _complete_lines(job.path) as (complete, partial):
                result.points = job.backend.insert_from_file(
                    _POINTS, points, complete, "JSONEachRow", STRUCTURE, settings
                )
        except WarehouseError as exc:
            raise IngestError(f"{job.source or job.path}: ClickHouse could not read the file: {exc}") from None
        grouping = {**BOUNDED, **GROUP_SETTINGS}
        bounded = " SETTINGS " + ", ".join(f"{k} = {int(v)}" for k, v in grouping.items())
        job.backend.command(_REQUESTS + bounded, params)
        result.rows = int(job.backend.query("SELECT count() AS n FROM requests WHERE batch = {b:String}",
                                            {"b": job.batch})[0]["n"])
        # Every line is a Point kept or a Metric line (k6 starts those with line_mark), or else rejected.
        if job.marks < 0 or result.points + job.marks != job.lines:
            stage_lines(job, ["line"], "LineAsString", suffix="_lines")
            count_rejects(job, result, _REASON, "line != ''", from_sql=job.stage + "_lines")
        elif partial:  # the one line that never reached ClickHouse
            result.rejected += 1
            result.samples.append(Rejected(job.lines + 1, "the last line was cut short", partial[:120].decode(
                "utf-8", errors="replace")))


@contextlib.contextmanager
def _complete_lines(path: Path) -> Iterator[tuple[Path, bytes]]:
    """The file, or when its last line was cut short a copy without it (ClickHouse's JSON reader
    can fail the whole read on a line that ends mid-value), and that partial line."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        tail, pos = b"", size
        while pos > 0 and b"\n" not in tail:
            step = min(1 << 16, pos)
            pos -= step
            fh.seek(pos)
            tail = fh.read(step) + tail
    if tail.endswith(b"\n") or not tail:
        yield path, b""
        return
    keep = pos + tail.rfind(b"\n") + 1
    with tempfile.TemporaryDirectory(prefix="perfhouse-k6-") as tmp:
        copy = Path(tmp) / path.name
        with open(path, "rb") as src, open(copy, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.truncate(copy, keep)
        yield copy, tail[tail.rfind(b"\n") + 1 :]
