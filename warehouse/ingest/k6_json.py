"""k6 `--out json` (plain or gzip): every metric point kept, and one row per HTTP request derived."""

from __future__ import annotations

import json
from typing import ClassVar

from warehouse.ingest import IngestJob, IngestResult, count_rejects, register, service_map_params, stage_lines

_POINT = "Tuple(metric String, data Tuple(time String, value Float64, tags Map(String, String)))"

# k6 writes the metrics of one HTTP request (http_reqs, http_req_duration, ..., http_req_failed) as
# separate points with the same nanosecond timestamp and the same tags: grouping on both rebuilds
# the request. Tags written by perfhouse scripts name journey, step and service; other scripts fall
# back to the scenario and the name tag.
_REQUESTS = """
INSERT INTO requests (run_id, batch, ts, tool, generator, journey, step, service, method, url, status, ok,
                      duration_ms, waiting_ms, connect_ms, bytes_sent, bytes_received, error, vu)
SELECT {run:String}, {batch:String}, min(ts), 'k6', {generator:String},
       if(any(tags['journey']) != '', any(tags['journey']), any(tags['scenario'])) AS journey_,
       if(any(tags['step']) != '', any(tags['step']), any(tags['name'])) AS step_,
       if(any(tags['service']) != '', any(tags['service']),
          transform(concat(journey_, '\\t', step_), {svc_keys:Array(String)}, {svc_values:Array(String)},
                    domain(any(tags['url'])))),
       any(tags['method']), any(tags['url']), toUInt16OrZero(any(tags['status'])),
       if(any(tags['expected_response']) != '', any(tags['expected_response']) = 'true',
          toUInt16OrZero(any(tags['status'])) BETWEEN 200 AND 399),
       sumIf(value, metric = 'http_req_duration'), sumIf(value, metric = 'http_req_waiting'),
       sumIf(value, metric = 'http_req_connecting'), 0, 0, any(tags['error']), any(tags['vu'])
FROM (
    SELECT p.1 AS metric, p.2.2 AS value, p.2.3 AS tags, p.2.1 AS time_raw,
           JSONExtractRaw(line, 'data', 'tags') AS tags_raw,
           parseDateTime64BestEffortOrNull(p.2.1, 6, 'UTC') AS ts
    FROM (SELECT line, JSONExtract(line, '{point}') AS p FROM {stage}
          WHERE JSONExtractString(line, 'type') = 'Point' AND JSONExtractString(line, 'metric') LIKE 'http\\\\_req%')
    WHERE ts IS NOT NULL
)
GROUP BY time_raw, tags_raw
HAVING countIf(metric = 'http_reqs') = 1
"""

_POINTS = """
INSERT INTO k6_points (run_id, batch, ts, metric, value, tags, generator)
SELECT {run:String}, {batch:String}, ts, p.1, p.2.2, p.2.3, {generator:String}
FROM (SELECT JSONExtract(line, '{point}') AS p, parseDateTime64BestEffortOrNull(p.2.1, 6, 'UTC') AS ts
      FROM {stage} WHERE JSONExtractString(line, 'type') = 'Point')
WHERE ts IS NOT NULL
"""

_REASON = """
multiIf(NOT isValidJSON(line), 'not valid JSON (a truncated or garbled line)',
        JSONExtractString(line, 'type') NOT IN ('Point', 'Metric'), 'not a k6 Point or Metric line',
        JSONExtractString(line, 'type') = 'Point'
          AND parseDateTime64BestEffortOrNull(JSONExtractString(line, 'data', 'time'), 6, 'UTC') IS NULL,
        'a Point without a valid data.time', '')
"""


@register
class K6Json:
    name: ClassVar[str] = "k6-json"
    tool: ClassVar[str] = "k6"

    def sniff(self, head: bytes) -> bool:
        first = head.lstrip().split(b"\n", 1)[0]
        try:
            doc = json.loads(first)
        except ValueError:
            return False
        return isinstance(doc, dict) and doc.get("type") in ("Metric", "Point") and "data" in doc

    def load(self, job: IngestJob, result: IngestResult) -> None:
        stage_lines(job, ["line"], "LineAsString")
        params = {
            "run": job.run_id,
            "batch": job.batch,
            "generator": job.generator,
            **service_map_params(job),
        }
        job.backend.command(_POINTS.replace("{point}", _POINT).replace("{stage}", job.stage), params)
        job.backend.command(_REQUESTS.replace("{point}", _POINT).replace("{stage}", job.stage), params)
        counts = job.backend.query(
            "SELECT (SELECT count() FROM k6_points WHERE batch = {b:String}) AS points, "
            "(SELECT count() FROM requests WHERE batch = {b:String}) AS rows",
            {"b": job.batch},
        )[0]
        result.points, result.rows = int(counts["points"]), int(counts["rows"])
        count_rejects(job, result, _REASON, "line != ''")
