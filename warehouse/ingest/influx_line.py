"""InfluxDB line protocol (an `influx_inspect export` or a capture of writes): k6 points and JMeter aggregates.

Two writers reach InfluxDB in the Grafana + InfluxDB stack, and a file may hold either:

- k6 `--out influxdb`: one line per metric point; the measurement is the metric (http_req_duration...),
  the tags are k6's sample tags, the field `value` is the value, and k6's tags-as-fields (url, vu, iter by
  default) arrive as further fields. Every point goes into k6_points with those fields folded back into
  its tags, and requests are rebuilt exactly as for k6 JSON (points grouped on time and tags).
- JMeter's InfluxDB Backend Listener: a line per transaction and status per interval (tags application,
  transaction, statut=ok|ko|all, responseCode...; fields count, countError, avg, min, max, pct90.0, hit,
  sb, rb...). These are interval aggregates, not requests: each numeric field becomes one row of the
  `aggregates` table (journey = application, step = transaction, status = statut, metric = field name),
  and percentiles stay as JMeter computed them.

Python parses the text (the escaping rules of line protocol are beyond a regular expression: backslash
escapes in names and tags, quoted string fields with escaped quotes) one line at a time into a staged
JSONEachRow file, which ClickHouse loads into a staging table; SQL moves it into the warehouse tables.
Memory stays bounded whatever the file size. Timestamps are nanoseconds (InfluxDB's default); whole
seconds, milliseconds or microseconds are recognised by their magnitude.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from warehouse.engine.owners import scratch_dir
from warehouse.ingest.bounds import ANY_PARTITIONS_SQL, NS_FROM, NS_UNTIL, TIME_REASON, k6_value_problem
from warehouse.ingest.formats import IngestJob, IngestResult, Rejected, register
from warehouse.ingest.k6_json import derive_requests
from warehouse.ingest.sql import SAMPLE_REJECTS, service_map_params, stage_lines

FieldValue = float | int | bool | str

AGGREGATES_NOTE = (
    "JMeter backend-listener data are interval aggregates: no per-request rows; "
    "percentiles are as JMeter computed them per interval"
)
# Tags of JMeter's InfluxDB Backend Listener (statut is its spelling) that become columns of aggregates.
JMETER_TAGS = ("application", "transaction", "statut")


@dataclass(frozen=True)
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    ns: int  # unix time in nanoseconds


class LineError(ValueError):
    """A line that is not valid line protocol; the message says what is wrong."""


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+[iu]")
_TRUE = {"t", "T", "true", "True", "TRUE"}
_FALSE = {"f", "F", "false", "False", "FALSE"}


def _scan(line: str, i: int, stops: str, escapable: str) -> tuple[str, int]:
    """Read a name up to an unescaped stop character; a backslash before an escapable character escapes it."""
    out: list[str] = []
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n and line[i + 1] in escapable:
            out.append(line[i + 1])
            i += 2
            continue
        if c in stops:
            break
        out.append(c)
        i += 1
    return "".join(out), i


def _field_value(text: str) -> FieldValue:
    if _INTEGER.fullmatch(text):
        integer = int(text[:-1])
        if not -(2**63) <= integer < 2**64:  # InfluxDB's integers are 64 bits, signed (i) or unsigned (u)
            raise LineError(f"field value {text[:40]!r} is out of the range of a 64-bit integer")
        return integer
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _NUMBER.fullmatch(text):
        value = float(text)
        if not math.isfinite(value):
            raise LineError(f"field value {text!r} is not a finite number")
        return value
    raise LineError(f"field value {text!r} is not a number, boolean or quoted string")


def _timestamp(text: str) -> int:
    if not re.fullmatch(r"-?\d+", text):
        raise LineError(f"timestamp {text!r} is not an integer")
    value = int(text)
    magnitude = abs(value)
    if magnitude < 10**11:  # seconds (until the year 5138)
        value *= 10**9
    elif magnitude < 10**14:  # milliseconds
        value *= 10**6
    elif magnitude < 10**17:  # microseconds
        value *= 10**3
    if not NS_FROM <= value < NS_UNTIL:
        raise LineError(f"timestamp {text} {TIME_REASON}")
    return value


def parse_line(line: str) -> Point:
    """One line of InfluxDB line protocol: measurement[,tag=value...] field=value[,field=value...] [timestamp]."""
    if "\\" not in line:
        if '"' not in line:
            return _parse_plain(line)
        point = _parse_quoted(line)  # k6's lines: its url tag arrives as a quoted string field
        if point is not None:
            return point
    n = len(line)
    measurement, i = _scan(line, 0, ", ", ", ")
    if not measurement:
        raise LineError("no measurement name")
    tags: dict[str, str] = {}
    while i < n and line[i] == ",":
        key, i = _scan(line, i + 1, ",= ", ",= ")
        if i >= n or line[i] != "=" or not key:
            raise LineError(f"tag {key!r} has no value")
        value, i = _scan(line, i + 1, ", ", ",= ")
        if not value:
            raise LineError(f"tag {key!r} has an empty value")
        tags[key] = value
    if i >= n or line[i] != " ":
        raise LineError("no fields (expected a space after the measurement and tags)")
    fields: dict[str, FieldValue] = {}
    i += 1
    while True:
        key, i = _scan(line, i, ",= ", ",= ")
        if i >= n or line[i] != "=" or not key:
            raise LineError(f"expected field=value after the measurement and tags, found {key!r}")
        i += 1
        if i < n and line[i] == '"':
            out: list[str] = []
            i += 1
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n and line[i + 1] in '"\\':
                    i += 1
                out.append(line[i])
                i += 1
            if i >= n:
                raise LineError(f"string field {key!r} has no closing quote")
            fields[key] = "".join(out)
            i += 1
        else:
            start = i
            while i < n and line[i] not in ", ":
                i += 1
            fields[key] = _field_value(line[start:i])
        if i < n and line[i] == ",":
            i += 1
            continue
        break
    rest = line[i:].strip()
    if not rest:
        raise LineError("no timestamp (a point without one cannot be placed in a run)")
    if " " in rest:
        raise LineError(f"unexpected text after the timestamp: {rest!r}")
    return Point(measurement, tags, fields, _timestamp(rest))


def _parse_plain(line: str) -> Point:
    """The common case without escapes or quoted strings, by splitting."""
    parts = line.split(" ")
    if len(parts) < 2 or not parts[1]:
        raise LineError("no fields (expected a space after the measurement and tags)")
    if len(parts) < 3 or not parts[2]:
        raise LineError("no timestamp (a point without one cannot be placed in a run)")
    if len(parts) > 3:
        raise LineError(f"unexpected text after the timestamp: {' '.join(parts[3:])!r}")
    measurement, tags = _plain_head(parts[0])
    fields: dict[str, FieldValue] = {}
    for part in parts[1].split(","):
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise LineError(f"expected field=value after the measurement and tags, found {part!r}")
        fields[key] = _field_value(value)
    return Point(measurement, tags, fields, _timestamp(parts[2]))


# A field of a line without escapes: key=value or key="text" (the text may hold commas, not quotes).
_FIELD = re.compile(r'([^,="]+)=("[^"]*"|[^,"]*)(?:,|$)')


def _parse_quoted(line: str) -> Point | None:
    """A line without escapes whose fields hold quoted strings, by splitting and one regular expression;
    None when its shape needs the full scan (a space inside a quoted string, say)."""
    head, _, rest = line.partition(" ")
    if rest.count(" ") != 1:
        return None
    text, _, stamp = rest.partition(" ")
    fields: dict[str, FieldValue] = {}
    end = 0
    for m in _FIELD.finditer(text):
        if m.start() != end:
            return None
        value = m[2]
        fields[m[1]] = value[1:-1] if value.startswith('"') else _field_value(value)
        end = m.end()
    if end != len(text) or not fields or not stamp:
        return None
    measurement, tags = _plain_head(head)
    return Point(measurement, tags, fields, _timestamp(stamp))


def _plain_head(head: str) -> tuple[str, dict[str, str]]:
    """measurement[,tag=value...] without escapes."""
    measurement, *tag_parts = head.split(",")
    if not measurement:
        raise LineError("no measurement name")
    tags: dict[str, str] = {}
    for part in tag_parts:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise LineError(f"tag {key!r} has no value")
        if not value or "=" in value:
            raise LineError(f"tag {key!r} has an empty value" if not value else f"tag {key!r}: unescaped '='")
        tags[key] = value
    return measurement, tags


def _skipped(line: str) -> bool:
    """Blank lines, comments and the DDL/DML headers of `influx_inspect export`."""
    return not line or line.startswith("#") or line.startswith("CREATE DATABASE")


def is_jmeter(point: Point) -> bool:
    """The backend listener's lines carry application and transaction; its annotations (`events`) a text."""
    return "application" in point.tags and ("transaction" in point.tags or "text" in point.fields)


def _tag_text(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def stage_rows(point: Point) -> list[dict[str, object]]:
    """The staging rows of one point: one k6 point, or one row per numeric field of a JMeter aggregate."""
    if is_jmeter(point):
        tags = {k: v for k, v in point.tags.items() if k not in JMETER_TAGS}
        for key, value in point.fields.items():
            if isinstance(value, str):
                tags[key] = value
        head = {k: point.tags.get(k, "") for k in JMETER_TAGS}
        numbers = {k: float(v) for k, v in point.fields.items() if not isinstance(v, str)}
        if not numbers:  # an annotation (test started / ended): kept as one `event` with its text in the tags
            numbers = {"event": 1.0}
        return [
            {"kind": "jmeter", "ns": point.ns, "measurement": point.measurement, "tags": tags, **head,
             "field": key, "value": value}
            for key, value in numbers.items()
        ]
    if "value" not in point.fields or isinstance(point.fields["value"], str):
        raise LineError("a k6 point without a numeric `value` field")
    if problem := k6_value_problem(point.measurement, float(point.fields["value"])):
        raise LineError(problem)
    tags = dict(point.tags)
    for key, value in point.fields.items():  # k6's tags-as-fields (url, vu, iter) back into the tags
        if key != "value":
            tags[key] = _tag_text(value)
    return [{"kind": "k6", "ns": point.ns, "measurement": point.measurement, "tags": tags,
             "application": "", "transaction": "", "statut": "", "field": "value",
             "value": float(point.fields["value"])}]


@dataclass(frozen=True)
class Checked:
    """What a body of line protocol holds: its valid and rejected lines, and the first problem with its line."""

    valid: int
    rejected: int
    problem: str


def check_write(body: bytes) -> Checked:
    """Check every line of one write as ingestion will (the receiver answers a write with them): line numbers
    are the write's own."""
    valid = rejected = 0
    problem = ""
    for lineno, raw in enumerate(body.split(b"\n"), start=1):
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        if _skipped(line.strip()):
            continue
        try:
            stage_rows(parse_line(line))
        except LineError as exc:
            rejected += 1
            problem = problem or f"line {lineno}: {exc}: {line[:120]!r}"
            continue
        valid += 1
    return Checked(valid, rejected, problem)


def _first_point(head: bytes) -> Point | None:
    for raw in head.split(b"\n")[:50]:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        if _skipped(line.strip()):
            continue
        try:
            return parse_line(line)
        except LineError:
            return None
    return None


STAGE_COLUMNS = ["kind", "ns", "measurement", "tags", "application", "transaction", "statut", "field", "value"]
STAGE_TYPES = ["String", "Int64", "String", "Map(String, String)", "String", "String", "String", "String",
               "Float64"]

_POINTS = """
INSERT INTO {points} (run_id, batch, ts, ts_ns, metric, value, tags, generator)
SELECT {run:String}, {batch:String}, toDateTime64(fromUnixTimestamp64Nano(ns, 'UTC'), 6, 'UTC'),
       toUInt16(ns % 1000), measurement, value, toJSONString(mapSort(tags)),
       if(tags['perfhouse_generator'] != '', tags['perfhouse_generator'], {generator:String})
FROM {stage} WHERE kind = 'k6'
"""

_AGGREGATES = """
INSERT INTO {aggregates} (run_id, batch, ts, tool, journey, step, status, metric, value, tags)
SELECT {run:String}, {batch:String}, toDateTime64(fromUnixTimestamp64Nano(ns, 'UTC'), 6, 'UTC'), 'jmeter',
       application, transaction, statut, field, value, tags
FROM {stage} WHERE kind = 'jmeter'
"""


@register
class InfluxLine:
    name: ClassVar[str] = "influx-line"
    tool: ClassVar[str] = "k6"  # or jmeter: tool_for() reads which writer the file came from
    loose: ClassVar[bool] = True  # any `measurement field=value` line passes: tried after every other format

    def sniff(self, head: bytes) -> bool:
        return _first_point(head) is not None

    def tool_for(self, head: bytes) -> str:
        point = _first_point(head)
        return "jmeter" if point is not None and is_jmeter(point) else "k6"

    def load(self, job: IngestJob, result: IngestResult) -> None:
        source = job.source or job.path
        kinds = {"k6": 0, "jmeter": 0}
        with scratch_dir("influx") as tmp:
            staged = Path(tmp) / "staged.jsonl"
            # lines end at LF alone (as InfluxDB reads them): a CR inside a line is no line break
            with open(job.path, "rb") as src, open(staged, "w", encoding="utf-8") as out:
                for lineno, raw in enumerate(src, start=1):
                    line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                    if _skipped(line.strip()):
                        continue
                    try:
                        if not raw.endswith(b"\n"):  # every writer ends a line with a line break: this one was cut
                            raise LineError("the last line was cut short (no line break at its end)")
                        rows = stage_rows(parse_line(line))
                    except LineError as exc:
                        result.rejected += 1
                        if len(result.samples) < SAMPLE_REJECTS:
                            result.samples.append(Rejected(lineno, str(exc), line[:120]))
                        continue
                    for row in rows:
                        kinds[str(row["kind"])] += 1
                        out.write(json.dumps(row, separators=(",", ":")))
                        out.write("\n")
            if not kinds["k6"] and not kinds["jmeter"]:
                return
            staged_job = IngestJob(job.backend, staged, job.run_id, job.batch, job.generator, job.services,
                                   source=source)
            stage_lines(staged_job, STAGE_COLUMNS, "JSONEachRow", types=STAGE_TYPES)
        params = {"run": job.run_id, "batch": job.batch, "generator": job.generator}
        if kinds["k6"]:
            job.backend.command(_POINTS.replace("{stage}", job.stage).replace("{points}", job.table("k6_points"))
                                + ANY_PARTITIONS_SQL, params)
            derive_requests(job, {**params, **service_map_params(job)})
        if kinds["jmeter"]:
            sql = _AGGREGATES.replace("{stage}", job.stage).replace("{aggregates}", job.table("aggregates"))
            job.backend.command(sql + ANY_PARTITIONS_SQL, params)
            result.notes.append(AGGREGATES_NOTE)
        counts = job.backend.query(
            f"SELECT (SELECT count() FROM {job.table('k6_points')}) AS points, "
            f"(SELECT count() FROM {job.table('requests')}) AS rows, "
            f"(SELECT count() FROM {job.table('aggregates')}) AS aggregates"
        )[0]
        result.points, result.rows = int(counts["points"]), int(counts["rows"])
        result.aggregates = int(counts["aggregates"])
        result.tool = "jmeter" if kinds["jmeter"] and not kinds["k6"] else "k6"
        if kinds["jmeter"] and kinds["k6"]:
            result.notes.append("the file holds both k6 points and JMeter aggregates")
