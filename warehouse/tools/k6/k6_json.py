"""k6 `--out json` (plain or gzip): every metric point kept, and one row per HTTP request derived.

ClickHouse reads the file's lines (LineAsString, parallel parsing) and extracts each line's fields
once with JSONExtract (simdjson: about twice as fast as its JSONEachRow reader for k6's lines), straight
into the batch's k6_points (`job.table`): there is no copy of the lines. data.time is parsed in the
SELECT (ts keeps the microseconds, ts_ns the nanoseconds past them); data.tags is kept as the tag set's
JSON text, as a LowCardinality string: k6 repeats a few tag sets, so storing and grouping by them is
cheap. The requests are then SQL over the batch's points of the four metrics they need, each with the
`checks` points that its VU wrote about it.

The first pass is strict: a line that is not JSON, or is neither a Point with a valid time and a
numeric value nor a Metric line, fails the statement. A clean file is so read once, with nothing to
count or check after. When the strict pass fails, the rows it wrote are truncated away (the batch's
table holds nothing else) and the same statement runs without the check, keeping every valid point;
a line-by-line pass then explains the rejected lines with the same extraction, so what is kept and
what is rejected always add up.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from warehouse.engine.backends import settings_sql
from warehouse.engine.owners import scratch_dir
from warehouse.errors import IngestError, WarehouseError
from warehouse.ingest.bounds import ANY_PARTITIONS, TIME_REASON, k6_value_ok, time_ok
from warehouse.ingest.files import count_lines
from warehouse.ingest.formats import IngestJob, IngestResult, NeedsStaging, Rejected, register
from warehouse.ingest.sql import (
    BOUNDED,
    READ_FILE,
    count_rejects,
    service_map_params,
    stage_lines,
    trace_id_sql,
)

# A k6 line as ClickHouse reads it (LineAsString), and its fields as JSONExtract takes them (a Metric
# line has no time, value or tags; an object read as String is its JSON text; a value that is not a
# number is NULL).
STRUCTURE = "line String"
_LINE = ("Tuple(type String, metric String, data Tuple(time String, value Nullable(Float64), tags String, "
         "metadata String))")
# Parallel parsing (one thread cuts the file into segments, the others parse them) is most of the speed
# on 2 cores; small segments keep the blocks it holds at once, and so the memory, small (2 MB segments:
# 173 MB peak for a 2 GB file, against 302 MB with 4 MB segments, for the same speed). Reading a line
# as a string is little work: the work is JSONExtract and the time's parsing, done where the rows are
# inserted, so two insert threads share it (one left a core idle: measured on 440 MB, 1.5M lines, on a loaded
# machine: the same CPU time, two thirds of the wall time, 40 MB more at the peak).
INSERT_SETTINGS = {
    "input_format_parallel_parsing": 1,
    "min_chunk_bytes_for_parallel_parsing": 2 << 20,
    "max_insert_threads": 2,
}

# Grouping points into requests keeps one state per request, so the batch's requests are derived in
# slices of about this many, cut at timestamps (all points of a request share one): the memory stays
# that of one slice whatever the file's size, and each slice reads its range of the sorting key.
REQUESTS_PER_SLICE = 50_000
# How long after a request's end its checks may still come (the script's work between the response and check()),
# where the iterations do not say it: in a batch without iteration_duration points or vu and iter, and from the
# first request of an iteration that did not end in the batch (cut short by the end of the test or a ramp-down, or
# going on in the next chunk of a live run).
CHECKS_MARGIN = datetime.timedelta(minutes=5)
# An iteration's points (its requests and checks) lie between its start and its iteration_duration point, which k6
# writes at its end with its duration: a check follows its request by less than the longest iteration. This much
# more allows for the rounding of the times and durations.
ITERATION_SLACK = datetime.timedelta(seconds=1)

# k6 writes RFC 3339 times with nanoseconds, in UTC or with an offset: best effort reads them all.
_FIELDS = f"""
SELECT line, j, parseDateTime64BestEffortOrNull(j.data.time, 9, 'UTC') AS time
FROM (SELECT line, JSONExtract(line, '{_LINE}') AS j FROM {{input}})
"""
_POINTS = f"""
INSERT INTO {{points}} (run_id, batch, ts, ts_ns, metric, value, tags, metadata, generator)
SELECT {{run:String}}, {{batch:String}}, toDateTime64(time, 6, 'UTC'),
       toUInt16(toUnixTimestamp64Nano(time) % 1000), j.metric, assumeNotNull(j.data.value), j.data.tags,
       j.data.metadata, {{generator:String}}
FROM ({_FIELDS})
WHERE {{strict}} j.type = 'Point' AND time IS NOT NULL AND j.data.value IS NOT NULL AND {{possible}}
"""
# A point's value possible for its metric (a finite number; a duration within a day) and its time within range.
_POSSIBLE = f"ifNull({k6_value_ok('j.metric', 'j.data.value')} AND {time_ok('time')}, 0)"
_POINTS = _POINTS.replace("{possible}", _POSSIBLE)
_STRICT = (f"throwIf(j.type NOT IN ('Point', 'Metric') OR (j.type = 'Point' AND (time IS NULL OR j.data.value IS NULL "
           f"OR NOT {_POSSIBLE})), 'a line that is neither a k6 Point with a time and a possible value nor a Metric "
           f"line') = 0 AND")

_TAGS = ("Tuple(journey String, step String, service String, scenario String, name String, method String, "
         "url String, status String, expected_response String, error String, vu String, iter String, "
         "check String, perfhouse_generator String)")
# vu and iter: k6 writes them as metadata when --system-tags (or the script's systemTags) asks for them, as tags
# in versions before 0.41 or when a script sets them itself. The metadata object's keys come in any order, so
# its values, not its text, tell a request's points apart.
_VU_ITER = """
if(JSONExtractString(metadata, 'vu') != '', JSONExtractString(metadata, 'vu'), JSONExtractString(tags, 'vu')) AS vu_,
if(JSONExtractString(metadata, 'iter') != '', JSONExtractString(metadata, 'iter'), JSONExtractString(tags, 'iter'))
    AS iter_
"""
# A generated script with trace context keeps each request's W3C trace id as k6 metadata.
_TRACE = trace_id_sql("JSONExtractString(metadata, 'trace_id')") + " AS trace_"
_KEYS = f"""
JSONExtract(tags, '{_TAGS}') AS t, if(t.journey != '', t.journey, t.scenario) AS journey_, t.step AS step_tag_,
toUnixTimestamp64Nano(ts) + ts_ns AS tn_
"""
# The checks of a request are the `checks` points its VU wrote in the same iteration after the request began
# and before its next one: each check point goes to the latest request before it with the same journey, step
# tag (generated scripts tag both; without one on either side, any step), VU and iteration (ASOF JOIN). Without
# vu and iter (k6's InfluxDB output drops metadata) a check goes to the journey's latest request of its step.
# The checks of a slice's requests may come after the slice's end, so the points up to `reach` (past the slice
# by the longest request and a margin) are read; those whose request lies past the slice are left to the next.
_CHECKS = f"""
SELECT q.journey_ AS journey_, q.step_tag_ AS step_tag_, q.vu_ AS vu_, q.iter_ AS iter_, q.tn_ AS tn_,
       count() AS checks_,
       countIf(c.value = 0) AS failed_, argMinIf(c.check_, c.tn_, c.value = 0) AS failed_check_
FROM (
    SELECT value, t.check AS check_, {_KEYS}, {_VU_ITER} FROM {{points}}
    WHERE run_id = {{run:String}} AND batch = {{batch:String}} AND metric = 'checks'
      AND ts >= {{since:DateTime64(6, 'UTC')}} AND ts < {{reach:DateTime64(6, 'UTC')}}
) AS c
ASOF JOIN (
    SELECT ts, {_KEYS}, {_VU_ITER} FROM {{points}}
    WHERE run_id = {{run:String}} AND batch = {{batch:String}} AND metric = 'http_reqs'
      AND ts >= {{since:DateTime64(6, 'UTC')}} AND ts < {{reach:DateTime64(6, 'UTC')}}
) AS q ON c.journey_ = q.journey_ AND c.step_tag_ = q.step_tag_ AND c.vu_ = q.vu_ AND c.iter_ = q.iter_
            AND c.tn_ >= q.tn_
WHERE q.ts < {{until:DateTime64(6, 'UTC')}}
GROUP BY journey_, step_tag_, vu_, iter_, tn_
"""
# k6 replaces a request's url tag by its name tag when the request has one (generated scripts name every
# request): a url that only repeats the name is no URL and is left empty.
_REQUESTS = f"""
INSERT INTO {{requests}} (run_id, batch, ts, tool, generator, journey, step, service, method, url, status, ok,
                      checks, failed_checks, duration_ms, waiting_ms, connect_ms, bytes_sent, bytes_received,
                      error, failed_check, vu, trace_id)
SELECT {{run:String}}, {{batch:String}}, ts, 'k6',
       if(t.perfhouse_generator != '', t.perfhouse_generator, {{generator:String}}),
       journey_, if(t.step != '', t.step, t.name) AS step_,
       if(t.service != '', t.service,
          transform(concat(journey_, '\\t', step_), {{svc_keys:Array(String)}}, {{svc_values:Array(String)}},
                    domain(t.url))),
       t.method, if(t.url = t.name AND NOT match(t.url, '^[A-Za-z][A-Za-z0-9+.-]*://'), '', t.url),
       toUInt16OrZero(t.status),
       if(t.expected_response != '', t.expected_response = 'true', toUInt16OrZero(t.status) BETWEEN 200 AND 399),
       if(n = 1, checks_, 0), if(n = 1, failed_, 0),
       durations[n], waits[n], connects[n], 0, 0, t.error, if(n = 1, failed_check_, ''), vu_, traces[n]
FROM (
    SELECT *{{unchecked}} FROM (
        SELECT ts, ts_ns, tags, vu_, iter_, {_KEYS}, countIf(metric = 'http_reqs') AS reqs,
               groupArrayIf(value, metric = 'http_req_duration') AS durations,
               groupArrayIf(value, metric = 'http_req_waiting') AS waits,
               groupArrayIf(value, metric = 'http_req_connecting') AS connects,
               groupArrayIf(trace_, metric = 'http_reqs') AS traces
        FROM (
            SELECT ts, ts_ns, tags, metric, value, {_VU_ITER}, {_TRACE} FROM {{points}}
            WHERE run_id = {{run:String}} AND batch = {{batch:String}}
              AND metric IN ('http_reqs', 'http_req_duration', 'http_req_waiting', 'http_req_connecting')
              AND ts >= {{since:DateTime64(6, 'UTC')}} AND ts < {{until:DateTime64(6, 'UTC')}}
        )
        GROUP BY ts, ts_ns, tags, vu_, iter_
        HAVING reqs > 0
    ) AS r{{checked}}
)
ARRAY JOIN arrayEnumerate(range(reqs)) AS n
"""
# The first request of an iteration that has no iteration_duration point in the batch (or no vu and iter to tell
# it by), and the longest iteration: whose checks the iterations bound (ITERATION_SLACK) and whose not.
_ITERATIONS = f"""
SELECT toString(minIf(first_, open_)) AS first_open, countIf(open_) AS open, max(longest_) AS longest_iteration_ms
FROM (
    SELECT vu_, iter_, generator_, minIf(ts, metric = 'http_reqs') AS first_,
           maxIf(value, metric = 'iteration_duration') AS longest_,
           countIf(metric = 'http_reqs') > 0 AND (countIf(metric = 'iteration_duration') = 0 OR vu_ = '' OR iter_ = '')
               AS open_
    FROM (SELECT ts, metric, value, JSONExtractString(tags, 'perfhouse_generator') AS generator_, {_VU_ITER}
          FROM {{points}}
          WHERE run_id = {{run:String}} AND batch = {{batch:String}} AND metric IN ('http_reqs', 'iteration_duration'))
    GROUP BY vu_, iter_, generator_
)
"""
# {checked}: each request's checks joined to it, in a batch that has checks points; {unchecked}: none, in one that
# has none (the same figures as the join gives a request without checks, without reading the batch's http_reqs
# points again for it: the join took a third of the time of deriving the requests of a k6 run without checks).
_CHECKED = f"\n    LEFT JOIN ({_CHECKS}) AS c USING (journey_, step_tag_, vu_, iter_, tn_)"
_UNCHECKED = ", toUInt64(0) AS checks_, toUInt64(0) AS failed_, '' AS failed_check_"

# Why a line was not kept: the same extraction and conditions as _POINTS, line by line.
_REASON = """
multiIf(j.type = '' AND NOT isValidJSON(line), 'not valid JSON (a truncated or garbled line)',
        j.type NOT IN ('Point', 'Metric'), 'not a k6 Point or Metric line',
        j.type = 'Point' AND time IS NULL, 'a Point without a valid data.time',
        j.type = 'Point' AND j.data.value IS NULL, 'a Point whose data.value is not a number',
        j.type = 'Point' AND NOT ifNull({time_ok}, 0), 'a Point whose data.time is {time_reason}',
        j.type = 'Point' AND NOT ifNull({value_ok}, 0),
        concat('a Point whose data.value (', toString(j.data.value), ') is impossible for ', j.metric,
               ' (not finite, or a duration outside 0 to a day)'), '')
""".format(time_ok=time_ok("time"), time_reason=TIME_REASON, value_ok=k6_value_ok("j.metric", "j.data.value"))


@register
class K6Json:
    name: ClassVar[str] = "k6-json"
    tool: ClassVar[str] = "k6"
    direct: ClassVar[bool] = True  # a small file's points and requests go straight into the warehouse tables

    def sniff(self, head: bytes) -> bool:
        first = head.lstrip().split(b"\n", 1)[0]
        try:
            doc = json.loads(first)
        except ValueError:
            return False
        return isinstance(doc, dict) and doc.get("type") in ("Metric", "Point") and "data" in doc

    def load(self, job: IngestJob, result: IngestResult) -> None:
        params = {
            "run": job.run_id,
            "batch": job.batch,
            "generator": job.generator,
            **service_map_params(job),
        }
        points = {k: params[k] for k in ("run", "batch", "generator")}
        settings = {**BOUNDED, **READ_FILE, **INSERT_SETTINGS, **ANY_PARTITIONS}
        insert = _POINTS.replace("{points}", job.table("k6_points"))
        with _complete_lines(job.path) as (complete, partial):
            try:
                result.points = job.backend.insert_from_file(
                    insert.replace("{strict}", _STRICT), points, complete, "LineAsString", STRUCTURE, settings
                )
                clean = True
            except WarehouseError:
                if job.direct:  # rejected lines are counted from staged lines
                    raise NeedsStaging from None
                clean = False
                job.restart("k6_points")
            if not clean:
                try:
                    result.points = job.backend.insert_from_file(
                        insert.replace("{strict}", ""), points, complete, "LineAsString", STRUCTURE, settings
                    )
                except WarehouseError as exc:
                    raise IngestError(
                        f"{job.source or job.path}: ClickHouse could not read the file: {exc}") from None
            complete_lines = count_lines(complete) if partial else 0
        derive_requests(job, params)
        result.rows = int(job.backend.query(f"SELECT count() AS n FROM {job.table('requests')} WHERE batch = {{b:String}}",
                                            {"b": job.batch})[0]["n"])
        if not clean:
            stage_lines(job, ["line"], "LineAsString", suffix="_lines")
            count_rejects(job, result, _REASON, "line != ''",
                          from_sql="(" + _FIELDS.replace("{input}", job.stage + "_lines") + ")")
        elif partial:  # the one line that never reached ClickHouse
            result.rejected += 1
            result.samples.append(Rejected(complete_lines + 1, "the last line was cut short", partial[:120].decode(
                "utf-8", errors="replace")))


def derive_requests(job: IngestJob, params: dict[str, object]) -> None:
    """Insert the batch's requests from its k6_points, a slice of REQUESTS_PER_SLICE at a time."""
    levels = ", ".join(f"{i / 64:g}" for i in range(1, 64))  # the level parameters must be literals
    found = job.backend.query(
        f"SELECT countIf(metric = 'http_reqs') AS n, countIf(metric = 'checks') AS checks, "
        f"arrayMap(t -> toString(t), quantilesIf({levels})(ts, metric = 'http_reqs')) AS cuts, "
        f"maxIf(value, metric = 'http_req_duration') AS longest_ms "
        f"FROM {job.table('k6_points')} WHERE run_id = {{run:String}} AND batch = {{batch:String}} "
        f"AND metric IN ('http_reqs', 'http_req_duration', 'checks')",
        {"run": job.run_id, "batch": job.batch},
    )[0]
    if not int(found["n"]):
        return
    slices = min(64, -(-int(found["n"]) // REQUESTS_PER_SLICE))
    cuts = sorted({found["cuts"][round(i * 64 / slices) - 1] for i in range(1, slices)})
    edges = [_FIRST, *cuts, _LAST]
    settings = settings_sql({**BOUNDED, **ANY_PARTITIONS})
    checked = int(found["checks"]) > 0
    # How far past a slice its requests' checks may lie: the longest iteration, up to the first request of an
    # iteration that did not end in the batch; from there, the request's duration and CHECKS_MARGIN. With the
    # margin everywhere, a slice of a dense run read minutes of points past its own seconds: a 1 GB k6 JSON of 400
    # VUs over 70 s (259,200 requests, each checked; 6 slices) took 4.6-4.7 s to ingest, and takes 4.0-4.1 s.
    margin = datetime.timedelta(milliseconds=float(found["longest_ms"] or 0)) + CHECKS_MARGIN
    bounded, first_open = margin, _LAST
    if checked:
        iterations = job.backend.query(_ITERATIONS.replace("{points}", job.table("k6_points")) + settings,
                                       {"run": job.run_id, "batch": job.batch})[0]
        bounded = datetime.timedelta(milliseconds=float(iterations["longest_iteration_ms"] or 0)) + ITERATION_SLACK
        first_open = str(iterations["first_open"]) if int(iterations["open"]) else _LAST
    sql = (_REQUESTS.replace("{checked}", _CHECKED if checked else "").replace("{unchecked}", "" if checked else _UNCHECKED)
           .replace("{requests}", job.table("requests")).replace("{points}", job.table("k6_points")))
    for since, until in itertools.pairwise(edges):
        reach = bounded if _before(until, first_open) else margin
        job.backend.command(sql + settings, {**params, "since": since, "until": until, "reach": _later(until, reach)})


_FIRST, _LAST = "1900-01-01 00:00:00", "2299-12-31 23:59:59"


def _before(edge: str, moment: str) -> bool:
    """Whether a slice ending at `edge` (exclusive) ends at or before `moment`, both ClickHouse's text of a
    DateTime64 (or the first and last edges)."""
    return datetime.datetime.fromisoformat(edge) <= datetime.datetime.fromisoformat(moment)


def _later(edge: str, by: datetime.timedelta) -> str:
    """A slice edge (ClickHouse's text of a DateTime64) moved later, at most to the last edge."""
    if edge == _LAST:
        return edge
    moved = datetime.datetime.fromisoformat(edge) + by
    return _LAST if moved.year >= 2299 else moved.isoformat(sep=" ")


@contextlib.contextmanager
def _complete_lines(path: Path) -> Iterator[tuple[Path, bytes]]:
    """The file, or when its last line was cut short a copy without it, and that partial line: a
    cut-short last line (a run stopped mid-write) so keeps the one strict pass, and is named for what it is."""
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
    with scratch_dir("k6") as tmp:
        copy = Path(tmp) / path.name
        with open(path, "rb") as src, open(copy, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.truncate(copy, keep)
        yield copy, tail[tail.rfind(b"\n") + 1 :]
