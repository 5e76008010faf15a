"""k6 `--out csv` (plain or gzip): every metric point kept, and one row per HTTP request derived."""

from __future__ import annotations

from typing import ClassVar

from warehouse.errors import IngestError
from warehouse.ingest.bounds import ANY_PARTITIONS_SQL, TIME_REASON, k6_value_ok, time_ok
from warehouse.ingest.files import read_head
from warehouse.ingest.formats import IngestJob, IngestResult, register
from warehouse.ingest.sql import count_rejects, service_map_params, stage_lines, trace_id_sql

HEADER = b"metric_name,timestamp,metric_value,"
# Fixed columns of k6 1.x's CSV output; any other tag lands in extra_tags as k=v&k=v.
TAG_COLUMNS = ["check", "error", "error_code", "expected_response", "group", "method", "name", "proto",
               "scenario", "service", "status", "subproto", "tls_version", "url"]

# The timestamp has k6's CSV time format: unix seconds (default), unix_milli, or RFC 3339.
_TS = ("multiIf(match(timestamp, '^[0-9]{1,10}$'), toDateTime64(toInt64OrZero(timestamp), 6, 'UTC'), "
       "match(timestamp, '^[0-9]{13}$'), toDateTime64(fromUnixTimestamp64Milli(toInt64OrZero(timestamp), 'UTC'), 6, "
       "'UTC'), parseDateTime64BestEffortOrNull(timestamp, 6, 'UTC'))")

# k6 writes the points of one request one after the other, http_reqs first: a request is the run of lines from
# one http_reqs line to the next. Its checks are the `checks` lines its VU wrote after it in the same iteration:
# each goes to the latest http_reqs line before it with the same journey, step tag, VU and iteration (vu and
# iter are in the metadata column when --system-tags asks for them).
_KEYS = ("if(tags['journey'] != '', tags['journey'], tags['scenario']) AS journey_, "
         "if(meta['vu'] != '', meta['vu'], tags['vu']) AS vu_, if(meta['iter'] != '', meta['iter'], tags['iter']) AS iter_")
_TRACE = trace_id_sql("meta['trace_id']")  # a generated script with trace context keeps it as metadata
_REQUESTS = f"""
INSERT INTO {{requests}} (run_id, batch, ts, tool, generator, journey, step, service, method, url, status, ok, checks,
                      failed_checks, duration_ms, waiting_ms, connect_ms, bytes_sent, bytes_received, error,
                      failed_check, vu, trace_id)
SELECT {{run:String}}, {{batch:String}}, ts_, 'k6', {{generator:String}}, journey_, step_,
       if(service_ != '', service_, transform(concat(journey_, '\\t', step_), {{svc_keys:Array(String)}},
                                             {{svc_values:Array(String)}}, domain(url_))),
       method_, if(url_ = name_ AND NOT match(url_, '^[A-Za-z][A-Za-z0-9+.-]*://'), '', url_), toUInt16OrZero(status_),
       if(expected_ != '', expected_ = 'true', toUInt16OrZero(status_) BETWEEN 200 AND 399), checks_, failed_,
       duration_, waiting_, connect_, 0, 0, error_, failed_check_, vu_, trace_
FROM (
    SELECT anyIf(lineno, metric = 'http_reqs') AS line_, min(ts) AS ts_, any(journey_) AS journey_,
           if(any(tags['step']) != '', any(tags['step']), any(tags['name'])) AS step_, any(tags['service']) AS service_,
           any(tags['method']) AS method_, any(tags['url']) AS url_, any(tags['name']) AS name_,
           any(tags['status']) AS status_, any(tags['expected_response']) AS expected_, any(tags['error']) AS error_,
           any(vu_) AS vu_, anyIf({_TRACE}, metric = 'http_reqs') AS trace_,
           sumIf(value, metric = 'http_req_duration') AS duration_,
           sumIf(value, metric = 'http_req_waiting') AS waiting_, sumIf(value, metric = 'http_req_connecting') AS connect_
    FROM (
        SELECT *, {_KEYS}, sum(metric = 'http_reqs') OVER (ORDER BY lineno ROWS UNBOUNDED PRECEDING) AS request
        FROM ({{points}}) WHERE reason = '' AND startsWith(metric, 'http_req')
    )
    WHERE request > 0
    GROUP BY request
    HAVING countIf(metric = 'http_reqs') = 1
) AS r
LEFT JOIN (
    SELECT request_line AS line_, count() AS checks_, countIf(value = 0) AS failed_,
           argMinIf(tags['check'], lineno, value = 0) AS failed_check_
    FROM (
        SELECT *, max(if(metric = 'http_reqs', lineno, 0))
                      OVER (PARTITION BY journey_, tags['step'], vu_, iter_ ORDER BY lineno ROWS UNBOUNDED PRECEDING)
                      AS request_line
        FROM (SELECT *, {_KEYS} FROM ({{points}}) WHERE reason = '' AND metric IN ('http_reqs', 'checks'))
    )
    WHERE metric = 'checks' AND request_line > 0
    GROUP BY request_line
) AS c USING (line_)
"""

_REASON = (f"multiIf(more_ IS NOT NULL, 'more fields than the header names', "
           f"metric_name = '' OR metric_name IS NULL, 'no metric name', {_TS} IS NULL, "
           "'timestamp is not a time', toFloat64OrNull(metric_value) IS NULL, 'metric_value is not a number', "
           f"NOT ifNull({time_ok(_TS)}, 0), 'timestamp {TIME_REASON}', "
           f"NOT {k6_value_ok('metric_name', 'toFloat64OrZero(metric_value)')}, "
           "concat('metric_value ', metric_value, ' is impossible for ', metric_name, "
           "' (not finite, or a duration outside 0 to a day)'), '')")


@register
class K6Csv:
    name: ClassVar[str] = "k6-csv"
    tool: ClassVar[str] = "k6"

    def sniff(self, head: bytes) -> bool:
        return head.startswith(HEADER)

    def load(self, job: IngestJob, result: IngestResult) -> None:
        header = read_head(job.path).split(b"\n", 1)[0].decode(errors="replace").rstrip("\r").split(",")
        if header[:3] != ["metric_name", "timestamp", "metric_value"]:
            raise IngestError(f"{job.source or job.path}:1: not a k6 CSV header: {','.join(header)[:120]!r}")
        settings = {"input_format_csv_skip_first_lines": 1, "input_format_csv_allow_variable_number_of_columns": 1}
        try:
            # one column more than the header, NULL unless a line has more fields than the header names
            stage_lines(job, [*header, "more_"], "CSV", settings, types=["String"] * len(header) + ["Nullable(String)"])
            source = job.stage
        except IngestError:  # a quote the CSV reader cannot get past: every line staged and split in SQL instead
            source = _by_line(job, header)
        # k6 ends every line with a line break: a last line without one was cut short (a run stopped mid-write)
        with open(job.path, "rb") as fh:
            fh.seek(-1, 2)
            cut_short = fh.read(1) != b"\n"
        reason = _REASON
        if cut_short:
            last = int(job.backend.query(f"SELECT count() AS n FROM {source}")[0]["n"]) + 1
            reason = f"if(lineno = {last}, 'the last line was cut short', {_REASON})"
        tags = [c for c in header[3:] if c not in ("extra_tags", "metadata")]
        tag_map = (
            "mapConcat(mapFilter((k, v) -> v != '', map(" + ", ".join(f"'{c}', {c}" for c in tags) + ")), "
            + ("extractKeyValuePairs(extra_tags, '=', '&')" if "extra_tags" in header else "map()") + ")"
        )
        meta_map = "extractKeyValuePairs(metadata, '=', '&')" if "metadata" in header else "map()"
        points = (
            f"SELECT rowNumberInAllBlocks() + 2 AS lineno, metric_name AS metric, {_TS} AS ts, "
            f"toFloat64OrZero(metric_value) AS value, {tag_map} AS tags, {meta_map} AS meta, ({reason}) AS reason "
            f"FROM {source} SETTINGS max_threads = 1"
        )
        params = {"run": job.run_id, "batch": job.batch, "generator": job.generator, **service_map_params(job)}
        job.backend.command(
            f"INSERT INTO {job.table('k6_points')} (run_id, batch, ts, metric, value, tags, metadata, generator) "
            f"SELECT {{run:String}}, {{batch:String}}, ts, metric, value, toJSONString(mapSort(tags)), "
            f"if(empty(meta), '', toJSONString(mapSort(meta))), {{generator:String}} "
            f"FROM ({points}) WHERE reason = ''{ANY_PARTITIONS_SQL}",
            params,
        )
        job.backend.command(_REQUESTS.replace("{requests}", job.table("requests")).replace("{points}", points)
                            + ANY_PARTITIONS_SQL, params)
        counts = job.backend.query(
            f"SELECT (SELECT count() FROM {job.table('k6_points')}) AS points, "
            f"(SELECT count() FROM {job.table('requests')}) AS rows"
        )[0]
        result.points, result.rows = int(counts["points"]), int(counts["rows"])
        count_rejects(job, result, reason, text_sql="concat(metric_name, ',', timestamp, ',', metric_value)",
                      first_line=2, from_sql=source)


# A CSV field: quoted (doubled quotes inside) or up to the next comma.
_SPLIT = ("arrayMap(x -> if(startsWith(x, '\"') AND endsWith(x, '\"') AND length(x) > 1, "
          "replaceAll(substring(x, 2, length(x) - 2), '\"\"', '\"'), x), "
          "extractAll(concat(',', line), ',(\"(?:[^\"]|\"\")*\"|[^,]*)'))")


def _by_line(job: IngestJob, header: list[str]) -> str:
    """Stage every line of the file as it is and split it into the header's columns in SQL (a missing field is
    empty); SQL giving the same columns as the CSV staging table, without the header line."""
    stage_lines(job, ["line"], "LineAsString")
    cells = ", ".join([*(f"arrayElement(fields_, {i + 1}) AS {name}" for i, name in enumerate(header)),
                       f"if(length(fields_) > {len(header)}, 'more', NULL) AS more_"])
    return (f"(SELECT {cells} FROM (SELECT {_SPLIT} AS fields_ FROM {job.stage} "
            f"WHERE rowNumberInAllBlocks() > 0 SETTINGS max_threads = 1))")
