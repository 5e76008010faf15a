"""JMeter: its probe, test plan, command line, CSV JTL (progress counter and live cutter), secrets and stop."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import shutil
import signal
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from orchestrator.errors import GenerationError, SpecError
from orchestrator.tools import (
    WHOLE,
    Counts,
    Invocation,
    Output,
    Request,
    ResultFormat,
    ScriptFacts,
    Segment,
    ThresholdVerdict,
    register,
)

if TYPE_CHECKING:
    from orchestrator.generators.base import GeneratedScript, GenerationOptions
    from orchestrator.spec import Spec

# The JTL columns the warehouse reads beyond JMeter 2.13's defaults: the first failed assertion's message (a
# failed check, told apart from a request error), the URL, connect time and sent bytes (5.x; 2.13 has none).
DEFAULT_VERSION = "5.6"  # what a JMX targets when neither the user nor a jmeter on PATH says

SAVE_COLUMNS = tuple(
    f"-Jjmeter.save.saveservice.{name}=true"
    for name in ("assertion_results_failure_message", "url", "connect_time", "sent_bytes", "thread_name", "bytes")
)

# allThreads in the headerless default layouts, by column count: JMeter 2.13's 12 and 5.x's 17
_ALL_THREADS = {12: 10, 17: 12}


class JtlCsvCounter:
    """JMeter CSV JTL: one line per sample; a request error is a failed sample whose code is not 2xx/3xx or whose
    failure is a response code assertion's (as the warehouse reads a JTL: a failed 2xx/3xx is a failed check),
    `elapsed` the duration, `allThreads` the active threads of this JMeter (header row, or the default layouts
    of 2.13's 12 and 5.x's 17 columns). A Transaction Controller's own sample (a group of requests, not a
    request) is not counted, as the warehouse does not store it."""

    def __init__(self) -> None:
        from warehouse.tools.jmeter.jtl_csv import (
            TRANSACTION_MESSAGE,  # with the warehouse, not with every command
        )

        self.transaction_message = TRANSACTION_MESSAGE
        self.success_column: int | None = None
        self.elapsed_column = 1
        self.threads_column: int | None = None
        self.message_column: int | None = 4  # responseMessage, 5th in both default layouts
        self.code_column = 3
        self.failure_column: int | None = None
        self.header = False
        self.vus: int | None = None

    def feed(self, lines: list[bytes], counts: Counts) -> None:
        text = b"\n".join(line.rstrip(b"\r\n") for line in lines).decode("utf-8", errors="replace")
        for row in csv.reader(io.StringIO(text)):
            if not row:
                continue
            if self.success_column is None:
                if "success" in row:
                    self.header = True
                    self.success_column = row.index("success")
                    self.elapsed_column = row.index("elapsed") if "elapsed" in row else 1
                    self.threads_column = row.index("allThreads") if "allThreads" in row else None
                    self.message_column = row.index("responseMessage") if "responseMessage" in row else None
                    self.code_column = row.index("responseCode") if "responseCode" in row else -1
                    self.failure_column = row.index("failureMessage") if "failureMessage" in row else None
                    continue
                self.success_column = 7
                self.failure_column = 8 if len(row) == 17 else None
            if not self.header and self.threads_column is None:
                self.threads_column = _ALL_THREADS.get(len(row))
            if self.message_column is not None and len(row) > self.message_column and row[
                    self.message_column].startswith(self.transaction_message):
                continue
            counts.requests += 1
            if len(row) > self.success_column and row[self.success_column].strip().lower() != "true":
                counts.errors += int(self._request_error(row))
            if len(row) > self.elapsed_column:
                with contextlib.suppress(ValueError):
                    counts.durations.append(float(row[self.elapsed_column]))
            if self.threads_column is not None and len(row) > self.threads_column:
                with contextlib.suppress(ValueError):
                    self.vus = int(row[self.threads_column])

    def _request_error(self, row: list[str]) -> bool:
        code = row[self.code_column] if 0 <= self.code_column < len(row) else ""
        failure = row[self.failure_column] if self.failure_column is not None and self.failure_column < len(row) else ""
        return not re.fullmatch(r"[23]\d\d", code.strip()) or failure.startswith("Test failed: code")


class JtlCsvCutter:
    """JMeter CSV JTL: cut after the last complete line outside quotes; every chunk repeats the header row."""

    def header(self, data: bytes) -> int:
        newline = data.find(b"\n")
        if newline < 0:
            return -1
        first = data[:newline]
        return newline + 1 if first[:1].isalpha() or first.startswith(b'"') else 0

    def cut(self, data: bytes, final: bool) -> int:
        if final:
            return len(data)
        quotes, start, safe = 0, 0, 0
        while (newline := data.find(b"\n", start)) >= 0:
            quotes += data.count(b'"', start, newline)
            start = newline + 1
            if quotes % 2 == 0:
                safe = start
        return safe

    def worth_ingesting(self, chunk: bytes) -> bool:
        return bool(chunk.strip())


JTL_CSV = ResultFormat("jtl-csv", JtlCsvCounter, JtlCsvCutter)


def _escape(text: str, key: bool = False) -> str:
    """Java properties syntax, in ASCII (JMeter reads property files as ISO-8859-1)."""
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch in "\n\r\t\f":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}[ch])
        elif ch == " " and (key or i == 0):
            out.append("\\ ")
        elif ch in "=:#!" and (key or i == 0):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) > 0x7E:
            data = ch.encode("utf-16-be")
            out.extend(f"\\u{int.from_bytes(data[k:k + 2], 'big'):04x}" for k in range(0, len(data), 2))
        else:
            out.append(ch)
    return "".join(out)


def jmeter_properties(values: Mapping[str, str]) -> str:
    """The values as the properties the generated plan reads (perfhouse.env.NAME)."""
    from orchestrator.generators.jmeter import ENV_PREFIX

    return "".join(f"{_escape(ENV_PREFIX + k, key=True)}={_escape(v)}\n" for k, v in sorted(values.items()))


def properties_file(values: Mapping[str, str]) -> str:
    """Properties as JMeter reads them from a file (-q), under their own names."""
    return "".join(f"{_escape(k, key=True)}={_escape(v)}\n" for k, v in sorted(values.items()))


# -- hand-written plans -------------------------------------------------------------------------------------

def parse_plan(text: str, file: str) -> ET.Element:
    """A JMX as an element tree; a plan that is no XML, or declares a DTD (no JMX does), is a one-line error."""
    if re.search(r"<!(DOCTYPE|ENTITY)", text[:65536]):
        raise SpecError("a JMX plan declares no DTD or entities; this file does", file)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line, column = exc.position
        raise SpecError(f"not a JMeter plan: {exc.msg}", file, line, column + 1) from None
    if root.tag != "jmeterTestPlan":
        raise SpecError(f"not a JMeter plan: its root element is <{root.tag}>, not <jmeterTestPlan>", file)
    return root


def _prop(element: ET.Element, name: str) -> str:
    for child in element:
        if child.get("name") == name and child.tag.endswith("Prop"):
            return child.text or ""
    return ""


def _elements(tree: ET.Element, parents: tuple[ET.Element, ...] = ()) -> Iterator[tuple[ET.Element,
                                                                                     tuple[ET.Element, ...]]]:
    """The enabled elements of a hashTree in order, each with its enclosing elements (a disabled element is left
    out with its children, as JMeter leaves it out)."""
    children = list(tree)
    for k, element in enumerate(children):
        if element.tag == "hashTree":
            continue
        subtree = children[k + 1] if k + 1 < len(children) and children[k + 1].tag == "hashTree" else None
        if element.get("enabled") == "false":
            continue
        yield element, parents
        if subtree is not None:
            yield from _elements(subtree, (*parents, element))


def _is_sampler(element: ET.Element) -> bool:
    return element.tag.endswith(("Sampler", "SamplerProxy")) or element.tag in ("JSR223Sampler", "DebugSampler")


def plan_requests(root: ET.Element) -> list[Request]:
    """A plan's samplers in order, each under its Transaction Controller (else thread group): label, HTTP method
    and the domain and path as written (timers, thread counts and assertions are not part of it)."""
    top = root.find("hashTree")
    out = []
    for element, parents in _elements(top if top is not None else root):
        if not _is_sampler(element):
            continue
        scope = next((p.get("testname", "") for p in reversed(parents)
                      if p.tag in ("TransactionController",) or p.tag.endswith("ThreadGroup")), "")
        method = _prop(element, "HTTPSampler.method") or element.tag
        where = _prop(element, "HTTPSampler.domain") + _prop(element, "HTTPSampler.path")
        out.append(Request(scope, element.get("testname", ""), method, where))
    return out


# Elements whose load a split by scaling thread counts would not divide: rates, and thread groups of plugins
_UNSPLITTABLE = ("ConstantThroughputTimer", "kg.apc.jmeter.timers.VariableThroughputTimer",
                 "kg.apc.jmeter.threads.UltimateThreadGroup", "kg.apc.jmeter.threads.SteppingThreadGroup",
                 "com.blazemeter.jmeter.threads.concurrency.ConcurrencyThreadGroup",
                 "com.blazemeter.jmeter.threads.arrivals.ArrivalsThreadGroup",
                 "PreciseThroughputTimer", "com.blazemeter.jmeter.threads.arrivals.FreeFormArrivalsThreadGroup")
_THREADS = re.compile(r'(<(intProp|stringProp) name="ThreadGroup\.num_threads">)([^<]*)(</\2>)')


_PROPERTY = re.compile(r"\$\{__(?:P|property)\(\s*([^,()\s]+)\s*(?:,\s*(?:,\s*)?([^,()]*?)\s*)?\)\}")


def scale_plan(text: str, segment: Segment, properties: Mapping[str, str] | None = None,
               file: str = "the JMX plan") -> str | None:
    """The plan with this part's share of each thread group's threads (largest remainder, as generated plans
    split), or None when the part gets no thread at all. A count given as a property (`${__P(threads,10)}`) is
    read from `properties` (-J), else its default. A plan whose load does not divide that way is refused."""
    from orchestrator.generators.base import part_share

    for name in _UNSPLITTABLE:
        if f"<{name} " in text or f"<{name}>" in text:
            raise GenerationError(f"{file}: the plan's {name.rsplit('.', 1)[-1]} sets a rate or shape that "
                                  f"scaling thread counts would not split; run it with --generators 1")
    position = 0
    found = False

    def scale(m: re.Match[str]) -> str:
        nonlocal position, found
        written = value = m[3].strip()
        prop = _PROPERTY.fullmatch(value)
        if prop is not None:
            value = (properties or {}).get(prop[1], prop[2] or "").strip()
        if not value.isdigit():
            raise GenerationError(f"{file}: a thread group's thread count is {written!r}, not a number or a "
                                  f"${{__P(name,default)}} with a number: perfhouse cannot split it over generators; "
                                  "give the property with -J, or use --generators 1")
        share = part_share(int(value), segment.index, segment.count, position)
        position += 1
        found = found or share > 0
        return f"{m[1]}{share}{m[4]}"

    scaled = _THREADS.sub(scale, text)
    if not position:
        raise GenerationError(f"{file}: the plan has no thread group with a thread count to split")
    return scaled if found else None


@register
class JMeter:
    name: ClassVar[str] = "jmeter"
    display_name: ClassVar[str] = "JMeter"
    script_version: ClassVar[str] = DEFAULT_VERSION
    script_suffix: ClassVar[str] = ".jmx"
    version_args: ClassVar[tuple[str, ...]] = ("--version",)
    stop_signal: ClassVar[int] = signal.SIGINT  # the JVM runs its shutdown hooks; the JTL autoflushes
    splits: ClassVar[bool] = True
    scaled_scripts: ClassVar[bool] = True  # each part runs a JMX scaled to its share of the threads
    runners: ClassVar[frozenset[str]] = frozenset({"local", "docker"})
    default_image: ClassVar[str] = "justb4/jmeter:5.5"
    install_hint: ClassVar[str] = (
        "install JMeter 5.x and put `jmeter` on PATH; on Debian bookworm run "
        "`sudo scripts/install-jmeter-debian` (see README)"
    )

    def binary(self) -> str | None:
        return shutil.which("jmeter")

    def version(self, binary: str) -> str:
        # JMeter writes jmeter.log into its working directory even for --version: let it write in a throwaway one
        with tempfile.TemporaryDirectory(prefix="perfhouse-jmeter-") as scratch:
            proc = subprocess.run([binary, *self.version_args], capture_output=True, text=True, timeout=120,
                                  cwd=scratch)
        return self.parse_version(proc.stdout + proc.stderr)

    def parse_version(self, output: str) -> str:
        # "Version 2.13.19691222": 2.13 builds append a date-like number that is not a patch level
        m = re.search(r"(\d+\.\d+(?:\.\d{1,3})?)(?!\d)", output)
        return m.group(1) if m else "unknown"

    def render(self, spec: Spec, options: GenerationOptions) -> GeneratedScript:
        from orchestrator.generators.jmeter import JMeterGenerator

        return JMeterGenerator().render(spec, options if options.tool_version else
                                        self.for_version(options, self.script_version))

    def for_version(self, options: GenerationOptions, version: str) -> GenerationOptions:
        return replace(options, tool_version=version)  # the plan uses only what this JMeter has

    def invocation(self, binary: str, script: Path, outdir: Path, segment: Segment = WHOLE) -> Invocation:
        # `script` is this part's own plan (scaled with vu_scale); the segment only names its outputs
        results = outdir / f"jmeter{segment.suffix}.jtl"
        argv = [
            binary,
            "-n",
            "-t",
            str(script),
            "-l",
            str(results),
            "-j",
            str(outdir / f"jmeter{segment.suffix}.log"),
            "-Jjmeter.save.saveservice.output_format=csv",
            "-Jjmeter.save.saveservice.print_field_names=true",
            *SAVE_COLUMNS,
            "-Jsample_variables=trace_id",  # the trace id of a plan with trace context, as a JTL column
            "-Jsummariser.interval=5",
            "-Jjmeter.save.saveservice.autoflush=true",
        ]
        return Invocation(argv, [Output(results, JTL_CSV, segment.name)])

    def secret_file(self, values: Mapping[str, str]) -> bytes | None:
        """JMeter reads ${env:NAME} as the property perfhouse.env.NAME, from a properties file given with -q."""
        return jmeter_properties(values).encode("ascii") if values else None

    def secret_args(self, path: Path) -> list[str]:
        return ["-q", str(path)]

    def completed(self, exit_code: int) -> bool:
        return exit_code == 0

    script_suffixes: ClassVar[tuple[str, ...]] = (".jmx",)
    variable_flag: ClassVar[str] = "-J"

    def owns_script(self, text: str) -> bool:
        return "<jmeterTestPlan" in text[:4096]

    def script_facts(self, text: str, file: str) -> ScriptFacts:
        root = parse_plan(text, file)
        strings = tuple(dict.fromkeys((e.text or "").strip() for e in root.iter("stringProp") if e.text))
        return ScriptFacts(tuple(plan_requests(root)), strings)

    def script_variables(self, values: Mapping[str, str]) -> tuple[dict[str, str], bytes | None]:
        """-J values as a properties file (-q): in memory, or private and removed; never on the command line."""
        return {}, properties_file(values).encode("ascii") if values else None

    def script_invocation(self, binary: str, script: Path, outdir: Path, segment: Segment = WHOLE) -> Invocation:
        return self.invocation(binary, script, outdir, segment)

    def scale_script(self, text: str, segment: Segment, variables: Mapping[str, str]) -> str | None:
        return scale_plan(text, segment, variables)

    def script_verdicts(self, summary: Path) -> list[ThresholdVerdict]:
        return []  # a plan's assertions are checks on its samples, not verdicts on the run

    def stopped_early(self, console: str) -> str:
        return ""  # its generated scripts cannot stop on an SLO (abort_on_fail fails their generation)
