"""Locust requests as JSON lines (what perfhouse's generated locustfiles write): one line, one request.

ClickHouse reads the file as lines and extracts each field with JSONExtract; a line that is not a JSON object
with a time and a duration (a truncated last line, a garbled one) is counted and explained, the rest kept.
"""

from __future__ import annotations

import json
from typing import ClassVar

from warehouse.ingest.bounds import (
    ANY_PARTITIONS_SQL,
    DURATION_REASON,
    NS_FROM,
    NS_UNTIL,
    TIME_REASON,
    duration_ok,
)
from warehouse.ingest.formats import IngestJob, IngestResult, register
from warehouse.ingest.sql import count_rejects, service_map_params, stage_lines, step_map_params

# The fields of a line, as ClickHouse extracts them (a missing field is its type's default)
_FIELDS = """
    SELECT rowNumberInAllBlocks() + 1 AS lineno, line,
           JSONExtract(line, 'ts', 'Nullable(Float64)') AS ts_s,
           JSONExtract(line, 'duration_ms', 'Nullable(Float64)') AS duration,
           JSONExtractString(line, 'journey') AS journey, JSONExtractString(line, 'step') AS step,
           JSONExtractString(line, 'service') AS service, JSONExtractString(line, 'method') AS method,
           JSONExtractString(line, 'url') AS url, JSONExtractUInt(line, 'status') AS status,
           JSONExtractBool(line, 'ok') AS ok, JSONExtractUInt(line, 'bytes_received') AS bytes_received,
           JSONExtractString(line, 'error') AS error, JSONExtractString(line, 'vu') AS vu,
           JSONExtract(line, 'checks_failed', 'Array(String)') AS checks_failed
    FROM {stage}
"""

_REASON = """
multiIf(NOT isValidJSON(line), 'not valid JSON (a truncated or garbled line)',
        ts_s IS NULL, 'no ts (seconds since the epoch)',
        duration IS NULL, 'no duration_ms',
        NOT ifNull(ts_s >= {ts_from} AND ts_s < {ts_until}, 0), 'ts {time_reason}',
        NOT ifNull({duration_ok}, 0), 'duration_ms {duration_reason}', '')
""".format(ts_from=NS_FROM // 10**9, ts_until=NS_UNTIL // 10**9, time_reason=TIME_REASON,
           duration_ok=duration_ok("duration"), duration_reason=DURATION_REASON)


@register
class LocustJsonLines:
    name: ClassVar[str] = "locust-jsonl"
    tool: ClassVar[str] = "locust"

    def sniff(self, head: bytes) -> bool:
        first = head.lstrip().split(b"\n", 1)[0]
        try:
            doc = json.loads(first)
        except ValueError:
            return False
        return isinstance(doc, dict) and doc.get("tool") == self.tool and "duration_ms" in doc

    def load(self, job: IngestJob, result: IngestResult) -> None:
        stage_lines(job, ["line"], "LineAsString")
        fields = _FIELDS.replace("{stage}", job.stage)
        params = {"run": job.run_id, "batch": job.batch, "generator": job.generator, **service_map_params(job),
                  **step_map_params(job)}
        job.backend.command(
            f"""
            INSERT INTO {job.table("requests")} (run_id, batch, ts, tool, generator, journey, step, service,
                                  method, url, status, ok, checks, failed_checks, duration_ms, waiting_ms,
                                  connect_ms, bytes_sent, bytes_received, error, failed_check, vu)
            SELECT {{run:String}}, {{batch:String}}, toDateTime64(assumeNotNull(ts_s), 6, 'UTC'), 'locust',
                   {{generator:String}}, journey, step,
                   if(service != '', service, transform(concat(journey, '\\t', step), {{svc_keys:Array(String)}},
                                                         {{svc_values:Array(String)}}, domain(url))),
                   method, url, status, ok,
                   greatest(transform(concat(journey, '\t', step), {{step_keys:Array(String)}},
                                      {{step_checks:Array(UInt16)}}, toUInt16(0)), toUInt16(length(checks_failed))),
                   toUInt16(length(checks_failed)), assumeNotNull(duration), 0, 0, 0, bytes_received, error,
                   if(empty(checks_failed), '', checks_failed[1]), vu
            FROM ({fields}) WHERE ({_REASON}) = ''
            {ANY_PARTITIONS_SQL}""",
            params,
        )
        result.rows = int(job.backend.query(f"SELECT count() AS n FROM {job.table('requests')}")[0]["n"])
        count_rejects(job, result, _REASON, "line != ''", from_sql=f"({fields})")
