"""Gatling's simulation.log as a results format: one row per REQUEST record, one run per file.

ClickHouse reads the file as lines and splits each at its tabs; the layout of the version that wrote it (its RUN
record says, see `layouts`) tells where each field is. A request's row:

- journey: its scenario, as Gatling records it: on the line (2.x), through its user's USER START record (3.0–3.3),
  or, from 3.4 on, where a request no longer names its scenario, the file's one scenario when its USER records
  name a single one (with several, the journey is empty and the run's notes say why);
- step: its group path and name as Gatling's reports show them ("Checkout / Pay / POST order"), so the rows of
  one step are exactly the requests Gatling's own statistics count under that name;
- ts and duration_ms: its start, and its end less its start (Gatling's response time; 2.0–2.1: last byte
  received less first byte sent), waiting_ms Gatling 2.0–2.1's latency (0 later, when it is not written);
- ok and error: OK is a success; KO is a request error with Gatling's message (a failed check's message too, as
  Gatling fails the request for either); vu: the user id where written (up to 3.3).

The method, URL, HTTP status and byte counts are not in the file (0 or empty). USER, GROUP, ERROR and ASSERTION
records add no rows (a GROUP is not a request); a line that is none of the version's records, or whose fields are
not what that record holds, is rejected with its line number and the field named, and the rest kept.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from warehouse.engine.owners import scratch_dir
from warehouse.errors import IngestError
from warehouse.ingest.bounds import (
    ANY_PARTITIONS_SQL,
    DURATION_REASON,
    MAX_DURATION_MS,
    NS_UNTIL,
    TIME_REASON,
)
from warehouse.ingest.files import read_head
from warehouse.ingest.formats import IngestJob, IngestResult, register
from warehouse.ingest.history import RunMeta
from warehouse.ingest.sql import count_rejects, service_map_params, stage_lines
from warehouse.tools.gatling import binary
from warehouse.tools.gatling.layouts import (
    PATH_SEPARATOR,
    Layout,
    RunRecord,
    UnknownLayout,
    looks_like_text_log,
    run_record,
)

TOOL = "gatling"
_MS_UNTIL = NS_UNTIL // 10**6


def _lit(text: str) -> str:
    """A SQL string literal of text this module writes (no user data)."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return "'" + "".join(f"\\x{ord(c):02X}" if ord(c) < 32 else c for c in escaped) + "'"


def _counts(counts: tuple[int, ...], extra: bool) -> str:
    said = " or ".join(map(str, counts))
    return f"{said} or more" if extra else said


def _count_check(kind: str, layout: Layout) -> tuple[str, str]:
    """SQL: (does a record of `kind` have a wrong number of fields for the layout, why)."""
    counts = layout.fields[kind]
    extra = kind == "REQUEST" and layout.extra
    fits = f"n_ >= {counts[0]}" if extra else f"n_ IN ({', '.join(map(str, counts))})"
    told = _lit(f" fields; Gatling {layout.versions} writes {_counts(counts, extra)}")
    return f"NOT ({fits})", f"concat('{kind} record: ', toString(n_), {told})"


def _count_reason(kind: str, layout: Layout) -> str:
    wrong, why = _count_check(kind, layout)
    return f"if({wrong}, {why}, '')"


_TIMES = ("start", "end", "last byte sent", "first byte received")


def reason_sql(layout: Layout, run_line: int, last_cut: int) -> str:
    """SQL over `lineno`, `kind_`, `n_` and `f_` (a line's fields): why a line is rejected, or ''."""
    r = layout
    checks = [", ".join(_count_check("REQUEST", r))]
    for index, what in zip(r.timestamps, _TIMES, strict=False):
        checks.append(f"NOT match(f_[{index}], '^[0-9]{{1,15}}$'), "
                      f"concat({_lit(f'REQUEST {what} (field {index}) is not a whole number of milliseconds: ')}, "
                      f"substring(f_[{index}], 1, 40))")
    start, end = f"toInt64OrZero(f_[{r.start}])", f"toInt64OrZero(f_[{r.end}])"
    checks += [
        f"f_[{r.status}] NOT IN ('OK', 'KO'), concat('REQUEST status (field {r.status}) is neither OK nor KO: ', "
        f"substring(f_[{r.status}], 1, 40))",
        f"f_[{r.name}] = '', 'REQUEST name (field {r.name}) is empty'",
        f"{start} >= {_MS_UNTIL}, {_lit(f'REQUEST start (field {r.start}) {TIME_REASON}')}",
        f"{end} < {start}, {_lit(f'REQUEST end (field {r.end}) is before its start (field {r.start})')}",
        f"{end} - {start} > {MAX_DURATION_MS}, {_lit(f'REQUEST response time (end less start) {DURATION_REASON}')}",
    ]
    request = f"multiIf({', '.join(checks)}, '')"
    user = _count_reason("USER", r)
    if r.user_event:
        wrong, why = _count_check("USER", r)
        user = (f"multiIf({wrong}, {why}, f_[{r.user_event}] NOT IN ('START', 'END'), "
                f"'USER event (field {r.user_event}) is neither START nor END', '')")
    others = "".join(f"kind_ = '{kind}', {_count_reason(kind, r)}, " for kind in ("GROUP", "ERROR") if kind in r.fields)
    kinds = ", ".join(r.fields)
    return (
        f"multiIf(lineno = {last_cut}, 'the last line was cut short (no line break after it)', "
        f"kind_ = 'ASSERTION', '', "
        f"kind_ = 'RUN', if(lineno = {run_line}, {_count_reason('RUN', r)}, "
        f"'a second RUN record (a simulation.log holds one run)'), "
        f"kind_ = 'REQUEST', {request}, "
        f"kind_ = 'USER', {user}, {others}"
        f"concat('not a record of Gatling {r.versions}: field {r.kind} is ', "
        f"if(n_ < {r.kind}, 'missing', concat('\"', substring(f_[{r.kind}], 1, 40), '\"')), "
        f"{_lit(f' (records are {kinds})')}))"
    )


def fields_sql(stage: str, layout: Layout) -> str:
    """SQL: every line of the staged file with its number, record type and fields (a CR before the line feed of a
    file written on Windows left out)."""
    kind = f"if(f_[1] = 'ASSERTION', 'ASSERTION', f_[{layout.kind}])"
    return (f"SELECT lineno, line, f_, length(f_) AS n_, {kind} AS kind_ FROM ("
            f"SELECT rowNumberInAllBlocks() + 1 AS lineno, line, "
            f"splitByChar('\\t', replaceRegexpOne(line, '\\r$', '')) AS f_ FROM {stage}) SETTINGS max_threads = 1")


def journey_sql(layout: Layout) -> tuple[str, str]:
    """SQL for a request's journey, and the JOIN that gives it (3.0–3.3: its user's scenario)."""
    if layout.scenario:
        return f"f_[{layout.scenario}]", ""
    if layout.user_scenario:
        uid, scenario = layout.user_scenario
        join = (f"LEFT JOIN (SELECT f_[{uid}] AS uid_, any(f_[{scenario}]) AS scenario_ FROM valid_ "
                f"WHERE kind_ = 'USER' AND f_[{layout.user_event}] = 'START' GROUP BY uid_) AS users_ "
                f"ON users_.uid_ = f_[{layout.user}]")
        return "users_.scenario_", join
    return "{journey:String}", ""


def requests_sql(layout: Layout, table: str, fields: str, reason: str) -> str:
    r = layout
    journey, join = journey_sql(r)
    groups = f"arrayFilter(g -> g != '', splitByChar({_lit(r.group_separator)}, f_[{r.groups}]))"
    step = f"arrayStringConcat(arrayPushBack({groups}, f_[{r.name}]), {_lit(PATH_SEPARATOR)})"
    waiting = "0"
    if r.waiting:
        waiting = f"greatest(toFloat64(toInt64OrZero(f_[{r.waiting[1]}]) - toInt64OrZero(f_[{r.waiting[0]}])), 0)"
    vu = f"f_[{r.user}]" if r.user else "''"
    return f"""
    INSERT INTO {table} (run_id, batch, ts, tool, generator, journey, step, service, method, url, status, ok,
                         duration_ms, waiting_ms, connect_ms, bytes_sent, bytes_received, error, vu)
    WITH valid_ AS (SELECT * FROM ({fields}) WHERE ({reason}) = '')
    SELECT {{run:String}}, {{batch:String}},
           toDateTime64(fromUnixTimestamp64Milli(toInt64OrZero(f_[{r.start}]), 'UTC'), 6, 'UTC'), '{TOOL}',
           {{generator:String}}, journey_, step_,
           transform(concat(journey_, '\\t', step_), {{svc_keys:Array(String)}}, {{svc_values:Array(String)}}, ''),
           '', '', 0, f_[{r.status}] = 'OK',
           toFloat64(toInt64OrZero(f_[{r.end}]) - toInt64OrZero(f_[{r.start}])), {waiting}, 0, 0, 0,
           if(f_[{r.status}] = 'OK', '', if(trimBoth(f_[{r.message}]) = '', 'KO', trimBoth(f_[{r.message}]))), {vu}
    FROM (SELECT *, {journey} AS journey_, {step} AS step_ FROM valid_ {join} WHERE kind_ = 'REQUEST')
    {ANY_PARTITIONS_SQL}"""


@register
class SimulationLog:
    """Gatling's simulation.log, text (2.0–3.12) or binary (3.13 on)."""

    name: ClassVar[str] = "gatling-log"
    tool: ClassVar[str] = TOOL

    def sniff(self, head: bytes) -> bool:
        return binary.looks_binary(head) or looks_like_text_log(head)

    def run_meta(self, path: Path) -> RunMeta:
        """What the file's RUN record says of its run: its simulation, id, start, Gatling's version, description."""
        run = self._run(read_head(path), path)
        notes = f"Gatling run description: {run.description}" if run.description else None
        version = run.version if not run.version.startswith("2.") else None  # 2.x writes its log format's version
        return RunMeta(name=run.simulation_id or run.simulation, spec_name=run.simulation, started_at=run.started_at,
                       tool_version=version, notes=notes)

    def load(self, job: IngestJob, result: IngestResult) -> None:
        head = read_head(job.path)
        shown = job.source or job.path
        if binary.looks_binary(head):
            with scratch_dir("gatling") as tmp:
                text = Path(tmp) / "records.log"
                try:
                    decoded = binary.to_text(job.path, text)
                except binary.Unreadable as exc:
                    raise IngestError(f"{shown}: {exc}") from None
                self._load_text(dataclasses.replace(job, path=text), result, b"", decoded)
            result.notes.append("read from Gatling's binary simulation.log: line numbers are record numbers")
            return
        self._load_text(job, result, head, None)

    def _run(self, head: bytes, shown: Path) -> RunRecord:
        if binary.looks_binary(head):
            try:
                return binary.run_record(head)
            except binary.Unreadable as exc:
                raise IngestError(f"{shown}: {exc}") from None
        try:
            return run_record(head)
        except UnknownLayout as exc:
            raise IngestError(f"{shown}:{exc}") from None

    def _load_text(self, job: IngestJob, result: IngestResult, head: bytes, decoded: binary.Decoded | None) -> None:
        shown = job.source or job.path
        run = self._run(head, shown) if decoded is None else decoded.run
        layout = run.layout
        lines = stage_lines(job, ["line"], "LineAsString")
        with open(job.path, "rb") as fh:
            fh.seek(-1, 2)
            last_cut = lines if fh.read(1) != b"\n" else 0
        fields = fields_sql(job.stage, layout)
        reason = reason_sql(layout, run.line, last_cut)
        params = {"run": job.run_id, "batch": job.batch, "generator": job.generator, **service_map_params(job),
                  "journey": self._journey(job, layout, fields, reason, result)}
        job.backend.command(requests_sql(layout, job.table("requests"), fields, reason), params)
        result.rows = int(job.backend.query(f"SELECT count() AS n FROM {job.table('requests')}")[0]["n"])
        count_rejects(job, result, reason, keep_sql="line != ''", text_sql="line", from_sql=f"({fields})")
        if decoded is not None and decoded.damage:
            result.rejected += 1
            result.samples.append(decoded.damage)
        result.notes.append(f"Gatling {run.version if not run.version.startswith('2.') else layout.versions}"
                            f" simulation {run.simulation}")

    @staticmethod
    def _journey(job: IngestJob, layout: Layout, fields: str, reason: str, result: IngestResult) -> str:
        """A 3.4+ file's journey: its one scenario, or '' when its USER records name several (or none). Errors
        outside any request (ERROR records; 2.2-2.3 wrote them as GROUP records of three fields) are counted in the
        result's notes, as the warehouse keeps no row for them."""
        scenario = f"f_[{layout.scenario_in_user}]"
        error = "kind_ = 'ERROR'" + (" OR (kind_ = 'GROUP' AND n_ = 3)" if layout.group_errors else "")
        rows = job.backend.query(
            f"SELECT uniqExactIf({scenario}, kind_ = 'USER') AS n, groupUniqArrayIf(5)({scenario}, kind_ = 'USER') "
            f"AS s, countIf({error}) AS errors FROM ({fields}) WHERE kind_ IN ('USER', 'ERROR', 'GROUP') "
            f"AND ({reason}) = ''"
        )
        if errors := int(rows[0]["errors"]):
            result.notes.append(f"Gatling's errors outside any request are not stored ({errors} ERROR records)")
        if layout.scenario or layout.user_scenario:
            return ""
        count, scenarios = int(rows[0]["n"]), sorted(str(s) for s in rows[0]["s"])
        if count == 1:
            return scenarios[0]
        if count:
            named = ", ".join(scenarios) + (", ..." if count > len(scenarios) else "")
            result.notes.append(f"Gatling {layout.versions} does not record a request's scenario and this run has "
                                f"{count} ({named}): its requests have no journey")
        return ""
