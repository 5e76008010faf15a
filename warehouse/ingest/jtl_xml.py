"""JMeter JTL XML (`jmeter.save.saveservice.output_format=xml`, plain or gzip): one row per HTTP request.

XML is not a ClickHouse input format, so expat (the parser under ElementTree's iterparse, here without
building a tree) streams the file into a tab-separated staging file that ClickHouse then loads; memory
stays bounded whatever the file size, and response bodies are never held. Samples nest: a redirect
parent or a Transaction Controller with "generate parent sample" holds the real requests as children,
so only the innermost samples count, and a transaction's own sample (a group, not a request) never
does. A parse error (garbage, a cut) loses only the sample it falls in: parsing resumes at the next
top-level sample, and the error is counted as a rejected line with its line number.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import IO, Any, ClassVar
from xml.parsers import expat

from warehouse.engine.owners import scratch_dir
from warehouse.ingest.bounds import (
    ANY_PARTITIONS_SQL,
    DURATION_REASON,
    MAX_DURATION_MS,
    TIME_REASON,
    count_ok,
    integer_ok,
    time_ok,
)
from warehouse.ingest.formats import IngestJob, IngestResult, Rejected, register
from warehouse.ingest.jtl_csv import TRACE_ID, TRANSACTION_MESSAGE, outcome_sql
from warehouse.ingest.sql import (
    SAMPLE_REJECTS,
    service_map_params,
    stage_lines,
    step_map_params,
    trace_id_sql,
)

SAMPLES = frozenset({"httpSample", "sample"})
# A top-level sample starts a line (JMeter indents the nested ones): where parsing resumes after an error.
TOP_SAMPLE = re.compile(rb"<(?:httpSample|sample)[\s/>]")
# Staging columns, in the order the scanner writes them (every value is text; ClickHouse checks them).
COLUMNS = [
    "lineno",
    "problem",
    "text",
    "ts",
    "elapsed",
    "latency",
    "connect",
    "success",
    "label",
    "step",
    "code",
    "message",
    "thread",
    "bytes",
    "sent",
    "url",
    "method",
    "failure",
    "checks",
    "failed",
    "failed_check",
    "trace_id",
]
_TYPES = ["UInt64"] + ["String"] * (len(COLUMNS) - 1)
_TEXT_OF = frozenset({"java.net.URL", "method", "failure", "error", "failureMessage", "name"})
_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_CHUNK = 1 << 20


@dataclasses.dataclass
class _Open:
    """A sample element whose end has not been seen yet."""

    line: int
    attrs: dict[str, str]
    step: str
    parent: bool = False
    url: str = ""
    method: str = ""
    failure: str = ""  # the first failing assertion's message
    checks: int = 0  # assertion results (JMeter writes every one, passed or not, unless told otherwise)
    failed: int = 0
    failed_check: str = ""  # the first failing assertion's name (the check's label in a generated plan)


class _Scanner:
    """Streams a JTL XML into staging rows: a request per innermost sample, a problem row per XML error."""

    def __init__(self, out: IO[str], declaration: bytes):
        self.out = out
        self.declaration = declaration  # the file's <?xml ...?>, repeated before a resumed parse
        self.parser: Any = None
        self.base = 1  # the file's line number of the parser's first line
        self.open: list[_Open] = []  # the sample elements open, outermost first
        self.tags: list[str] = []  # every element open below the root
        self.rows: list[str] = []  # requests of the current top-level sample, written when it ends
        self.text: list[str] | None = None  # character data being collected (of a _TEXT_OF element)
        self.assertion: dict[str, str] = {}
        self.rooted = False
        self.last_line = b""  # the last line read (of the previous chunk while a chunk is parsed)

    # -- expat handlers --------------------------------------------------------------------------

    def _start(self, tag: str, attrs: dict[str, str]) -> None:
        if not self.rooted:  # <testResults>
            self.rooted = True
            return
        self.tags.append(tag)
        if tag in SAMPLES:
            if self.open:
                self.open[-1].parent = True
            outer = next((s.step for s in self.open if s.step), "")
            step = outer or (attrs.get("lb", "") if tag == "httpSample" else "")
            self.open.append(_Open(self._line(), attrs, step))
        elif tag in _TEXT_OF and self.open:
            self.text = []

    def _chars(self, data: str) -> None:
        if self.text is not None:
            self.text.append(data)

    def _end(self, tag: str) -> None:
        if not self.tags:
            return  # </testResults>
        self.tags.pop()
        if tag in SAMPLES:
            self._sample_end(self.open.pop())
            return
        if tag in _TEXT_OF and self.text is not None and self.open:
            value, self.text = "".join(self.text), None
            top = self.open[-1]
            if tag == "java.net.URL" and self.tags and self.tags[-1] in SAMPLES:
                top.url = value
            elif tag == "method" and self.tags and self.tags[-1] in SAMPLES:
                top.method = value.strip()
            else:
                self.assertion[tag] = value
        elif tag == "assertionResult" and self.open:
            failed = "true" in (self.assertion.get("failure"), self.assertion.get("error"))
            top = self.open[-1]
            top.checks += 1
            if failed:
                top.failed += 1
                message = self.assertion.get("failureMessage", "")
                if not top.failure:
                    top.failure = message or "assertion failed"
                if not top.failed_check:
                    top.failed_check = self.assertion.get("name", "") or message or "an assertion failed"
            self.assertion = {}

    def _sample_end(self, sample: _Open) -> None:
        attrs = sample.attrs
        if not sample.parent and not attrs.get("rm", "").startswith(TRANSACTION_MESSAGE):
            get = attrs.get
            values = [
                get("ts", ""),
                get("t", ""),
                get("lt", ""),
                get("ct", ""),
                get("s", ""),
                get("lb", ""),
                sample.step or get("lb", ""),
                get("rc", ""),
                get("rm", ""),
                get("tn", ""),
                get("by", ""),
                get("sby", ""),
                sample.url,
                sample.method,
                sample.failure,
                str(sample.checks),
                str(sample.failed),
                sample.failed_check,
                # a saved sample variable is an attribute of its sample, named as XStream escapes it (_ as __)
                get(TRACE_ID.replace("_", "__"), "") or get(TRACE_ID, ""),
            ]
            text = " ".join(f'{k}="{v}"' for k, v in attrs.items() if k in ("t", "ts", "s", "lb", "rc"))
            self.rows.append(self._row(sample.line, "", text, values))
        if not self.open:  # a top-level sample is complete: its requests are kept
            self.out.writelines(self.rows)
            self.rows.clear()

    # -- driving the parser ----------------------------------------------------------------------

    def _line(self) -> int:
        return self.base + int(self.parser.CurrentLineNumber) - 1

    def _row(self, line: int, problem: str, text: str, values: list[str]) -> str:
        cells = [str(line), problem, text[:120], *values]
        cells += [""] * (len(COLUMNS) - len(cells))
        return "\t".join(c.translate(_ESCAPE) for c in cells) + "\n"

    def _new_parser(self, line: int, resumed: bool) -> None:
        self.parser = expat.ParserCreate()
        self.parser.buffer_text = True
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._chars
        self.base, self.open, self.tags, self.rows, self.text, self.assertion = line, [], [], [], None, {}
        self.rooted = False
        if resumed:  # the lines before were lost to an error: start a document on this line's first column
            self.parser.Parse(self.declaration + b"<testResults>", False)

    def _problem(self, line: int, reason: str, text: bytes) -> None:
        self.out.write(self._row(line, reason, text.decode("utf-8", errors="replace").strip(), []))

    def scan(self, path: Path) -> None:
        with open(path, "rb") as fh:
            first = 1
            while lines := fh.readlines(_CHUNK):
                self._feed(lines, first)
                first += len(lines)
                self.last_line = lines[-1]
        self._finish()

    def _feed(self, lines: list[bytes], first: int) -> None:
        while lines:
            if self.parser is None:  # after an error: skip to the next top-level sample
                start = next((i for i, line in enumerate(lines) if TOP_SAMPLE.match(line)), None)
                if start is None:
                    return
                lines, first = lines[start:], first + start
                self._new_parser(first, resumed=True)
            try:
                self.parser.Parse(b"".join(lines), False)
                return
            except expat.ExpatError as exc:
                bad = self.base + exc.lineno - 1
                index = bad - first
                if (
                    exc.offset == 0
                    and bad > self.base
                    and 0 <= index < len(lines)
                    and TOP_SAMPLE.match(lines[index])
                ):
                    # a sample starting a line where the previous line stopped short: that line is the bad one
                    text = lines[index - 1] if index > 0 else self.last_line
                    self._problem(bad - 1, _reason(exc), text)
                else:
                    self._problem(bad, _reason(exc), lines[index] if 0 <= index < len(lines) else b"")
                    index += 1
                self.parser = None
                lines, first = lines[index:], first + index

    def _finish(self) -> None:
        if self.parser is None:
            return
        try:
            self.parser.Parse(b"", True)
        except expat.ExpatError as exc:
            unfinished = bool(self.open) or (
                exc.code != expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS]
                and not self.last_line.lstrip().startswith(b"</")
            )
            if unfinished:  # JMeter stopped mid-sample: that sample is lost, the ones before are kept
                line = self.open[0].line if self.open else self.base + exc.lineno - 1
                self._problem(
                    line, "the file is cut short inside this sample; the sample is lost", self.last_line
                )
            # else only the closing </testResults> is missing (JMeter was stopped): nothing is lost


def _reason(exc: expat.ExpatError) -> str:
    what = re.sub(r"^not well-formed \((.*)\)$", r"\1", expat.errors.messages.get(exc.code, "parse error"))
    return f"not well-formed XML ({what}); parsing resumed at the next sample"


# A request row's problem, checked by ClickHouse (the same checks as JTL CSV).
_TS = (
    "if(match(ts, '^[0-9]+$'), fromUnixTimestamp64Milli(toInt64OrNull(ts), 'UTC'), "
    "parseDateTime64BestEffortOrNull(ts, 3, 'UTC'))"
)
_REASON = (
    f"multiIf(problem != '', problem, {_TS} IS NULL, 'ts is not a time',"
    f" NOT ifNull({time_ok(_TS)}, 0), 'ts {TIME_REASON}',"
    " toInt64OrNull(elapsed) IS NULL AND NOT match(elapsed, '^[-+]?[0-9]+$'), 't (elapsed) is not a number',"
    f" NOT {integer_ok('elapsed')}, 't (elapsed) {DURATION_REASON}',"
    f" NOT {count_ok('latency', MAX_DURATION_MS)}, 'lt (latency) {DURATION_REASON}',"
    f" NOT {count_ok('connect', MAX_DURATION_MS)}, 'ct (connect) {DURATION_REASON}',"
    f" NOT ({count_ok('bytes')} AND {count_ok('sent')}), 'by or sby (bytes) out of range',"
    " success NOT IN ('true', 'false'), 's (success) is neither true nor false',"
    " label = '', 'lb (label) is empty', '')"
)


@register
class JtlXml:
    name: ClassVar[str] = "jtl-xml"
    tool: ClassVar[str] = "jmeter"

    def sniff(self, head: bytes) -> bool:
        start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        return start.startswith((b"<?xml", b"<testResults")) and b"<testResults" in head[:4096]

    def load(self, job: IngestJob, result: IngestResult) -> None:
        with open(job.path, "rb") as fh:
            head = fh.read(4096)
        match = re.match(rb"\s*(<\?xml[^>]*\?>)", head.removeprefix(b"\xef\xbb\xbf"))
        with scratch_dir("jtlxml") as tmp:
            staged = Path(tmp) / "samples.tsv"
            with open(staged, "w", encoding="utf-8", newline="") as out:
                _Scanner(out, match.group(1) if match else b"").scan(job.path)
            stage_lines(dataclasses.replace(job, path=staged), COLUMNS, "TabSeparated", types=_TYPES)
        journey = "replaceRegexpOne(thread, '\\\\s+[0-9]+-[0-9]+$', '')"
        outcome = outcome_sql("key_", "code", "success", "failure")
        # Every assertion result is there (unless the JTL was saved without them): a sample's checks and failed
        # checks are counted, not guessed; a failed sample without any is judged as in CSV.
        job.backend.command(
            f"""
            INSERT INTO {job.table("requests")} (run_id, batch, ts, tool, generator, journey, step, service,
                                  method, url, status, ok, checks, failed_checks, duration_ms, waiting_ms,
                                  connect_ms, bytes_sent, bytes_received, error, failed_check, vu, trace_id)
            SELECT {{run:String}}, {{batch:String}}, {_TS}, 'jmeter', {{generator:String}}, journey_, step,
                   transform(key_, {{svc_keys:Array(String)}}, {{svc_values:Array(String)}}, domain(url)),
                   if(method != '', method, {outcome["method"]}), url, toUInt16OrZero(code), ok_,
                   greatest(toUInt16OrZero(checks), {outcome["checks"]}, failed_), failed_,
                   toFloat64(toInt64OrZero(elapsed)), toFloat64(toInt64OrZero(latency)),
                   toFloat64(toInt64OrZero(connect)), toUInt64OrZero(sent), toUInt64OrZero(bytes),
                   if(ok_, '', message), if(failed_ = 0, '', if(failed_check != '', failed_check, 'an assertion failed')),
                   thread, {trace_id_sql("trace_id")}
            FROM (SELECT *, {outcome["ok"]} AS ok_,
                         if(toUInt16OrZero(failed) > 0, toUInt16OrZero(failed), toUInt16({outcome["assertion_failed"]}))
                         AS failed_
                  FROM (SELECT *, {journey} AS journey_, concat(journey_, '\\t', step) AS key_,
                               {outcome["expected"]} AS expected_ FROM {job.stage}))
            WHERE {_REASON} = ''
            {ANY_PARTITIONS_SQL}""",
            {"run": job.run_id, "batch": job.batch, "generator": job.generator, **service_map_params(job),
             **step_map_params(job)},
        )
        counts = job.backend.query(
            f"SELECT (SELECT count() FROM {job.table('requests')}) AS rows, "
            f"(SELECT count() FROM {job.stage} WHERE {_REASON} != '') AS rejected, "
            f"(SELECT groupArray({SAMPLE_REJECTS})((lineno, reason, text)) FROM "
            f"  (SELECT lineno, {_REASON} AS reason, text FROM {job.stage} WHERE reason != '' ORDER BY lineno))"
            f" AS sample"
        )[0]
        result.rows, result.rejected = int(counts["rows"]), int(counts["rejected"])
        result.samples = [
            Rejected(int(line), str(reason), str(text)) for line, reason, text in counts["sample"]
        ]
