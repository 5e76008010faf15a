"""The journey spec: YAML loading with source positions, the typed model, and its validation.

Long because the model and its validation are one thing: each field is read where it is checked, so every
error names its file, line, column and field path.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from orchestrator.errors import SpecError, SpecErrors
from orchestrator.userscript import UserScript

# ---------------------------------------------------------------------------------------------
# Templated strings: literal text with ${name} references to variables or extracted values.

_REF = re.compile(r"\$\$|\$\{(env:)?([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Ref:
    """${name}: a variable or extracted value; ${env:NAME}: an environment variable of the run,
    resolved by the load tool at run time, so its value is in no script, file or warehouse row."""

    name: str
    env: bool = False


Part = str | Ref


@dataclass(frozen=True)
class Template:
    """A string from the spec, split into literal text and ${var} references; `$$` is a literal `$`."""

    parts: tuple[Part, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[Part] = []
        literal = ""
        pos = 0
        for m in _REF.finditer(text):
            literal += text[pos : m.start()]
            if m.group(2) is None:
                literal += "$"
            else:
                if literal:
                    parts.append(literal)
                    literal = ""
                parts.append(Ref(m.group(2), env=m.group(1) is not None))
            pos = m.end()
        literal += text[pos:]
        if literal or not parts:
            parts.append(literal)
        return cls(tuple(parts))

    @property
    def source(self) -> str:
        """The text as written in the spec."""
        return "".join(
            (f"${{env:{p.name}}}" if p.env else f"${{{p.name}}}") if isinstance(p, Ref) else p.replace("$", "$$")
            for p in self.parts
        )

    @property
    def refs(self) -> list[str]:
        """Names of the variables and extracted values it uses."""
        return [p.name for p in self.parts if isinstance(p, Ref) and not p.env]

    @property
    def env_refs(self) -> list[str]:
        return [p.name for p in self.parts if isinstance(p, Ref) and p.env]

    def render(self, values: dict[str, str]) -> str:
        return "".join(values[p.name] if isinstance(p, Ref) else p for p in self.parts)


# ---------------------------------------------------------------------------------------------
# The model.

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
EXECUTORS = ("constant_vus", "ramping_vus", "iterations", "constant_arrival_rate", "ramping_arrival_rate")
ARRIVAL_RATE = ("constant_arrival_rate", "ramping_arrival_rate")
PER_JOURNEY = "per_journey"  # the executor of a profile whose every journey has a shape of its own
PRESETS = ("smoke", "steady", "spike", "soak", "stress", "capacity")
# error_rate: the share of requests with a request error (a transport failure or a status the step does not
# expect); check_failure_rate: the share of requests with a failed check.
SLO_METRICS = ("p50", "p90", "p95", "p99", "avg", "max", "error_rate", "check_failure_rate", "throughput")
SLO_PERCENTILE = re.compile(r"p[1-9][0-9]?(\.[0-9]+)?")  # any percentile of duration: p75, p99.9
RATE_METRICS = ("error_rate", "check_failure_rate")


SERVICE_ENV_PREFIX = "PERFHOUSE_SERVICE_"  # + NAME: a service's base URL for a generated k6 script
SERVICE_PROPERTY_PREFIX = "perfhouse.service."  # + name: the same for a generated JMeter plan


def service_env(name: str) -> str:
    """The environment variable that retargets a service (api -> PERFHOUSE_SERVICE_API)."""
    return SERVICE_ENV_PREFIX + re.sub(r"[^A-Z0-9_]", "_", name.upper())


@dataclass(frozen=True)
class ThinkTime:
    min_s: float
    max_s: float

    @property
    def is_constant(self) -> bool:
        return self.min_s == self.max_s


@dataclass(frozen=True)
class Body:
    kind: Literal["json", "form", "raw"]
    json: Any = None
    form: tuple[tuple[str, Template], ...] = ()
    raw: Template | None = None
    content_type: str = ""  # "": no Content-Type header


CHECK_KINDS = ("status", "body_contains", "body_matches", "jsonpath", "header", "max_duration")


@dataclass(frozen=True)
class Check:
    """One check on a response. `target` is the text, regex, JSONPath or header name it looks at;
    `equals` the value expected there (None: it only has to exist)."""

    kind: Literal["status", "body_contains", "body_matches", "jsonpath", "header", "max_duration"]
    status: int = 0
    target: str = ""
    equals: str | None = None
    max_ms: float = 0.0
    name: str = ""  # free text naming the check in results; else `label` says what it checks

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.kind == "status":
            return f"status is {self.status}"
        if self.kind == "body_contains":
            return f"body contains {self.target}"
        if self.kind == "body_matches":
            return f"body matches {self.target}"
        if self.kind in ("jsonpath", "header"):
            what = "header " + self.target if self.kind == "header" else self.target
            return f"{what} exists" if self.equals is None else f"{what} equals {self.equals}"
        return f"duration under {self.max_ms:g} ms"

    @property
    def json_keys(self) -> tuple[str | int, ...]:
        return parse_jsonpath(self.target)


@dataclass(frozen=True)
class Extraction:
    var: str
    kind: Literal["jsonpath", "regex", "header"]
    expr: str

    @property
    def json_keys(self) -> tuple[str | int, ...]:
        return parse_jsonpath(self.expr)


@dataclass(frozen=True)
class Step:
    name: str
    service: str
    method: str
    path: Template
    query: tuple[tuple[str, Template], ...]
    headers: tuple[tuple[str, Template], ...]
    body: Body | None
    timeout_s: float
    checks: tuple[Check, ...]
    extract: tuple[Extraction, ...]
    think_time: ThinkTime | None
    group: str = ""  # a transaction: consecutive steps of one group are timed together
    label: str = ""  # free text naming the step in results (k6 `name` tag, JMeter sampler label)
    # statuses that are not request errors; () means the tools' default, 200-399 (checks do not change it)
    expected_statuses: tuple[int, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()  # extra tags of its requests (k6); JMeter keeps them as a comment

    @property
    def key(self) -> str:
        """The step as results name it: its label, else its name."""
        return self.label or self.name

    @property
    def templates(self) -> list[Template]:
        """Every templated string of the request: path, query, headers and body."""
        return [self.path, *(t for _, t in self.query), *(t for _, t in self.headers),
                *(t for _, t in _body_templates(self.body))]


@dataclass(frozen=True)
class Journey:
    name: str
    weight: int
    steps: tuple[Step, ...]
    data: str = ""  # name of the data set that gives each iteration a row
    label: str = ""  # free text naming the journey in results (k6 `journey` tag, JMeter thread group)
    think_time: ThinkTime | None = None  # after each iteration, after its last step
    group_think: tuple[tuple[str, ThinkTime], ...] = ()  # after a group, outside it (not in its duration)

    @property
    def key(self) -> str:
        """The journey as results name it: its label, else its name."""
        return self.label or self.name

    def after_group(self, group: str) -> ThinkTime | None:
        return dict(self.group_think).get(group)

    @property
    def segments(self) -> list[tuple[str, list[Step]]]:
        """Runs of consecutive steps with the same group ("" for steps outside any group)."""
        out: list[tuple[str, list[Step]]] = []
        for step in self.steps:
            if out and out[-1][0] == step.group:
                out[-1][1].append(step)
            else:
                out.append((step.group, [step]))
        return out


DATA_MODES = ("sequential", "random", "unique")


@dataclass(frozen=True)
class Dataset:
    """A CSV file of test data, read once at start; its header names the variables of a row.
    sequential: each iteration takes the next row; random: any row; unique: one row per VU."""

    name: str
    path: Path
    mode: str
    columns: tuple[str, ...]
    rows: int


@dataclass(frozen=True)
class Stage:
    duration_s: float
    target: int


@dataclass(frozen=True)
class Profile:
    """A load shape. Closed models count VUs (stage targets are VUs); arrival-rate models count
    journey iterations started per `time_unit_s` (stage targets are rates), whatever the VUs do."""

    name: str
    executor: str
    vus: int = 1
    duration_s: float = 0.0
    iterations: int = 0
    stages: tuple[Stage, ...] = ()
    rate: int = 0
    start_rate: int = 0
    time_unit_s: float = 1.0
    pre_allocated_vus: int = 0
    max_allocated_vus: int = 0
    preset: str = ""
    # journeys with a shape of their own (name -> profile); the others share this one by weight
    journeys: tuple[tuple[str, Profile], ...] = ()

    @property
    def is_arrival_rate(self) -> bool:
        return self.executor in ARRIVAL_RATE

    @property
    def shared(self) -> bool:
        """Does this profile itself give a shape, shared by weight among the journeys not listed?"""
        return self.executor != PER_JOURNEY

    def of(self, journey: str) -> Profile:
        """The profile that gives `journey` its load."""
        return dict(self.journeys).get(journey, self)

    @property
    def max_vus(self) -> int:
        own = sum(p.max_vus for _, p in self.journeys)
        if not self.shared:
            return own
        if self.is_arrival_rate:
            return own + self.max_allocated_vus
        return own + max([self.vus, *(s.target for s in self.stages)])

    @property
    def total_duration_s(self) -> float:
        own = [p.total_duration_s for _, p in self.journeys]
        if not self.shared:
            return max(own)
        if self.stages:
            return max([sum(s.duration_s for s in self.stages), *own])
        return max([self.duration_s, *own])


@dataclass(frozen=True)
class SLO:
    """A latency metric (ms) or a ratio (error_rate: request errors; check_failure_rate: requests with a failed
    check) that must stay below its threshold, or a throughput (requests/s) that must reach it; overall or per
    journey, step or service (journey and step as results name them: their labels, else their names)."""

    metric: str
    threshold: float
    journey: str = ""
    step: str = ""
    abort_on_fail: bool = False
    service: str = ""


@dataclass(frozen=True)
class Spec:
    name: str
    file: str
    services: dict[str, str]
    variables: dict[str, str]
    headers: tuple[tuple[str, Template], ...]
    journeys: tuple[Journey, ...]
    profiles: dict[str, Profile]
    slos: tuple[SLO, ...]
    datasets: dict[str, Dataset] = field(default_factory=dict)
    source_hash: str = ""
    # trace context: every request carries a W3C traceparent with a fresh trace id; trace_url links a trace id
    # to a tracing UI ({trace_id} marks where the id goes)
    trace: bool = False
    trace_url: str = ""
    positions: dict[str, tuple[int, int]] = field(default_factory=dict, compare=False, repr=False)
    # a team's own script run as it is (orchestrator.scripts): then no journeys, and one profile, its own load
    script: UserScript | None = None

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise SpecError(
                f"no profile named {name!r}{_suggest(name, self.profiles)}; "
                f"defined: {', '.join(self.profiles) or 'none'}",
                self.file,
                field="profiles",
            )
        return self.profiles[name]

    def env_names(self) -> list[str]:
        """Environment variables the journeys read (their values are given to the tools at run time)."""
        templates = [t for _, t in self.headers] + [t for j in self.journeys for st in j.steps for t in st.templates]
        return sorted({name for t in templates for name in t.env_refs})

    def step_services(self) -> dict[tuple[str, str], str]:
        """(journey, step) as results name them (their keys) → service."""
        return {(j.key, s.key): s.service for j in self.journeys for s in j.steps}

    def vus_per_journey(self, total: int) -> dict[str, int]:
        return split_by_weight(total, [(j.name, j.weight) for j in self.journeys])


def split_by_weight(total: int, weights: list[tuple[str, int]]) -> dict[str, int]:
    """Share `total` VUs between journeys by weight (largest remainder), at least one each.

    Closed-model tools run a journey per VU, so the mix is a share of VUs: with fewer VUs than
    journeys every journey still gets one, which the run records as its effective allocation.
    """
    if total < len(weights):
        total = len(weights)
    wsum = sum(w for _, w in weights)
    exact = [(name, total * w / wsum) for name, w in weights]
    alloc = {name: max(1, int(x)) for name, x in exact}
    remainders = sorted(exact, key=lambda nx: nx[1] - int(nx[1]), reverse=True)
    i = 0
    while sum(alloc.values()) < total:
        alloc[remainders[i % len(remainders)][0]] += 1
        i += 1
    while sum(alloc.values()) > total:
        name = max(alloc, key=lambda n: alloc[n])
        alloc[name] -= 1
    return alloc


# ---------------------------------------------------------------------------------------------
# Values.

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_JSONPATH_SEG = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^'\\]*)'\]|\[\"([^\"\\]*)\"\]")


def parse_duration(value: Any) -> float:
    """'1m30s', '500ms', '2h', or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s, found {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"expected a non-negative duration, found {value}")
        return float(value)
    text = str(value).strip()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_S[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"expected a duration like 30s, 1m30s or 250ms, found {value!r}")
    return round(total, 9)  # 700ms is 0.7, not 0.7000000000000001


def parse_jsonpath(expr: str) -> tuple[str | int, ...]:
    """A JSONPath of member and index steps ($.a.b[0]['c d']) → its keys; others are refused."""
    if not expr.startswith("$"):
        raise ValueError(f"a JSONPath starts with $, found {expr!r}")
    keys: list[str | int] = []
    pos = 1
    for m in _JSONPATH_SEG.finditer(expr, 1):
        if m.start() != pos:
            break
        name, index, q1, q2 = m.groups()
        keys.append(int(index) if index is not None else (name or q1 or q2 or ""))
        pos = m.end()
    if pos != len(expr):
        raise ValueError(
            f"only member and index steps ($.a.b[0]) are supported, found {expr[pos:]!r} in {expr!r}"
        )
    if not keys:
        raise ValueError(f"the JSONPath {expr!r} selects the whole document")
    return tuple(keys)


def _keys(value: Any) -> tuple[Any, ...]:
    """The keys of a mapping the spec gives (which `_Reader.mapping` allows); none when it is not one, which
    `mapping` then reports."""
    return tuple(value) if isinstance(value, dict) else ()


def _suggest(name: str, choices: Any) -> str:
    import difflib  # a mistake's suggestion only

    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------------------------------------
# YAML with positions: every mapping key and value remembers its line and column.


# libyaml's parser when PyYAML has it (several times faster); the same nodes, with the same positions
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose(text: str, file: str) -> tuple[Any, dict[str, tuple[int, int]]]:
    try:
        try:
            root = yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:  # said as the pure-Python parser says it
            root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise SpecError(f"not valid YAML: {exc.problem}", file, line, col) from None
    positions: dict[str, tuple[int, int]] = {}
    if root is None:
        raise SpecError("the spec is empty", file, 1, 1)
    constructor = yaml.SafeLoader("")

    def build(node: yaml.Node, path: str) -> Any:
        positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(constructor.construct_object(key_node))
                child = f"{path}.{key}" if path else key
                if key in out:
                    line = key_node.start_mark.line + 1
                    raise SpecError("duplicate key", file, line, key_node.start_mark.column + 1, child)
                out[key] = build(value_node, child)
                # point at the key: "field: value" errors read best at the field's name
                positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        return constructor.construct_object(node)

    return build(root, ""), positions


class _Reader:
    """Typed access to the composed YAML that turns every mistake into a located SpecError."""

    def __init__(self, file: str, positions: dict[str, tuple[int, int]]):
        self.file = file
        self.positions = positions
        self.errors: list[SpecError] = []  # every item's first mistake (collecting), in the order found
        self.failed: set[str] = set()  # names of items that failed: mistakes that only repeat them are not told

    @contextmanager
    def collecting(self, name: Any = None) -> Iterator[None]:
        """One item of the spec (a service, a journey, a step, a profile, an SLO): its first mistake is kept and
        the rest of the item skipped, so every item's mistake is told in one round; a mistake that only follows
        from an item already failed (naming it) is left out."""
        try:
            yield
        except SpecError as exc:
            if not any(repr(n) in exc.reason for n in self.failed):
                self.errors.append(exc)
            if isinstance(name, str) and name:
                self.failed.add(name)

    def raise_collected(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise SpecErrors(self.errors)

    def fail(self, path: str, message: str) -> SpecError:
        probe = path
        while probe and probe not in self.positions:
            probe = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", probe)
        line, col = self.positions.get(probe, (0, 0))
        return SpecError(message, self.file, line, col, path)

    def mapping(
        self, value: Any, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, found {_kind(value)}")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    f"{path}.{key}" if path else key,
                    f"unknown field {key!r}{_suggest(key, allowed)}; allowed: {', '.join(allowed)}",
                )
        for key in required:
            if key not in value:
                raise self.fail(path, f"missing required field {key!r}")
        return value

    def string(self, value: Any, path: str) -> str:
        if isinstance(value, bool) or value is None or isinstance(value, dict | list):
            raise self.fail(path, f"expected a string, found {_kind(value)}")
        return str(value)

    def name(self, value: Any, path: str) -> str:
        text = self.string(value, path)
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", text):
            raise self.fail(path, f"expected a name of letters, digits, _ . -, found {text!r}")
        return text

    def integer(self, value: Any, path: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, found {_kind(value)}")
        if value < minimum:
            raise self.fail(path, f"expected an integer of at least {minimum}, found {value}")
        return value

    def duration(self, value: Any, path: str) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.fail(path, str(exc)) from None

    def template(self, value: Any, path: str) -> Template:
        return Template.parse(self.string(value, path))

    def pairs(self, value: Any, path: str) -> tuple[tuple[str, Template], ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping of names to strings, found {_kind(value)}")
        for key in value:
            if str(key) == "" or key is None:
                raise self.fail(path, "a name here cannot be empty")
        return tuple((str(k), self.template(v, f"{path}.{k}")) for k, v in value.items())

    def headers(self, value: Any, path: str, variables: dict[str, str] | None = None) -> tuple[tuple[str, Template], ...]:
        """HTTP headers: names that are HTTP tokens, values of visible ASCII, spaces and tabs. A CR or LF would end
        the header (k6 fails the request, Locust raises), and the tools encode other bytes each their own way
        (Locust as Latin-1, JMeter as `?`), so the same spec would send different requests: refused, in the text
        and in the spec variables the value names (extracted and environment values are known at run time only)."""
        pairs = self.pairs(value, path)
        for name, template in pairs:
            where = f"{path}.{name}"
            if not _HEADER_NAME.fullmatch(name):
                raise self.fail(where, f"the header name {name!r} is not an HTTP token (letters, digits and "
                                       "!#$%&'*+-.^_`|~ only)")
            for part in template.parts:
                if isinstance(part, Ref):
                    if part.env or part.name not in (variables or {}):
                        continue
                    text, origin = (variables or {})[part.name], f" (from variable {part.name!r})"
                else:
                    text, origin = part, ""
                if problem := _header_value_problem(text):
                    raise self.fail(where, problem + origin)
        return pairs


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _header_value_problem(text: str) -> str:
    """Why a header value cannot be sent the same way by every tool, or ''."""
    if bad := _HEADER_CONTROL.search(text):
        return (f"the header value holds the control character {bad[0]!r} at {bad.start()} (CR, LF and NUL would "
                "break the request)")
    if bad := _NON_ASCII.search(text):
        return (f"the header value holds the non-ASCII character {bad[0]!r}, which k6, JMeter and Locust would each "
                "send differently; percent-encode it or use the RFC 8187 form (name*=UTF-8''...)")
    return ""


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", bool: "a boolean", str: "a string"}.get(
        type(value), f"a {type(value).__name__}"
    )


# ---------------------------------------------------------------------------------------------
# Loading.

_TOP = ("name", "services", "variables", "defaults", "data", "journeys", "profiles", "slos", "trace")
TRACE_ID = "{trace_id}"  # where a trace URL template puts the trace id
TRACE_VARIABLES = ("trace_id", "span_id")
_JOURNEY = ("name", "label", "weight", "data", "steps", "think_time", "groups")
_STEP = (
    "name",
    "service",
    "method",
    "path",
    "query",
    "headers",
    "body",
    "timeout",
    "checks",
    "extract",
    "think_time",
    "group",
    "label",
    "expected_statuses",
    "tags",
)
# tags that k6 or perfhouse set on every request themselves
RESERVED_TAGS = ("journey", "step", "service", "name", "method", "status", "url", "group", "scenario",
                 "expected_response", "error", "error_code", "proto", "subproto", "tls_version", "check", "iter", "vu",
                 "ip", "ocsp_status", "generator")


def load_spec(path: str | Path) -> Spec:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read the spec: {exc.strerror}", file) from None
    return parse_spec(text, file)


def parse_spec(text: str, file: str = "<spec>") -> Spec:
    """The spec in `text`; every mistake found is raised at once (SpecErrors when more than one), each located."""
    data, positions = _compose(text, file)
    r = _Reader(file, positions)
    spec = None
    with r.collecting():
        spec = _parse(text, file, data, positions, r)
    r.raise_collected()
    assert spec is not None
    return spec


def _parse(text: str, file: str, data: Any, positions: dict[str, tuple[int, int]], r: _Reader) -> Spec:
    top = r.mapping(data, "", _TOP, required=("name", "services", "journeys", "profiles"))
    name = r.name(top["name"], "name")

    services_raw = r.mapping(top["services"], "services", _keys(top["services"]))
    services: dict[str, str] = {}
    for sname, url in services_raw.items():
        with r.collecting(sname):
            url_s = r.string(url, f"services.{sname}").rstrip("/")
            if "${" in url_s:
                raise r.fail(f"services.{sname}", "a base URL is literal text; retarget a service at run time with "
                                                  "--service NAME=URL or the generated scripts' "
                                                  "PERFHOUSE_SERVICE_<NAME>")
            if not re.match(r"https?://[^/\s]+", url_s):
                raise r.fail(f"services.{sname}", f"expected a base URL like http://host:port, found {url!r}")
            services[r.name(sname, f"services.{sname}")] = url_s
    if not services:
        r.raise_collected()  # the services' own mistakes say why none is left
        raise r.fail("services", "define at least one service")
    for sname in services:
        same = [other for other in services if service_env(other) == service_env(sname)]
        if len(same) > 1:
            raise r.fail(f"services.{same[1]}", f"services {same[0]!r} and {same[1]!r} would both be retargeted by "
                                                f"{service_env(sname)}; rename one")

    variables_raw = top.get("variables") or {}
    r.mapping(variables_raw, "variables", _keys(variables_raw))
    variables: dict[str, str] = {}
    for key, value in variables_raw.items():
        tmpl = r.template(value, f"variables.{key}")
        if tmpl.refs or tmpl.env_refs:
            raise r.fail(f"variables.{key}", "a variable is literal text (use ${env:NAME} where it is used, "
                                             "or $$ for a literal $)")
        variables[r.name(key, f"variables.{key}")] = tmpl.render({})
        if str(key).startswith(SERVICE_PROPERTY_PREFIX):
            raise r.fail(f"variables.{key}", f"names starting {SERVICE_PROPERTY_PREFIX} hold the services' URLs in "
                                             "generated JMeter plans; choose another name")

    defaults = r.mapping(top.get("defaults") or {}, "defaults", ("headers", "timeout", "think_time"))
    default_headers = r.headers(defaults.get("headers"), "defaults.headers", variables)
    default_timeout = r.duration(defaults.get("timeout", "30s"), "defaults.timeout")
    default_think = _think_time(r, defaults.get("think_time"), "defaults.think_time")

    datasets_raw = top.get("data") or {}
    r.mapping(datasets_raw, "data", _keys(datasets_raw))
    datasets = {str(k): _dataset(r, str(k), v, f"data.{k}", Path(file).parent) for k, v in datasets_raw.items()}

    journeys_raw = top["journeys"]
    if not isinstance(journeys_raw, list) or not journeys_raw:
        raise r.fail("journeys", "expected a non-empty list of journeys")
    journeys: list[Journey] = []
    for ji, jraw in enumerate(journeys_raw):
        with r.collecting(jraw.get("name") if isinstance(jraw, dict) else None):
            _journey(r, jraw, ji, journeys, variables, datasets, services, default_timeout, default_think)

    profiles_raw = r.mapping(top["profiles"], "profiles", _keys(top["profiles"]))
    if not profiles_raw:
        raise r.fail("profiles", "define at least one load profile")
    profiles: dict[str, Profile] = {}
    for k, v in profiles_raw.items():
        with r.collecting():
            profiles[str(k)] = _profile(r, str(k), v, f"profiles.{k}", journeys)

    slos_raw = top.get("slos") or []
    if not isinstance(slos_raw, list):
        raise r.fail("slos", f"expected a list of SLOs, found {_kind(slos_raw)}")
    found: list[SLO] = []
    for i, raw in enumerate(slos_raw):
        with r.collecting():
            found.append(_slo(r, raw, f"slos[{i}]", journeys, services))
    slos = tuple(found)

    trace, trace_url = _trace(r, top.get("trace", False))
    if trace:  # generated JMeter plans hold the trace context in these variables
        for ji, journey in enumerate(journeys):
            for si, st in enumerate(journey.steps):
                for e in st.extract:
                    if e.var in TRACE_VARIABLES:
                        raise r.fail(f"journeys[{ji}].steps[{si}].extract.{e.var}",
                                     f"{e.var} holds the trace context when trace: is on; choose another name")
        for key in TRACE_VARIABLES:
            if key in variables:
                raise r.fail(f"variables.{key}", f"{key} holds the trace context when trace: is on; choose another name")
            for dname, ds in datasets.items():
                if key in ds.columns:
                    raise r.fail(f"data.{dname}", f"its column {key} would hide the trace context when trace: is on; "
                                                  "rename the column")
    for hname, tmpl in default_headers:
        _check_refs(r, tmpl, f"defaults.headers.{hname}", set(variables))
        if trace and hname.lower() == "traceparent":
            raise r.fail(f"defaults.headers.{hname}", "trace: sets the traceparent header of every request")
    return Spec(
        name=name,
        file=file,
        services=services,
        variables=variables,
        headers=default_headers,
        journeys=tuple(journeys),
        profiles=profiles,
        slos=slos,
        datasets=datasets,
        source_hash=hashlib.sha256(text.encode()).hexdigest(),
        positions=positions,
        trace=trace,
        trace_url=trace_url,
    )


def _journey(r: _Reader, jraw: Any, ji: int, journeys: list[Journey], variables: dict[str, str],
             datasets: dict[str, Dataset], services: dict[str, str], default_timeout: float,
             default_think: ThinkTime | None) -> None:
    """Journey `ji` of the spec, appended to `journeys`; each of its steps' first mistake is collected."""
    jp = f"journeys[{ji}]"
    j = r.mapping(jraw, jp, _JOURNEY, required=("name", "steps"))
    jname = r.name(j["name"], f"{jp}.name")
    if any(x.name == jname for x in journeys):
        raise r.fail(f"{jp}.name", f"a journey named {jname!r} is already defined")
    jlabel = _label(r, j, jp)
    if any(x.key == (jlabel or jname) for x in journeys):
        raise r.fail(f"{jp}.label" if jlabel else f"{jp}.name",
                     f"another journey is already reported as {jlabel or jname!r}")
    weight = r.integer(j.get("weight", 1), f"{jp}.weight", minimum=1)
    if not isinstance(j["steps"], list) or not j["steps"]:
        raise r.fail(f"{jp}.steps", "expected a non-empty list of steps")
    known = set(variables)
    data = r.string(j["data"], f"{jp}.data") if "data" in j else ""
    if data:
        if data not in datasets:
            raise r.fail(f"{jp}.data", f"no data set named {data!r}{_suggest(data, datasets)}")
        known.update(datasets[data].columns)
    steps: list[Step] = []
    for si, sraw in enumerate(j["steps"]):
        known.update(str(k) for k in _keys(sraw.get("extract") if isinstance(sraw, dict) else None))  # even failed
        with r.collecting():
            step = _step(r, sraw, f"{jp}.steps[{si}]", services, default_timeout, default_think, known, variables)
            if any(x.name == step.name for x in steps):
                raise r.fail(f"{jp}.steps[{si}].name", f"a step named {step.name!r} is already in {jname!r}")
            if any(x.key == step.key for x in steps):
                raise r.fail(f"{jp}.steps[{si}].label" if step.label else f"{jp}.steps[{si}].name",
                             f"another step of {jname!r} is already reported as {step.key!r}")
            steps.append(step)
    if len(steps) < len(j["steps"]):  # a step failed: what depends on the whole journey is not judged
        r.failed.add(jname)
        return
    journey = Journey(jname, weight, tuple(steps), data, jlabel)
    groups = [g for g, _ in journey.segments if g]
    if len(groups) != len(set(groups)):
        again = next(g for g in groups if groups.count(g) > 1)
        raise r.fail(f"{jp}.steps", f"the steps of group {again!r} must follow one another")
    group_think: list[tuple[str, ThinkTime]] = []
    raw_groups = j.get("groups") or {}
    for gname, graw in r.mapping(raw_groups, f"{jp}.groups", _keys(raw_groups)).items():
        gp = f"{jp}.groups.{gname}"
        if gname not in groups:
            raise r.fail(gp, f"no step of {jname!r} is in a group {gname!r}{_suggest(str(gname), groups)}")
        g = r.mapping(graw, gp, ("think_time",), required=("think_time",))
        think = _think_time(r, g["think_time"], f"{gp}.think_time")
        if think is not None:
            group_think.append((str(gname), think))
    journey = replace(journey, think_time=_think_time(r, j.get("think_time"), f"{jp}.think_time"),
                      group_think=tuple(group_think))
    journeys.append(journey)


def _trace(r: _Reader, raw: Any) -> tuple[bool, str]:
    """`trace: true`, or `trace: {url: TEMPLATE}` (which also turns it on): whether requests carry a traceparent,
    and the URL template of a trace."""
    if isinstance(raw, bool):
        return raw, ""
    t = r.mapping(raw, "trace", ("enabled", "url"))
    enabled = t.get("enabled", True)
    if not isinstance(enabled, bool):
        raise r.fail("trace.enabled", f"expected true or false, found {_kind(enabled)}")
    url = r.string(t["url"], "trace.url") if "url" in t else ""
    if url and (TRACE_ID not in url or not re.match(r"https?://[^/\s]+", url)):
        raise r.fail("trace.url", f"expected a URL with {TRACE_ID} where the trace id goes, such as "
                                  f"https://tempo.example/trace/{TRACE_ID}; found {url!r}")
    return enabled, url


def _dataset(r: _Reader, name: str, raw: Any, path: str, base: Path) -> Dataset:
    d = r.mapping(raw, path, ("file", "mode"), required=("file",))
    r.name(name, path)
    file = base / r.string(d["file"], f"{path}.file")
    mode = r.string(d.get("mode", "sequential"), f"{path}.mode")
    if mode not in DATA_MODES:
        raise r.fail(f"{path}.mode", f"expected one of {', '.join(DATA_MODES)}, found {mode!r}")
    try:
        with open(file, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            rows = sum(1 for row in reader if row)
    except OSError as exc:
        raise r.fail(f"{path}.file", f"cannot read the CSV file {file}: {exc.strerror}") from None
    for column in header:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", column):
            raise r.fail(f"{path}.file", f"{file}:1: the header names variables; {column!r} is not a variable name")
    if not header or rows == 0:
        raise r.fail(f"{path}.file", f"{file}: expected a header row and at least one data row")
    return Dataset(name, file.resolve(), mode, tuple(header), rows)


def _think_time(r: _Reader, raw: Any, path: str) -> ThinkTime | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        seconds = r.duration(raw, path)
        return ThinkTime(seconds, seconds)
    t = r.mapping(raw, path, ("constant", "uniform"))
    if len(t) != 1:
        raise r.fail(path, "give exactly one of constant: DURATION or uniform: [MIN, MAX]")
    if "constant" in t:
        seconds = r.duration(t["constant"], f"{path}.constant")
        return ThinkTime(seconds, seconds)
    bounds = t["uniform"]
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise r.fail(f"{path}.uniform", "expected [MIN, MAX]")
    lo, hi = (r.duration(b, f"{path}.uniform[{i}]") for i, b in enumerate(bounds))
    if hi < lo:
        raise r.fail(f"{path}.uniform", f"MAX ({hi:g}s) is below MIN ({lo:g}s)")
    return ThinkTime(lo, hi)


def _check_refs(r: _Reader, tmpl: Template, path: str, known: set[str]) -> None:
    for ref in tmpl.refs:
        if ref not in known:
            raise r.fail(
                path,
                f"${{{ref}}} is not a variable or a value extracted by an earlier step{_suggest(ref, known)}",
            )


def _step(
    r: _Reader,
    raw: Any,
    path: str,
    services: dict[str, str],
    default_timeout: float,
    default_think: ThinkTime | None,
    known: set[str],
    variables: dict[str, str],
) -> Step:
    s = r.mapping(raw, path, _STEP, required=("name", "path"))
    name = r.name(s["name"], f"{path}.name")
    service = r.string(s.get("service", next(iter(services))), f"{path}.service")
    if service not in services:
        raise r.fail(f"{path}.service", f"no service named {service!r}{_suggest(service, services)}")
    method = r.string(s.get("method", "GET"), f"{path}.method").upper()
    if method not in METHODS:
        raise r.fail(f"{path}.method", f"expected one of {', '.join(METHODS)}, found {method!r}")
    url_path = r.template(s["path"], f"{path}.path")
    if not url_path.parts or not (isinstance(url_path.parts[0], str) and url_path.parts[0].startswith("/")):
        raise r.fail(f"{path}.path", "a path starts with /")
    for part in url_path.parts:
        if isinstance(part, str) and (bad := re.search(r"%(?![0-9A-Fa-f]{2})", part)):
            raise r.fail(f"{path}.path", f"{part[bad.start():bad.start() + 3]!r} is not a percent-escape %XX; "
                                         "write %25 for a literal %")
    query = r.pairs(s.get("query"), f"{path}.query")
    headers = r.headers(s.get("headers"), f"{path}.headers", variables)
    body = _body(r, s.get("body"), f"{path}.body") if "body" in s else None
    for label, tmpl in [
        ("path", url_path),
        *((f"query.{k}", v) for k, v in query),
        *((f"headers.{k}", v) for k, v in headers),
        *_body_templates(body),
    ]:
        _check_refs(r, tmpl, f"{path}.{label}", known)

    checks: list[Check] = []
    raw_checks = s.get("checks") or []
    if not isinstance(raw_checks, list):
        raise r.fail(f"{path}.checks", f"expected a list of checks, found {_kind(raw_checks)}")
    for ci, craw in enumerate(raw_checks):
        cp = f"{path}.checks[{ci}]"
        c = dict(r.mapping(craw, cp, (*CHECK_KINDS, "name")))
        check_name = _label(r, c, cp, "name")
        c.pop("name", None)
        if len(c) != 1:
            raise r.fail(cp, f"give exactly one of {', '.join(CHECK_KINDS)} per check")
        kind, value = next(iter(c.items()))
        kp = f"{cp}.{kind}"
        if kind == "status":
            checks.append(Check("status", status=r.integer(value, kp, minimum=100)))
        elif kind == "body_contains":
            checks.append(Check("body_contains", target=_constant(r, value, kp, variables)))
        elif kind == "body_matches":
            checks.append(Check("body_matches", target=_regex(r, value, kp, groups=None)))
        elif kind in ("jsonpath", "header"):
            key = "path" if kind == "jsonpath" else "name"
            spec_ = r.mapping(value, kp, (key, "equals", "exists"), required=(key,))
            target = r.string(spec_[key], f"{kp}.{key}")
            if kind == "jsonpath":
                try:
                    parse_jsonpath(target)
                except ValueError as exc:
                    raise r.fail(f"{kp}.path", str(exc)) from None
            if ("equals" in spec_) == ("exists" in spec_) or spec_.get("exists", True) is not True:
                raise r.fail(kp, "give either equals: VALUE or exists: true")
            equals = _constant(r, spec_["equals"], f"{kp}.equals", variables) if "equals" in spec_ else None
            checks.append(Check(kind, target=target, equals=equals))
        else:
            checks.append(Check("max_duration", max_ms=r.duration(value, kp) * 1000))
        checks[-1] = replace(checks[-1], name=check_name)
        if any(other.label == checks[-1].label for other in checks[:-1]):
            raise r.fail(f"{cp}.name" if check_name else cp, f"another check of this step is named "
                                                             f"{checks[-1].label!r}; give each a name of its own")

    extracts: list[Extraction] = []
    raw_extract = s.get("extract") or {}
    r.mapping(raw_extract, f"{path}.extract", _keys(raw_extract))
    for var, eraw in raw_extract.items():
        ep = f"{path}.extract.{var}"
        r.name(var, ep)
        e = r.mapping(eraw, ep, ("jsonpath", "regex", "header"))
        if len(e) != 1:
            raise r.fail(ep, "give exactly one of jsonpath, regex, header")
        kind, expr = next(iter(e.items()))
        expr = r.string(expr, f"{ep}.{kind}")
        if kind == "jsonpath":
            try:
                parse_jsonpath(expr)
            except ValueError as exc:
                raise r.fail(f"{ep}.jsonpath", str(exc)) from None
        elif kind == "regex":
            _regex(r, expr, f"{ep}.regex", groups=1)
        extracts.append(Extraction(str(var), kind, expr))

    timeout = r.duration(s["timeout"], f"{path}.timeout") if "timeout" in s else default_timeout
    think = _think_time(r, s["think_time"], f"{path}.think_time") if "think_time" in s else default_think
    group = r.name(s["group"], f"{path}.group") if "group" in s else ""
    expected: list[int] = []
    if "expected_statuses" in s:
        raw_expected = s["expected_statuses"]
        items = raw_expected if isinstance(raw_expected, list) else [raw_expected]
        if not items:
            raise r.fail(f"{path}.expected_statuses", "expected a status or a non-empty list of statuses")
        expected = [r.integer(v, f"{path}.expected_statuses[{i}]", minimum=100) for i, v in enumerate(items)]
        if any(v > 599 for v in expected):
            raise r.fail(f"{path}.expected_statuses", f"HTTP statuses lie in 100-599, found {max(expected)}")
    tags: list[tuple[str, str]] = []
    raw_tags = s.get("tags") or {}
    for tag, value in r.mapping(raw_tags, f"{path}.tags", _keys(raw_tags)).items():
        tp = f"{path}.tags.{tag}"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(tag)):
            raise r.fail(tp, f"a tag name is letters, digits and _, found {tag!r}")
        if tag in RESERVED_TAGS:
            raise r.fail(tp, f"{tag!r} is a tag that k6 or perfhouse sets itself; reserved: {', '.join(RESERVED_TAGS)}")
        text = r.string(value, tp)
        if any(not ch.isprintable() for ch in text):
            raise r.fail(tp, "a tag's value is printable text on one line")
        tags.append((str(tag), text))
    return Step(
        name, service, method, url_path, query, headers, body, timeout, tuple(checks), tuple(extracts), think, group,
        _label(r, s, path), tuple(sorted(set(expected))), tuple(tags),
    )


def _label(r: _Reader, raw: dict, path: str, key: str = "label") -> str:
    """Free text (printable, on one line) naming a step, journey or check in results."""
    if key not in raw:
        return ""
    text = r.string(raw[key], f"{path}.{key}")
    if not text.strip() or text != text.strip() or any(not ch.isprintable() for ch in text):
        raise r.fail(f"{path}.{key}", f"a {key} here is printable text on one line, without leading or trailing "
                                      "spaces")
    return text


def _constant(r: _Reader, value: Any, path: str, variables: dict[str, str]) -> str:
    """Text a check compares with: literal, or spec variables (constants, so both tools compare with
    the same text); values known only at run time cannot be compared with portably."""
    tmpl = r.template(value, path)
    for ref in tmpl.env_refs:
        raise r.fail(path, f"${{env:{ref}}}: a check compares with literal text or spec variables, not the "
                           "environment (use $$ for a literal $)")
    for ref in tmpl.refs:
        if ref not in variables:
            raise r.fail(path, f"${{{ref}}}: a check compares with literal text or spec variables, not values "
                               f"known only at run time{_suggest(ref, variables)} (use $$ for a literal $)")
    return tmpl.render(variables)


def _regex(r: _Reader, value: Any, path: str, groups: int | None) -> str:
    """A regular expression (the subset JavaScript, Java and Perl5 read alike is the portable one)."""
    text = r.string(value, path)
    try:
        found = re.compile(text).groups
    except re.error as exc:
        raise r.fail(path, f"not a valid regular expression: {exc}") from None
    if groups is not None and found != groups:
        raise r.fail(path, f"expected exactly {groups} capturing group, found {found}")
    return text


def _body(r: _Reader, raw: Any, path: str) -> Body:
    b = r.mapping(raw, path, ("json", "form", "raw", "content_type"))
    kinds = [k for k in ("json", "form", "raw") if k in b]
    if len(kinds) != 1:
        raise r.fail(path, "give exactly one of json, form, raw")
    # content_type: "" (or null) sends no Content-Type header; left out, the body kind's usual one
    defaults = {"json": "application/json", "form": "application/x-www-form-urlencoded", "raw": "text/plain"}
    ctype = defaults[kinds[0]]
    if "content_type" in b:
        ctype = "" if b["content_type"] is None else r.string(b["content_type"], f"{path}.content_type").strip()
        if not ctype and kinds[0] == "form":
            raise r.fail(f"{path}.content_type", "a form body is always sent with a Content-Type (both tools add one)")
    if kinds[0] == "json":
        return Body("json", json=b["json"], content_type=ctype)
    if kinds[0] == "form":
        return Body("form", form=r.pairs(b["form"], f"{path}.form"), content_type=ctype)
    return Body("raw", raw=r.template(b["raw"], f"{path}.raw"), content_type=ctype)


def _body_templates(body: Body | None) -> Iterator[tuple[str, Template]]:
    if body is None:
        return
    if body.kind == "form":
        yield from ((f"body.form.{k}", v) for k, v in body.form)
    elif body.kind == "raw" and body.raw is not None:
        yield "body.raw", body.raw
    else:
        for i, text in enumerate(_json_strings(body.json)):
            yield f"body.json[{i}]", Template.parse(text)


def _json_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _json_strings(v)


_PROFILE_FIELDS = ("executor", "preset", "vus", "duration", "iterations", "stages", "rate", "start_rate",
                   "time_unit", "pre_allocated_vus", "max_vus", "ramp", "step", "base", "journeys")


def _profile(r: _Reader, name: str, raw: Any, path: str, journeys: list[Journey] | None = None) -> Profile:
    """A load profile; with `journeys` (the spec's), it may give some or all of them a shape of their own."""
    p = dict(r.mapping(raw, path, _PROFILE_FIELDS if journeys is not None else _PROFILE_FIELDS[:-1]))
    own: list[tuple[str, Profile]] = []
    if journeys is not None and "journeys" in p:
        names = [j.name for j in journeys]
        raw_own = p.pop("journeys")
        for jname, jraw in r.mapping(raw_own, f"{path}.journeys", _keys(raw_own)).items():
            if jname not in names:
                raise r.fail(f"{path}.journeys.{jname}", f"no journey named {jname!r}{_suggest(str(jname), names)}")
            own.append((str(jname), _profile(r, f"{name}.{jname}", jraw, f"{path}.journeys.{jname}")))
        if not p:
            missing = [n for n in names if n not in dict(own)]
            if missing:
                raise r.fail(f"{path}.journeys", f"journey {missing[0]!r} has no load: give it a shape here, or give "
                                                 "the profile an executor or preset that the others share")
            return Profile(name, PER_JOURNEY, journeys=tuple(own))
        if len(own) == len(names):
            raise r.fail(path, "every journey has a shape of its own: the profile's executor or preset would give "
                               "no load")
    if own:
        return replace(_profile(r, name, p, path), journeys=tuple(own))
    if ("executor" in p) == ("preset" in p):
        raise r.fail(path, "give either executor: (constant_vus, ramping_vus, iterations, constant_arrival_rate, "
                           "ramping_arrival_rate) or preset: (smoke, steady, spike, soak, stress, capacity)")
    if "preset" in p:
        return _preset(r, name, p, path)
    executor = r.string(p["executor"], f"{path}.executor")
    if executor not in EXECUTORS:
        raise r.fail(
            f"{path}.executor",
            f"expected one of {', '.join(EXECUTORS)}, found {executor!r}{_suggest(executor, EXECUTORS)}",
        )
    allowed = {
        "constant_vus": ("vus", "duration"),
        "iterations": ("vus", "iterations"),
        "ramping_vus": ("stages",),
        "constant_arrival_rate": ("rate", "time_unit", "duration", "pre_allocated_vus", "max_vus"),
        "ramping_arrival_rate": ("start_rate", "time_unit", "stages", "pre_allocated_vus", "max_vus"),
    }[executor]
    for key in p:
        if key not in (*allowed, "executor"):
            raise r.fail(f"{path}.{key}", f"{executor} takes {', '.join(allowed)}; not {key!r}")
    vus = r.integer(p.get("vus", 1), f"{path}.vus", minimum=1)
    if executor == "constant_vus":
        if "duration" not in p:
            raise r.fail(path, "missing required field 'duration'")
        return Profile(name, executor, vus=vus, duration_s=r.duration(p["duration"], f"{path}.duration"))
    if executor == "iterations":
        iterations = r.integer(p.get("iterations", 1), f"{path}.iterations", minimum=1)
        return Profile(name, executor, vus=vus, iterations=iterations)
    stages = _stages(r, p, path) if "ramping" in executor else ()
    if executor == "ramping_vus":
        return Profile(name, executor, vus=0, stages=stages)
    time_unit = r.duration(p.get("time_unit", "1s"), f"{path}.time_unit")
    if time_unit <= 0:
        raise r.fail(f"{path}.time_unit", "a time unit is longer than zero")
    pre = r.integer(p.get("pre_allocated_vus", 1), f"{path}.pre_allocated_vus", minimum=1)
    cap = r.integer(p.get("max_vus", pre), f"{path}.max_vus", minimum=pre)
    if executor == "constant_arrival_rate":
        for key in ("rate", "duration"):
            if key not in p:
                raise r.fail(path, f"missing required field {key!r}")
        return Profile(name, executor, rate=r.integer(p["rate"], f"{path}.rate", minimum=1),
                       duration_s=r.duration(p["duration"], f"{path}.duration"), time_unit_s=time_unit,
                       pre_allocated_vus=pre, max_allocated_vus=cap)
    return Profile(name, executor, start_rate=r.integer(p.get("start_rate", 0), f"{path}.start_rate"),
                   stages=stages, time_unit_s=time_unit, pre_allocated_vus=pre, max_allocated_vus=cap)


def _stages(r: _Reader, p: dict, path: str) -> tuple[Stage, ...]:
    stages_raw = p.get("stages")
    if not isinstance(stages_raw, list) or not stages_raw:
        raise r.fail(f"{path}.stages", "expected a non-empty list of {duration, target}")
    stages = []
    for i, sraw in enumerate(stages_raw):
        sp = f"{path}.stages[{i}]"
        st = r.mapping(sraw, sp, ("duration", "target"), required=("duration", "target"))
        stages.append(Stage(r.duration(st["duration"], f"{sp}.duration"), r.integer(st["target"], f"{sp}.target")))
    return tuple(stages)


def _preset(r: _Reader, name: str, p: dict, path: str) -> Profile:
    """The named shapes, written out as VU stages so both tools get the same curve.

    smoke: 1 VU (or vus) for 30s. steady/soak: ramp to vus over `ramp`, hold for `duration`
    (soak's default duration is 2h). spike: hold `base` (10 % of vus), jump to vus, hold, drop back.
    stress: stairs at 25/50/75/100 % of vus, each ramped over `ramp` and held for `step`.
    capacity: stairs at 10/25/50/100 % of the peak vus, each held for `step`.
    """
    preset = r.string(p["preset"], f"{path}.preset")
    if preset not in PRESETS:
        raise r.fail(f"{path}.preset", f"expected one of {', '.join(PRESETS)}, found {preset!r}"
                                       f"{_suggest(preset, PRESETS)}")
    allowed = {"smoke": ("vus", "duration"), "steady": ("vus", "duration", "ramp"),
               "soak": ("vus", "duration", "ramp"), "spike": ("vus", "base", "duration", "ramp"),
               "stress": ("vus", "ramp", "step"), "capacity": ("vus", "step", "ramp")}[preset]
    for key in p:
        if key not in (*allowed, "preset"):
            raise r.fail(f"{path}.{key}", f"preset {preset} takes {', '.join(allowed)}; not {key!r}")
    if preset != "smoke" and "vus" not in p:
        raise r.fail(path, f"preset {preset} needs vus (its peak)")
    vus = r.integer(p.get("vus", 1), f"{path}.vus", minimum=1)

    def dur(key: str, default: str) -> float:
        return r.duration(p.get(key, default), f"{path}.{key}")

    if preset == "smoke":
        return Profile(name, "constant_vus", vus=vus, duration_s=dur("duration", "30s"), preset=preset)
    if preset in ("steady", "soak"):
        hold = dur("duration", "10m" if preset == "steady" else "2h")
        stages = [Stage(dur("ramp", "30s"), vus), Stage(hold, vus)]
    elif preset == "spike":
        base = r.integer(p.get("base", max(1, vus // 10)), f"{path}.base", minimum=1)
        hold, ramp = dur("duration", "1m"), dur("ramp", "10s")
        stages = [Stage(ramp, base), Stage(hold, base), Stage(ramp, vus), Stage(hold, vus), Stage(ramp, base),
                  Stage(hold, base)]
    else:
        shares = (0.25, 0.5, 0.75, 1.0) if preset == "stress" else (0.1, 0.25, 0.5, 1.0)
        ramp, step = dur("ramp", "30s" if preset == "stress" else "10s"), dur("step", "2m" if preset == "stress"
                                                                           else "1m")
        stages = []
        for share in shares:
            target = max(1, round(vus * share))
            stages += [Stage(ramp, target), Stage(step, target)]
    return Profile(name, "ramping_vus", vus=0, stages=tuple(stages), preset=preset)


def _slo(r: _Reader, raw: Any, path: str, journeys: list[Journey], services: dict[str, str]) -> SLO:
    s = r.mapping(
        raw,
        path,
        ("metric", "threshold", "journey", "step", "service", "abort_on_fail"),
        required=("metric", "threshold"),
    )
    metric = r.string(s["metric"], f"{path}.metric")
    if metric not in SLO_METRICS and not SLO_PERCENTILE.fullmatch(metric):
        raise r.fail(
            f"{path}.metric",
            f"expected one of {', '.join(SLO_METRICS)} or any percentile like p75 or p99.9, found {metric!r}"
            f"{_suggest(metric, SLO_METRICS)}",
        )
    raw_threshold = s["threshold"]
    if metric in RATE_METRICS:
        text = str(raw_threshold).strip()
        try:
            threshold = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise r.fail(
                f"{path}.threshold", f"expected a ratio like 0.01 or 1%, found {raw_threshold!r}"
            ) from None
    elif metric == "throughput":
        text = str(raw_threshold).strip().removesuffix("/s")
        try:
            threshold = float(text)
        except ValueError:
            raise r.fail(f"{path}.threshold", f"expected requests per second like 50 or 50/s, found "
                                              f"{raw_threshold!r}") from None
    else:
        threshold = r.duration(raw_threshold, f"{path}.threshold") * 1000
    journey = r.string(s.get("journey", ""), f"{path}.journey") if "journey" in s else ""
    step = r.string(s.get("step", ""), f"{path}.step") if "step" in s else ""
    names = {j.name: j for j in journeys}
    if journey and journey not in names:
        raise r.fail(f"{path}.journey", f"no journey named {journey!r}{_suggest(journey, names)}")
    if step:
        steps = {st.name for j in journeys if not journey or j.name == journey for st in j.steps}
        if step not in steps:
            raise r.fail(f"{path}.step", f"no step named {step!r}{_suggest(step, steps)}")
        # results name steps by their keys (label or name): the SLO's scope is the keys
        keys = {st.key for j in journeys if not journey or j.name == journey for st in j.steps if st.name == step}
        if len(keys) > 1:
            raise r.fail(f"{path}.step", f"the steps named {step!r} carry different labels in different journeys; "
                                         "give journey: to say which")
        step = keys.pop()
    if journey:
        journey = names[journey].key
    for key, value in (("journey", journey), ("step", step)):
        # k6 selects a threshold's requests by `metric{tag:value,...}`: a comma ends the value, quotes are trimmed
        if value and ("," in value or value[0] in "\"'" or value[-1] in "\"'"):
            raise r.fail(f"{path}.{key}", f"an SLO cannot select the label {value!r}: k6 thresholds cannot hold a "
                                          "comma, or a quote at either end, in a tag value")
    abort = s.get("abort_on_fail", False)
    if not isinstance(abort, bool):
        raise r.fail(f"{path}.abort_on_fail", f"expected true or false, found {_kind(abort)}")
    service = r.string(s["service"], f"{path}.service") if "service" in s else ""
    if service and service not in services:
        raise r.fail(f"{path}.service", f"no service named {service!r}{_suggest(service, services)}")
    return SLO(metric, threshold, journey, step, abort, service)
