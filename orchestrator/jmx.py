"""JMX import: a JMeter test plan (saved by JMeter 2.13 to 5.x) becomes a starter spec.

What maps: thread groups as journeys with a load profile each (threads, ramp-up, loops or the scheduler's
duration and delay); HTTP samplers as steps (method, path, query arguments, raw or form body, timeout); HTTP
Request Defaults as services (`${__P(name,default)}` read as its default); Header Managers at their scope as
headers; User Defined Variables as variables; a CSV Data Set as data (a CSV file written beside the spec);
regular expression, JSON and boundary extractors as extraction; response code, text and duration assertions as
checks; constant, uniform and Gaussian timers as think time; Transaction Controllers as groups; fixed Loop
Controllers unrolled; a Constant Throughput or Throughput Shaping Timer over a whole thread group as its
arrival rate. Whatever cannot be translated (conditions, loops known at run time, scripts, modules, ...) is left
out with everything under it and listed by its path in the plan: the spec never runs it, and never runs its
children unconditionally.

The plan is read with expat under a guard: a DOCTYPE (and with it every entity declaration) is refused, so no
external entity is fetched and no entity expands; size and nesting are bounded.

Long because each JMeter element perfhouse translates has its reader here, beside the list of what it leaves out;
the next element families added (logic controllers, more assertions) are the point to split it by family.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlsplit
from xml.parsers import expat

import yaml

from orchestrator.errors import ExitStatus, SpecError
from orchestrator.spec import parse_jsonpath

MAX_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 256
MAX_UNROLL = 20  # a fixed Loop Controller repeats its children in the spec at most this many times
MAX_STEPS = 1000  # nor do loops written out make a journey longer than this
# regular expression syntax that Java (JMeter) reads but JavaScript (k6) or Python (Locust) do not
_UNPORTABLE = re.compile(r"\(\?(?![:=!]|<[=!])|[*+?}]\+|\\[AZzGQE]|\[\[:")
FOREVER_S = 300  # the duration given to a thread group that loops until it is stopped


class PlanError(SpecError):
    """A plan that cannot be read: names the file, the line and the element's path in the plan."""

    exit_status = ExitStatus.USAGE


# ---------------------------------------------------------------------------------------------
# XML with line numbers, read under a guard.


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str]
    line: int
    children: list[_Node] = field(default_factory=list)
    text: str = ""


def _parse_xml(data: bytes, file: str) -> _Node:
    if len(data) > MAX_BYTES:
        raise PlanError(f"the plan is larger than {MAX_BYTES // (1024 * 1024)} MB", file)
    parser = expat.ParserCreate()
    root: list[_Node] = []
    stack: list[_Node] = []

    def refuse(*_: Any) -> Any:
        raise PlanError("a DOCTYPE or entity declaration is not accepted in a plan (JMeter never writes one)", file,
                        parser.CurrentLineNumber)

    def start(tag: str, attrs: dict[str, str]) -> None:
        node = _Node(tag, attrs, parser.CurrentLineNumber)
        if len(stack) >= MAX_DEPTH:
            raise PlanError(f"elements nested deeper than {MAX_DEPTH} levels", file, node.line)
        (stack[-1].children if stack else root).append(node)
        stack.append(node)

    def end(tag: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            stack[-1].text += data

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise PlanError(f"not well-formed XML: {expat.errors.messages[exc.code]}", file, exc.lineno,
                        exc.offset + 1) from None
    return root[0]


# ---------------------------------------------------------------------------------------------
# The plan's elements.

Props = dict[str, Any]  # name -> text, Props (elementProp) or list (collectionProp)


@dataclass
class _Element:
    kind: str  # the test class (a plugin's is its full class name)
    gui: str
    name: str
    enabled: bool
    props: Props
    line: int
    path: str
    children: list[_Element] = field(default_factory=list)


_SCALARS = ("stringProp", "boolProp", "intProp", "longProp", "doubleProp", "floatProp", "FloatProperty",
            "StringProperty", "IntegerProperty", "LongProperty", "DoubleProperty", "BooleanProperty")


def _props(node: _Node) -> Props:
    out: Props = {}
    for child in node.children:
        name, value = _prop(child)
        if name is not None:
            out[name] = value
    return out


def _prop(node: _Node) -> tuple[str | None, Any]:
    if node.tag in _SCALARS:
        if "name" in node.attrs:
            return node.attrs["name"], node.text
        parts = {c.tag: c.text for c in node.children}  # <doubleProp><name>..</name><value>..</value>
        return parts.get("name"), parts.get("value", "")
    if node.tag == "elementProp":
        props = _props(node)
        props["__type__"] = node.attrs.get("elementType", "")
        return node.attrs.get("name", ""), props
    if node.tag == "collectionProp":
        return node.attrs.get("name", ""), [_prop(c)[1] for c in node.children if c.tag != "name"]
    return None, None


def _elements(tree: _Node, parent: str, file: str) -> list[_Element]:
    """The elements of a hashTree: each element node followed by the hashTree of its children."""
    out: list[_Element] = []
    for node in tree.children:
        if node.tag == "hashTree":
            if not out:
                raise PlanError("a hashTree that follows no element", file, node.line, field=parent)
            out[-1].children = _elements(node, out[-1].path, file)
            continue
        name = node.attrs.get("testname", "") or node.tag
        out.append(_Element(node.attrs.get("testclass", node.tag), node.attrs.get("guiclass", ""), name,
                            node.attrs.get("enabled", "true") != "false", _props(node), node.line,
                            f"{parent} / {name}" if parent else name))
    return out


def _s(props: Props, name: str, default: str = "") -> str:
    value = props.get(name, default)
    return value if isinstance(value, str) else default


def _flag(props: Props, name: str, default: bool = False) -> bool:
    value = _s(props, name)
    return default if value == "" else value.strip().lower() == "true"


def _arguments(props: Props, name: str) -> list[Props]:
    holder = props.get(name)
    items = holder.get("Arguments.arguments", []) if isinstance(holder, dict) else []
    return [i for i in items if isinstance(i, dict)]


# ---------------------------------------------------------------------------------------------
# Element kinds.

HTTP_SAMPLERS = {"HTTPSamplerProxy", "HTTPSampler", "HTTPSampler2"}
TRANSPARENT = {"GenericController", "RecordingController"}
NOT_NEEDED = {
    "ResultCollector": "a listener: perfhouse records every result itself",
    "BackendListener": "a listener: perfhouse records every result itself",
    "Summariser": "a listener: perfhouse records every result itself",
    "ResultSaver": "a listener: perfhouse records every result itself",
    "CookieManager": "cookies: k6, JMeter and Locust keep each user's cookies themselves",
    "CacheManager": "a browser cache: the spec sends every request",
    "DNSCacheManager": "DNS caching is the tools' own",
    "ProxyControl": "the recorder",
    "WorkBench": "the workbench",
}
REASONS = {
    "IfController": "runs its children on a condition known only at run time",
    "WhileController": "loops on a condition known only at run time",
    "SwitchController": "picks a child at run time",
    "ForeachController": "loops over variables known only at run time",
    "OnceOnlyController": "runs its children on the first iteration only",
    "RunTime": "runs its children for a time",
    "ThroughputController": "runs its children for a share of the iterations",
    "RandomController": "picks one child at random",
    "RandomOrderController": "runs its children in a random order",
    "InterleaveControl": "runs one child per iteration in turn",
    "ModuleController": "runs a fragment of the plan found at run time",
    "IncludeController": "includes another file",
    "TestFragmentController": "runs only where a Module or Include Controller calls it",
    "SetupThreadGroup": "a setUp thread group (the spec's journeys all run as the load)",
    "PostThreadGroup": "a tearDown thread group (the spec's journeys all run as the load)",
    "TestAction": "a Flow Control Action",
    "SizeAssertion": "the spec has no size check",
    "AuthManager": "HTTP authorization: set an Authorization header instead",
}


def _scripted(kind: str) -> bool:
    return bool(re.match(r"(BeanShell|JSR223|BSF)", kind))


# ---------------------------------------------------------------------------------------------
# The import.

_REF = re.compile(r"\$\{([^${}]*)\}")
_PROPERTY = re.compile(r"^__(?:P|property)\(\s*([^,()]*?)\s*(?:,(.*))?\)$", re.S)


@dataclass
class _Dataset:
    name: str
    file: str
    columns: list[str]
    content: bytes


@dataclass
class _Scope:
    """What the elements above a sampler give it (innermost first where order matters)."""

    headers: list[list[tuple[str, str]]] = field(default_factory=list)
    defaults: list[Props] = field(default_factory=list)
    timers: list[_Element] = field(default_factory=list)
    assertions: list[_Element] = field(default_factory=list)
    extractors: list[_Element] = field(default_factory=list)
    group: str = ""

    def inner(self, elements: list[_Element], group: str | None = None) -> _Scope:
        def pick(kinds: set[str]) -> list[_Element]:
            return [e for e in elements if e.enabled and e.kind in kinds]

        return _Scope(
            [[(_s(h, "Header.name"), _s(h, "Header.value")) for h in e.props.get("HeaderManager.headers", [])
              if isinstance(h, dict)] for e in pick({"HeaderManager"})][::-1] + self.headers,
            [e.props for e in pick({"ConfigTestElement"}) if e.gui == "HttpDefaultsGui"][::-1] + self.defaults,
            self.timers + pick(TIMERS),
            self.assertions + pick(ASSERTIONS),
            self.extractors + pick(EXTRACTORS),
            self.group if group is None else group,
        )


TIMERS = {"ConstantTimer", "UniformRandomTimer", "GaussianRandomTimer"}
ASSERTIONS = {"ResponseAssertion", "DurationAssertion"}
EXTRACTORS = {"RegexExtractor", "JSONPostProcessor", "BoundaryExtractor"}
RATE_TIMERS = {"ConstantThroughputTimer", "kg.apc.jmeter.timers.VariableThroughputTimer"}
SCOPED = TIMERS | ASSERTIONS | EXTRACTORS | RATE_TIMERS | {"HeaderManager", "ConfigTestElement", "Arguments",
                                                           "CSVDataSet"}


@dataclass
class JmxImport:
    """The spec's YAML text, the data files to write beside it, and what the import left out or changed."""

    text: str
    files: dict[str, bytes]
    left_out: list[str]
    notes: list[str]
    not_needed: list[str]


class _Importer:
    def __init__(self, file: str, base: Path, out_dir: Path | None = None):
        self.file, self.base, self.out_dir = file, base, out_dir
        self.left_out: list[str] = []
        self.notes: list[str] = []
        self.not_needed: list[str] = []
        self.variables: dict[str, str] = {}
        self.services: dict[str, str] = {}  # base URL -> service name
        self.datasets: dict[str, _Dataset] = {}
        self.files: dict[str, bytes] = {}
        self._said: set[str] = set()
        self.defaults_headers: dict[str, str] = {}
        # the journey being imported
        self.known: set[str] = set()
        self.steps: list[dict[str, Any]] = []
        self.pauses: list[tuple[float, float] | None] = []
        self.labels: set[str] = set()
        self.step_names: set[str] = set()
        self.group_names: set[str] = set()

    def note(self, text: str) -> None:
        if text not in self._said:
            self._said.add(text)
            self.notes.append(text)

    def leave_out(self, element: _Element, reason: str) -> None:
        below = self._count(element)
        more = f" (and the {below} element{'s' if below > 1 else ''} under it)" if below else ""
        self.left_out.append(f"{element.path} [{element.kind}]: {reason}{more}")

    def _count(self, element: _Element) -> int:
        return sum(1 + self._count(c) for c in element.children)

    # -- text -----------------------------------------------------------------------------------

    def text(self, value: str, where: str, known: set[str], quiet: bool = False) -> str:
        """JMeter text as spec text: ${name} of a known variable stays, ${__P(name,default)} becomes its default,
        anything else is sent as the literal text it is (JMeter sends an undefined ${name} so too), and said so
        unless `quiet`."""
        out, pos = [], 0
        for m in _REF.finditer(value):
            out.append(value[pos:m.start()].replace("$", "$$"))
            inner = m.group(1).strip()
            prop = _PROPERTY.match(inner)
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", inner) and inner in known:
                out.append(f"${{{inner}}}")
            elif prop:
                default = (prop.group(2) or "").strip()
                if inner.startswith("__property"):  # ${__property(name,var,default)}
                    default = default.partition(",")[2].strip()
                if m.group(0) not in self._said:  # said once, where it is first met
                    self._said.add(m.group(0))
                    self.note(f"{where}: {m.group(0)} is read as its default {default!r} (JMeter property "
                              f"{prop.group(1)}); change it in the spec")
                out.append(default.replace("$", "$$"))
            elif not quiet:
                self.note(f"{where}: {m.group(0)} is no variable the import defines (a function, or a variable set "
                          "by an element left out): sent as the literal text")
                out.append(m.group(0).replace("$", "$$"))
            else:
                out.append(m.group(0).replace("$", "$$"))
            pos = m.end()
        out.append(value[pos:].replace("$", "$$"))
        return "".join(out)

    def literal(self, value: str, where: str, known: set[str] | None = None) -> str | None:
        """Text with every reference resolved now (properties to their defaults, variables to their values);
        None when something in it is known only at run time."""
        text = self.text(value, where, set(self.variables) if known is None else known, quiet=True)
        out, pos = [], 0
        for m in re.finditer(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text):
            out.append(text[pos:m.start()])
            if m.group(1) is None:
                out.append("$")
            elif m.group(1) in self.variables:
                out.append(self.variables[m.group(1)])
            else:
                return None
            pos = m.end()
        out.append(text[pos:])
        result = "".join(out)
        return None if re.search(r"\$\{[^}]*\}", result) else result

    # -- the plan ---------------------------------------------------------------------------------

    def run(self, plan: _Element, name: str) -> dict[str, Any]:
        self._variables(plan)
        if _flag(plan.props, "TestPlan.serialize_threadgroups"):
            self.note(f"{plan.path}: thread groups run one after another in JMeter; the spec's journeys run "
                      "together")
        top = [e for e in plan.children]
        for element in self._walk_disabled(top):
            self.not_needed.append(f"{element.path} [{element.kind}]: disabled in the plan")
        top = [e for e in top if e.enabled]
        plan_data = self._data([e for e in top if e.kind == "CSVDataSet"])
        scope = _Scope().inner(top)
        journeys: list[dict[str, Any]] = []
        profiles: dict[str, Any] = {}
        taken: set[str] = set()
        groups = [e for e in top if e.kind == "ThreadGroup"]
        for element in top:
            if element.kind == "ConfigTestElement" and element.gui != "HttpDefaultsGui":
                self.leave_out(element, "a config element the import does not translate")
                continue
            if element.kind == "ThreadGroup" or element.kind in SCOPED:
                if element.kind in RATE_TIMERS and len(groups) > 1:
                    self.leave_out(element, "paces several thread groups at once; give each journey an arrival "
                                            "rate in the profile")
                continue
            self._other(element)
        for group in groups:
            journey, profile = self._journey(group, scope, plan_data, taken,
                                             [e for e in top if e.kind in RATE_TIMERS and len(groups) == 1])
            if journey is not None:
                journeys.append(journey)
                profiles[journey["name"]] = profile
        if not journeys:
            raise PlanError("no thread group with an HTTP request perfhouse can import" + (
                f"; left out: {'; '.join(self.left_out)}" if self.left_out else ""), self.file, plan.line,
                field=plan.path)
        self._hoist_headers(journeys)
        services = {svc: base for base, svc in self.services.items()}
        doc: dict[str, Any] = {"name": _identifier(name, set(), "imported"), "services": services}
        if self.variables:
            doc["variables"] = {k: v.replace("$", "$$") for k, v in self.variables.items()}
        steps = [s for j in journeys for s in j["steps"]]
        timeouts = {s.get("timeout") for s in steps}
        defaults: dict[str, Any] = {"headers": self.defaults_headers} if self.defaults_headers else {}
        if len(timeouts) == 1 and None not in timeouts:  # one timeout for every request: the default
            defaults["timeout"] = timeouts.pop()
            for step in steps:
                del step["timeout"]
        if defaults:
            doc["defaults"] = defaults
        used = {j["data"] for j in journeys if "data" in j}
        kept = [d for d in self.datasets.values() if d.name in used]  # a thread group left out needs none
        self.files = {name: content for name, content in self.files.items() if any(d.file == name for d in kept)}
        if kept:
            doc["data"] = {d.name: {"file": d.file} for d in kept}
        doc["journeys"] = journeys
        plan_profile = next(iter(profiles.values())) if len(profiles) == 1 else {"journeys": profiles}
        doc["profiles"] = {"plan": plan_profile, "smoke": {"preset": "smoke"}}
        doc["slos"] = [{"metric": "p95", "threshold": "1s"}, {"metric": "error_rate", "threshold": "1%"}]
        return doc

    def _walk_disabled(self, elements: list[_Element]) -> list[_Element]:
        out = []
        for e in elements:
            if not e.enabled:
                out.append(e)
            else:
                out += self._walk_disabled(e.children)
        return out

    def _other(self, element: _Element) -> None:
        """An element that is neither a thread group nor applied to one: not needed, or left out."""
        if element.kind in NOT_NEEDED:
            self.not_needed.append(f"{element.path} [{element.kind}]: {NOT_NEEDED[element.kind]}")
        elif _scripted(element.kind):
            self.leave_out(element, "a script")
        elif element.kind not in REASONS and element.kind.endswith("ThreadGroup"):
            self.leave_out(element, "a thread group of a kind the import does not translate (give the journey a "
                                    "profile of its own)")
        else:
            self.leave_out(element, REASONS.get(element.kind, "an element the import does not translate"))

    def _variables(self, plan: _Element) -> None:
        holders: list[tuple[str, list[Props]]] = [(plan.path, _arguments(plan.props, "TestPlan.user_defined_variables"))]

        def find(elements: list[_Element]) -> None:
            for e in elements:
                if not e.enabled:
                    continue
                if e.kind == "Arguments":
                    holders.append((e.path, [a for a in e.props.get("Arguments.arguments", []) if isinstance(a, dict)]))
                elif e.kind == "ThreadGroup":
                    find(e.children)

        find(plan.children)
        for path, arguments in holders:
            for argument in arguments:
                name = _s(argument, "Argument.name").strip()
                if not name:
                    continue
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    self.note(f"{path}: the variable {name!r} has no name the spec can refer to; left out")
                    continue
                value = self.literal(_s(argument, "Argument.value"), f"{path} / {name}")
                if value is None:
                    self.note(f"{path}: the variable {name} is computed at run time; left out")
                    continue
                self.variables[name] = value

    # -- data ------------------------------------------------------------------------------------

    def _data(self, elements: list[_Element]) -> str:
        """The data set of the first CSV Data Set among `elements` (others left out); "" without one."""
        chosen = ""
        for element in elements:
            if chosen:
                self.leave_out(element, "a second CSV Data Set for the same thread group (a journey reads one)")
                continue
            chosen = self._dataset(element)
        return chosen

    def _dataset(self, element: _Element) -> str:
        key = element.path
        if key in self.datasets:
            return self.datasets[key].name
        p = element.props
        filename = self.literal(_s(p, "filename"), f"{element.path} filename")
        if not filename:
            self.leave_out(element, "its file name is known only at run time")
            return ""
        source = (self.base / filename).resolve()
        if not source.is_relative_to(self.base.resolve()):  # a plan copies no file from elsewhere beside the spec
            self.leave_out(element, f"its file {filename} lies outside the plan's folder: copy it beside the plan")
            return ""
        encoding = self.literal(_s(p, "fileEncoding"), element.path) or "utf-8"
        try:
            if source.stat().st_size > MAX_BYTES:
                self.leave_out(element, f"{filename} is larger than {MAX_BYTES // (1024 * 1024)} MB")
                return ""
            text = source.read_text(encoding=encoding)
        except (OSError, LookupError, UnicodeDecodeError) as exc:
            self.leave_out(element, f"cannot read {filename}: {exc.strerror if isinstance(exc, OSError) else exc}")
            return ""
        delimiter = _s(p, "delimiter", ",").replace("\\t", "\t") or ","
        lines = text.splitlines()
        if _flag(p, "quotedData"):
            rows = list(csv.reader(lines, delimiter=delimiter[0]))
        else:
            rows = [line.split(delimiter) for line in lines]
        names = [n.strip() for n in _s(p, "variableNames").split(",") if n.strip()]  # JMeter splits them at commas
        if not names:  # the file's first line names the variables (read as CSV, as JMeter reads it)
            names = [n.strip() for n in next(csv.reader(lines[:1], delimiter=delimiter[0]), [])]
            rows = rows[1:]
        elif _flag(p, "ignoreFirstLine"):
            rows = rows[1:]
        rows = [row for row in rows if any(cell for cell in row)]
        bad = [n for n in names if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n)]
        if not names or bad or not rows:
            self.leave_out(element, f"the variables {bad} have no names the spec can refer to" if bad else
                           "no variable names or no rows")
            return ""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow((row + [""] * len(names))[:len(names)])
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(filename).stem) or "data"
        file_name, n = f"{stem}.csv", 2
        content = out.getvalue().encode()
        while self.files.get(file_name, content) != content or self._taken(file_name, content):
            file_name, n = f"{stem}_{n}.csv", n + 1  # never over another file (the plan's own CSV, say)
        self.files[file_name] = out.getvalue().encode()
        name = _identifier(element.name if element.name != "CSV Data Set Config" else stem,
                           {d.name for d in self.datasets.values()}, "data")
        self.datasets[key] = _Dataset(name, file_name, names, self.files[file_name])
        share = _s(p, "shareMode", "shareMode.all")
        if share != "shareMode.all":
            self.note(f"{element.path}: {share} (each thread reads the file on its own) becomes rows in sequence "
                      "shared by all virtual users")
        if not _flag(p, "recycle", True) or _flag(p, "stopThread"):
            self.note(f"{element.path}: at the end of the file the spec starts again from the first row")
        self.note(f"{element.path}: {filename} becomes the data set {name} ({file_name}, written beside the spec)")
        return name

    def _taken(self, file_name: str, content: bytes) -> bool:
        """Does a different file of that name already lie where the spec goes?"""
        if self.out_dir is None:
            return False
        target = self.out_dir / file_name
        try:
            return target.exists() and target.read_bytes() != content
        except OSError:
            return True

    # -- thread groups -----------------------------------------------------------------------------

    def _journey(self, group: _Element, plan_scope: _Scope, plan_data: str, taken: set[str],
                 plan_rate: list[_Element]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        children = [e for e in group.children if e.enabled]
        data = self._data([e for e in children if e.kind == "CSVDataSet"]) or plan_data
        self.known = set(self.variables) | (set(self.dataset_columns(data)) if data else set())
        self.steps, self.labels, self.step_names, self.group_names, self.pauses = [], set(), set(), set(), []
        self._flow(children, plan_scope.inner(children), top=True)
        if not self.steps:
            self.leave_out(group, "no HTTP request perfhouse can import")
            return None, {}
        name = _identifier(group.name, taken, "journey")
        journey: dict[str, Any] = {"name": name}
        label = _one_line(group.name)
        if label and label != name:
            journey["label"] = label
        if data:
            journey["data"] = data
        # JMeter pauses before a sampler; the spec after a step: a pause before step i+1 follows step i, and the
        # one before the first step follows each iteration (the first iteration starts without it)
        for i, step in enumerate(self.steps):
            after = self.pauses[i + 1] if i + 1 < len(self.steps) else None
            if after:
                step["think_time"] = _think(after)
        if self.pauses[0]:
            journey["think_time"] = _think(self.pauses[0])
            self.note(f"{group.path}: the pause before its first request becomes a pause after each iteration "
                      "(the first iteration starts at once)")
        journey["steps"] = self.steps
        rate = [e for e in children if e.kind in RATE_TIMERS] + plan_rate
        return journey, self._profile(group, rate, len(self.steps))

    def dataset_columns(self, name: str) -> list[str]:
        return next((d.columns for d in self.datasets.values() if d.name == name), [])

    def _flow(self, elements: list[_Element], scope: _Scope, top: bool = False) -> None:
        """The samplers and controllers of one level, in order, under what this level's elements give them."""
        for element in elements:
            if element.kind in SCOPED:
                if element.kind == "ConfigTestElement" and element.gui != "HttpDefaultsGui":
                    self.leave_out(element, "a config element the import does not translate")
                elif not top and element.kind in RATE_TIMERS:
                    self.leave_out(element, "paces part of a thread group: an arrival rate paces whole iterations")
                elif not top and element.kind in ("Arguments", "CSVDataSet"):
                    self.leave_out(element, "inside a controller: put it on the thread group")
                elif not top and element.kind in EXTRACTORS:
                    self.note(f"{element.path}: extracts after every request under {scope.group or 'its controller'}")
                continue
            if element.kind in HTTP_SAMPLERS:
                self._sampler(element, scope)
            elif element.kind in TRANSPARENT:
                kids = [e for e in element.children if e.enabled]
                self._flow(kids, scope.inner(kids))
            elif element.kind == "CriticalSectionController":
                self.note(f"{element.path}: its lock is not kept (its children run as they are)")
                kids = [e for e in element.children if e.enabled]
                self._flow(kids, scope.inner(kids))
            elif element.kind == "TransactionController":
                kids = [e for e in element.children if e.enabled]
                if scope.group:
                    self.note(f"{element.path}: a transaction inside the transaction {scope.group}: its requests "
                              f"count in {scope.group} only")
                    self._flow(kids, scope.inner(kids))
                else:
                    group = _identifier(element.name, self.group_names, "transaction")
                    if group != _one_line(element.name):
                        self.note(f"{element.path}: reported as the group {group}")
                    self._flow(kids, scope.inner(kids, group))
            elif element.kind == "LoopController":
                self._loop(element, scope)
            else:
                self._other(element)

    def _loop(self, element: _Element, scope: _Scope) -> None:
        count = self.literal(_s(element.props, "LoopController.loops"), element.path)
        if count is None or not re.fullmatch(r"-?\d+", count.strip()):
            self.leave_out(element, "a loop count known only at run time")
            return
        loops = int(count)
        if loops < 0:
            self.leave_out(element, "loops until the thread stops")
        elif loops > MAX_UNROLL:
            self.leave_out(element, f"loops {loops} times: the spec repeats at most {MAX_UNROLL} (write the "
                                    "steps out, or raise the iterations of the profile)")
        elif loops == 0:
            self.note(f"{element.path}: loops 0 times, as in JMeter its children never run")
        elif len(self.steps) + loops * _weight([e for e in element.children if e.enabled]) > MAX_STEPS:
            self.leave_out(element, f"written out, its loops would make the journey longer than {MAX_STEPS} steps")
        else:
            kids = [e for e in element.children if e.enabled]
            if loops > 1:
                self.note(f"{element.path}: its {loops} loops are written out as steps one after another")
            for _ in range(loops):
                self._flow(kids, scope.inner(kids))

    # -- samplers ------------------------------------------------------------------------------------

    def _sampler(self, element: _Element, outer: _Scope) -> None:
        kids = [e for e in element.children if e.enabled]
        scope = outer.inner(kids)
        for kid in kids:
            if kid.kind not in SCOPED:
                self._other(kid)
            elif kid.kind in RATE_TIMERS:
                self.leave_out(kid, "paces one request only: an arrival rate paces whole iterations")
            elif kid.kind in ("Arguments", "CSVDataSet"):
                self.leave_out(kid, "inside a request: put it on the thread group")
            elif kid.kind == "ConfigTestElement" and kid.gui != "HttpDefaultsGui":
                self.leave_out(kid, "a config element the import does not translate")
        p = element.props
        method = (_s(p, "HTTPSampler.method") or "GET").strip().upper()
        if method not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            self.leave_out(element, f"the method {method} is not one the spec sends")
            return
        files = p.get("HTTPsampler.Files")
        if _flag(p, "HTTPSampler.DO_MULTIPART_POST") or (isinstance(files, dict) and files.get("HTTPFileArgs.files")):
            self.leave_out(element, "a multipart or file upload body")
            return
        where = element.path

        def pick(key: str) -> str:
            own = _s(p, key).strip()
            return own or next((_s(d, key).strip() for d in scope.defaults if _s(d, key).strip()), "")

        raw_path = _s(p, "HTTPSampler.path").strip() or pick("HTTPSampler.path")
        path_query = ""
        if re.match(r"https?://", raw_path, re.I):
            parts = urlsplit(raw_path)
            protocol, domain, port = parts.scheme, parts.hostname or "", str(parts.port or "")
            raw_path, path_query = parts.path, parts.query
        else:
            protocol, domain, port = pick("HTTPSampler.protocol"), pick("HTTPSampler.domain"), pick("HTTPSampler.port")
            raw_path, _, path_query = raw_path.partition("?")
        service = self._service(protocol, domain, port, where)
        if service is None:
            self.leave_out(element, "its server is known only at run time")
            return
        path = self.text(raw_path if raw_path.startswith("/") else "/" + raw_path, f"{where} path", self.known)
        path = re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", path)
        label = self._label(element.name)
        sname = _identifier(label, self.step_names, "request")
        step: dict[str, Any] = {"name": sname}
        if label != sname:
            step["label"] = label
        if scope.group:
            step["group"] = scope.group
        step.update(service=service, method=method, path=path)
        raw_body = _flag(p, "HTTPSampler.postBodyRaw")
        # the defaults' arguments join the sampler's own (JMeter merges them, into a raw body too)
        arguments = _arguments(p, "HTTPsampler.Arguments") + [
            a for d in scope.defaults for a in _arguments(d, "HTTPsampler.Arguments")]
        if method == "HEAD" and arguments:
            self.note(f"{where}: JMeter sends no arguments with a HEAD request; neither does the spec")
            arguments = []
        query: dict[str, str] = {}
        for pair in filter(None, path_query.split("&")):
            k, _, v = pair.partition("=")
            query[self.text(unquote_plus(k), f"{where} query", self.known)] = self.text(unquote_plus(v),
                                                                                        f"{where} query", self.known)
        form: dict[str, str] = {}
        body: dict[str, Any] | None = None
        if raw_body:
            text = "".join(_s(a, "Argument.value") for a in arguments)
            body = {"raw": self.text(text, f"{where} body", self.known)}
        else:
            target = form if method in ("POST", "PUT", "PATCH") else query
            for a in arguments:
                name = _s(a, "Argument.name")
                if not name:
                    continue
                value = _s(a, "Argument.value")
                if not _flag(a, "HTTPArgument.always_encode"):  # written encoded: sent as written
                    name, value = unquote_plus(name), unquote_plus(value)
                key = self.text(name, f"{where} argument", self.known)
                if key in target:
                    self.note(f"{where}: the argument {name} is given more than once; the spec keeps the last")
                target[key] = self.text(value, f"{where} argument {name}", self.known)
            if form:
                body = {"form": form}
                if method != "POST":
                    self.note(f"{where}: its {method} arguments are sent as a form body")
        if query:
            step["query"] = query
        headers = self._headers(scope, where)
        ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
        if body is not None:
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            if "raw" in body:
                body["content_type"] = ctype if ctype is not None else ""
        if headers:
            step["headers"] = headers
        if body is not None:
            step["body"] = body
        timeout = pick("HTTPSampler.response_timeout")
        if timeout:
            ms = self.literal(timeout, f"{where} timeout")
            if ms is not None and re.fullmatch(r"\d+", ms.strip()) and int(ms) > 0:
                step["timeout"] = f"{int(ms)}ms"
        if not _flag(p, "HTTPSampler.follow_redirects", True) and not _flag(p, "HTTPSampler.auto_redirects"):
            self.note(f"{where}: JMeter does not follow its redirects; k6 and Locust do")
        if _flag(p, "HTTPSampler.image_parser"):
            self.note(f"{where}: its embedded resources are not fetched")
        checks, expected = self._checks(scope, where)
        if checks:
            step["checks"] = checks
        if expected:
            step["expected_statuses"] = expected
        extract = self._extract(scope, where)
        if extract:
            step["extract"] = extract
        self.steps.append(step)
        self.pauses.append(self._pause(scope, where))
        self.known.update(extract)

    def _label(self, name: str) -> str:
        label, n = _one_line(name) or "request", 2
        while label in self.labels:
            label, n = f"{_one_line(name)} ({n})", n + 1
        if n > 2:
            self.note(f"the label {_one_line(name)!r} is given to several requests: the later ones are reported as "
                      f"'{_one_line(name)} (2)', ...")
        self.labels.add(label)
        return label

    def _service(self, protocol: str, domain: str, port: str, where: str) -> str | None:
        protocol = (self.literal(protocol, f"{where} protocol") if protocol else "http") or ""
        host = self.literal(domain, f"{where} server") if domain else "localhost"
        port_text = self.literal(port, f"{where} port") if port else ""
        if host is None or port_text is None or not protocol:
            return None
        if not domain:
            self.note(f"{where}: names no server: its service points at http://localhost")
        protocol = protocol.strip().lower() or "http"
        port_text = port_text.strip()
        default_port = {"http": "80", "https": "443"}.get(protocol)
        base = f"{protocol}://{host.strip()}" + (f":{port_text}" if port_text and port_text != default_port else "")
        if base not in self.services:
            hostname = host.strip()
            local = hostname == "localhost" or re.fullmatch(r"[0-9.]+|\[?[0-9a-fA-F:]+\]?", hostname) is not None
            label = "app" if local else re.sub(r"[^A-Za-z0-9_]", "_", hostname.split(".")[0]) or "api"
            name, n = label, 2
            while name in self.services.values():
                name, n = f"{label}_{n}", n + 1
            self.services[base] = name
            if "${" in domain + port + protocol:
                self.note(f"service {name}: {base} is what the plan's properties default to; point it elsewhere with "
                          f"--service {name}=URL")
        return self.services[base]

    def _headers(self, scope: _Scope, where: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for manager in scope.headers:  # innermost first: a nearer manager's header wins
            for name, value in manager:
                name = name.strip()
                if (name and not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name)) or re.search(r"[\r\n\0]", value):
                    self.note(f"{where}: the header {name[:60]!r} is not a valid HTTP header; left out")
                    continue
                if name and name.lower() not in {k.lower() for k in out}:
                    out[name] = self.text(value, f"{where} header {name}", self.known)
        return out

    def _hoist_headers(self, journeys: list[dict[str, Any]]) -> None:
        """Headers every request sends alike, built from spec variables alone, become default headers."""
        steps = [s for j in journeys for s in j["steps"]]
        common = dict(steps[0].get("headers", {}))
        for step in steps[1:]:
            common = {k: v for k, v in common.items() if step.get("headers", {}).get(k) == v}
        common = {k: v for k, v in common.items()
                  if all(r in self.variables for r in re.findall(r"\$\{([A-Za-z_]\w*)\}", v))}
        self.defaults_headers = common
        for step in steps:
            rest = {k: v for k, v in step.get("headers", {}).items() if k not in common}
            if rest:
                step["headers"] = rest
            else:
                step.pop("headers", None)

    def _pause(self, scope: _Scope, where: str) -> tuple[float, float] | None:
        lo = hi = 0.0
        for timer in scope.timers:
            p = timer.props
            delay = self.literal(_s(p, "ConstantTimer.delay", "0"), timer.path)
            spread = self.literal(_s(p, "RandomTimer.range", "0"), timer.path) if timer.kind != "ConstantTimer" else "0"
            try:
                d, r = float(delay or 0) / 1000, float(spread or 0) / 1000
            except ValueError:
                self.note(f"{timer.path}: a delay known only at run time is left out")
                continue
            if timer.kind == "ConstantTimer":
                lo, hi = lo + d, hi + d
            elif timer.kind == "UniformRandomTimer":
                lo, hi = lo + d, hi + d + r
            else:
                lo, hi = lo + max(0.0, d - r), hi + d + r
                self.note(f"{timer.path}: a Gaussian pause becomes a uniform one over its mean ± its deviation")
        return (round(lo, 3), round(hi, 3)) if hi > 0 else None

    # -- checks and extraction -------------------------------------------------------------------------

    def _checks(self, scope: _Scope, where: str) -> tuple[list[dict[str, Any]], list[int]]:
        checks: list[dict[str, Any]] = []
        expected: list[int] = []
        constants = set(self.variables)
        for assertion in scope.assertions:
            p = assertion.props
            name = _one_line(assertion.name)
            found: list[dict[str, Any]] = []
            if assertion.kind == "DurationAssertion":
                ms = self.literal(_s(p, "DurationAssertion.duration"), assertion.path)
                if ms is None or not re.fullmatch(r"\d+", ms.strip()):
                    self._assertion_out(assertion, "a duration known only at run time")
                    continue
                found.append({"max_duration": f"{int(ms)}ms"})
            else:
                made = self._response_assertion(assertion, constants)
                if made is None:
                    continue
                found, statuses = made
                expected += [s for s in statuses if s not in expected]
            for check in found:
                labels = {c.get("name") for c in checks}
                label, n = name, 2
                while label in labels:
                    label, n = f"{name} ({n})", n + 1
                checks.append({**check, "name": label})
        return checks, expected

    def _assertion_out(self, assertion: _Element, reason: str) -> None:
        if not any(line.startswith(f"{assertion.path} [") for line in self.left_out):
            self.leave_out(assertion, reason)

    def _response_assertion(self, assertion: _Element, constants: set[str]) -> tuple[list[dict[str, Any]],
                                                                                   list[int]] | None:
        p = assertion.props
        field_ = _s(p, "Assertion.test_field", "Assertion.response_data") or "Assertion.response_data"
        try:
            kind = int(_s(p, "Assertion.test_type", "2") or 2)
        except ValueError:
            kind = -1
        strings = p.get("Asserion.test_strings", p.get("Assertion.test_strings", []))
        strings = [s for s in strings if isinstance(s, str)] if isinstance(strings, list) else []
        scope = _s(p, "Assertion.scope", "parent")
        if scope == "variable":
            self._assertion_out(assertion, "checks a variable")
            return None
        if kind < 0 or kind & 4:
            self._assertion_out(assertion, "a negated assertion")
            return None
        if kind & 32 and len(strings) > 1:
            self._assertion_out(assertion, "any of several patterns (OR)")
            return None
        values = [self.literal(s, assertion.path, constants) for s in strings]
        if any(v is None for v in values) or not values:
            self._assertion_out(assertion, "compares with values known only at run time" if values else
                                "no pattern to test")
            return None
        texts = [v for v in values if v is not None]
        if field_ == "Assertion.response_code":
            if not all(re.fullmatch(r"[1-5]\d\d", t.strip()) for t in texts):
                self._assertion_out(assertion, "a response code pattern that is no single status")
                return None
            statuses = [int(t) for t in texts]
            kept = [s for s in statuses if s >= 400 or s < 200] if _flag(p, "Assertion.assume_success") else []
            return [{"status": s} for s in statuses], kept
        if field_ != "Assertion.response_data":
            self._assertion_out(assertion, f"tests {field_.removeprefix('Assertion.').replace('_', ' ')}, which no "
                                           "spec check reads")
            return None
        if _flag(p, "Assertion.assume_success"):
            self._assertion_out(assertion, "ignores the status (Ignore Status)")
            return None
        out: list[dict[str, Any]] = []
        for t in texts:
            if kind & 16:
                out.append({"body_contains": t.replace("$", "$$")})
                continue
            regex = "^" + _escape(t) + "$" if kind & 8 else ("^(?:" + t + ")$" if kind & 1 else t)
            if _UNPORTABLE.search(regex):
                self._assertion_out(assertion, f"a pattern in syntax k6 or Locust cannot read: {t!r}")
                return None
            if _groups(regex) is None:
                self._assertion_out(assertion, f"a pattern perfhouse cannot read: {t!r}")
                return None
            out.append({"body_matches": regex})
        return out, []

    def _extract(self, scope: _Scope, where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for extractor in scope.extractors:
            p = extractor.props
            if _s(p, "Sample.scope", "parent") not in ("parent", "all"):
                self._assertion_out(extractor, "reads sub-samples or a variable")
                continue
            if extractor.kind == "JSONPostProcessor":
                names = _s(p, "JSONPostProcessor.referenceNames").split(";")
                paths = _s(p, "JSONPostProcessor.jsonPathExprs").split(";")
                matches = _s(p, "JSONPostProcessor.match_numbers").split(";")
                for i, (name, expr) in enumerate(zip(names, paths, strict=False)):
                    name, expr = name.strip(), expr.strip()
                    match = matches[i].strip() if i < len(matches) else ""
                    try:
                        parse_jsonpath(expr)
                    except ValueError:
                        self._assertion_out(extractor, f"the JSONPath {expr!r} is more than members and indexes")
                        continue
                    if match == "-1":
                        self._assertion_out(extractor, "keeps every match")
                        continue
                    if self._var(extractor, name):
                        out[name] = {"jsonpath": expr}
                continue
            use = _s(p, f"{'Regex' if extractor.kind == 'RegexExtractor' else 'Boundary'}Extractor.useHeaders", "false")
            if use not in ("false", ""):
                self._assertion_out(extractor, f"reads the response's {'headers' if use == 'true' else use}")
                continue
            prefix = "RegexExtractor" if extractor.kind == "RegexExtractor" else "BoundaryExtractor"
            name = _s(p, f"{prefix}.refname").strip()
            match = _s(p, f"{prefix}.match_number", "1").strip() or "1"
            if match != "1":
                self._assertion_out(extractor, "takes a random match (0)" if match == "0" else
                                    f"takes match number {match} (the spec takes the first)")
                continue
            if extractor.kind == "RegexExtractor":
                regex = self.literal(_s(p, "RegexExtractor.regex"), extractor.path)
                template = _s(p, "RegexExtractor.template").strip()
                if regex is None:
                    self._assertion_out(extractor, "a pattern known only at run time")
                    continue
                if _UNPORTABLE.search(regex):
                    self._assertion_out(extractor, f"a pattern in syntax k6 or Locust cannot read: {regex!r}")
                    continue
                groups = _groups(regex)
                if groups is None:
                    self._assertion_out(extractor, "a pattern perfhouse cannot read")
                    continue
                if template != "$1$" or groups != 1:
                    self._assertion_out(extractor, "a template other than $1$ over a pattern of one group")
                    continue
            else:
                left = self.literal(_s(p, "BoundaryExtractor.lboundary"), extractor.path)
                right = self.literal(_s(p, "BoundaryExtractor.rboundary"), extractor.path)
                if not left or not right:
                    self._assertion_out(extractor, "an empty boundary, or one known only at run time")
                    continue
                regex = _escape(left) + r"([\s\S]*?)" + _escape(right)
            if self._var(extractor, name):
                out[name] = {"regex": regex}
                default = _s(p, f"{prefix}.default")
                if default:
                    self.note(f"{extractor.path}: its default value {default!r} is not kept")
        return out

    def _var(self, extractor: _Element, name: str) -> bool:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            self._assertion_out(extractor, f"a variable name the spec cannot refer to: {name!r}")
            return False
        return True

    # -- load -------------------------------------------------------------------------------------------

    def _number(self, element: _Element, key: str, default: int, what: str) -> int:
        raw = element.props.get(key)
        if isinstance(raw, dict):  # 2.13 may keep a loop count in the main controller
            raw = None
        text = self.literal(raw if isinstance(raw, str) else "", f"{element.path} {what}")
        if text is None or not re.fullmatch(r"-?\d+", text.strip() or "x"):
            if raw not in (None, ""):
                self.note(f"{element.path}: its {what} {raw!r} is known only at run time: {default} in the spec")
            return default
        return int(text)

    def _profile(self, group: _Element, rate_timers: list[_Element], steps: int) -> dict[str, Any]:
        p = group.props
        threads = max(1, self._number(group, "ThreadGroup.num_threads", 1, "number of threads"))
        ramp = max(0, self._number(group, "ThreadGroup.ramp_time", 0, "ramp-up"))
        controller = p.get("ThreadGroup.main_controller")
        loops_text = _s(controller, "LoopController.loops", "1") if isinstance(controller, dict) else "1"
        loops_value = self.literal(loops_text, f"{group.path} loops")
        loops = int(loops_value) if loops_value and re.fullmatch(r"-?\d+", loops_value.strip()) else 1
        if loops_value is None:
            self.note(f"{group.path}: its loop count {loops_text!r} is known only at run time: 1 in the spec")
        if isinstance(controller, dict) and _flag(controller, "LoopController.continue_forever") and loops < 0:
            loops = -1
        scheduler = _flag(p, "ThreadGroup.scheduler")
        duration = max(0, self._number(group, "ThreadGroup.duration", 0, "duration")) if scheduler else 0
        delay = max(0, self._number(group, "ThreadGroup.delay", 0, "startup delay")) if scheduler else 0
        if scheduler and not duration and loops < 0:
            self.note(f"{group.path}: its scheduler gives no duration (an end time): {FOREVER_S}s in the spec")
            duration = FOREVER_S
        if _s(p, "ThreadGroup.on_sample_error", "continue") not in ("continue", ""):
            self.note(f"{group.path}: on a sampler error JMeter would {_s(p, 'ThreadGroup.on_sample_error')}; the "
                      "spec carries on")
        for timer in rate_timers[1:]:
            self.leave_out(timer, "a second throughput timer for the same thread group")
        if rate_timers:
            shaped = self._rate(group, rate_timers[0], threads, loops, duration, steps)
            if shaped is not None:
                return shaped
        if loops >= 0 and not (scheduler and loops < 0):
            if ramp and threads > 1:
                self.note(f"{group.path}: its {threads} threads start together (ramp-up {ramp}s is not kept with a "
                          "fixed number of loops)")
            if scheduler and duration:
                self.note(f"{group.path}: the scheduler's {duration}s is not kept: the journey ends after its "
                          f"{loops} loops")
            if delay:
                self.note(f"{group.path}: the startup delay {delay}s is not kept")
            return {"executor": "iterations", "vus": threads, "iterations": max(1, loops)}
        if not duration:
            self.note(f"{group.path}: loops until it is stopped in JMeter: {FOREVER_S}s in the spec")
            duration = FOREVER_S
        if not ramp and not delay:
            return {"executor": "constant_vus", "vus": threads, "duration": f"{duration}s"}
        stages = [{"duration": f"{delay}s", "target": 0}] if delay else []
        ramp = min(ramp, duration)
        if ramp:
            stages.append({"duration": f"{ramp}s", "target": threads})
        if duration > ramp:
            stages.append({"duration": f"{duration - ramp}s", "target": threads})
        return {"executor": "ramping_vus", "stages": stages}

    def _rate(self, group: _Element, timer: _Element, threads: int, loops: int, duration: int,
              steps: int) -> dict[str, Any] | None:
        """An arrival rate of journey iterations from a throughput timer over the whole thread group."""
        if timer.kind == "ConstantThroughputTimer":
            value = self.literal(_s(timer.props, "throughput"), timer.path)
            mode = _s(timer.props, "calcMode", "0")
            if _s(timer.props, "mode").startswith("calcMode."):
                mode = str(int(_s(timer.props, "mode")[9:]) - 1)
            try:
                per_minute = Fraction(float(value or "x")).limit_denominator(1000)
            except ValueError:
                self.leave_out(timer, "a throughput known only at run time")
                return None
            if per_minute <= 0:
                self.leave_out(timer, "a throughput of zero")
                return None
            rate = per_minute * (threads if mode == "0" else 1) / steps  # iterations per minute
            shape: dict[str, Any] = {"executor": "constant_arrival_rate", **_per_unit(rate, 60)}
            if duration:
                shape["duration"] = f"{duration}s"
            else:
                total = threads * loops if loops > 0 else 0
                seconds = int(total / rate * 60) if total else FOREVER_S
                shape["duration"] = f"{max(1, seconds)}s"
                if total:
                    self.note(f"{group.path}: {total} iterations at the timer's rate take {shape['duration']}")
            self.note(f"{timer.path}: {float(per_minute):g} samples a minute over {steps} request(s) an iteration "
                      f"is an arrival rate of journey iterations")
        else:
            rows = timer.props.get("load_profile", [])
            stages: list[tuple[Fraction, Fraction, int]] = []
            for row in rows if isinstance(rows, list) else []:
                cells = [self.literal(c, timer.path) for c in row if isinstance(c, str)] if isinstance(row, list) else []
                try:
                    start, end, length = (Fraction(float(c or "x")).limit_denominator(1000) for c in cells)
                except ValueError:
                    self.leave_out(timer, "a schedule known only at run time")
                    return None
                stages.append((start / steps, end / steps, int(length)))
            if not stages:
                self.leave_out(timer, "an empty schedule")
                return None
            unit = 1
            for a, b, _ in stages:
                for x in (a, b):
                    unit = unit * int(x.denominator) // _gcd(unit, int(x.denominator))
            unit = min(unit, 3600)
            out_stages, previous = [], stages[0][0]
            for start, end, seconds in stages:
                if start != previous:
                    out_stages.append({"duration": "0s", "target": round(start * unit)})
                out_stages.append({"duration": f"{seconds}s", "target": round(end * unit)})
                previous = end
            shape = {"executor": "ramping_arrival_rate", "start_rate": round(stages[0][0] * unit),
                     "time_unit": f"{unit}s", "stages": out_stages}
            self.note(f"{timer.path}: its requests a second over {steps} request(s) an iteration are an arrival rate "
                      "of journey iterations")
        shape["pre_allocated_vus"] = threads
        shape["max_vus"] = threads
        ramp = self._number(group, "ThreadGroup.ramp_time", 0, "ramp-up")
        delay = self._number(group, "ThreadGroup.delay", 0, "startup delay") if _flag(group.props,
                                                                                      "ThreadGroup.scheduler") else 0
        if (ramp and threads > 1) or delay:
            self.note(f"{group.path}: with an arrival rate its ramp-up and startup delay are not kept (the rate "
                      "starts at once)")
        return shape


def _groups(regex: str) -> int | None:
    """The capturing groups of a regular expression, or None when it is none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return re.compile(regex).groups
        except re.error:
            return None


def _weight(elements: list[_Element]) -> int:
    """How many steps `elements` would write out, fixed loops repeated (at least their count)."""
    total = 0
    for e in elements:
        if e.kind in HTTP_SAMPLERS:
            total += 1
        elif e.kind == "LoopController" and re.fullmatch(r"\d+", _s(e.props, "LoopController.loops").strip()):
            total += int(_s(e.props, "LoopController.loops")) * _weight([c for c in e.children if c.enabled])
        elif e.kind in TRANSPARENT or e.kind in ("TransactionController", "CriticalSectionController"):
            total += _weight([c for c in e.children if c.enabled])
        if total > MAX_STEPS:
            break
    return total


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def _per_unit(rate: Fraction, unit_s: int) -> dict[str, Any]:
    """A rate (per `unit_s`) as a whole number per a time unit."""
    if rate.denominator == 1:
        return {"rate": int(rate), "time_unit": f"{unit_s}s" if unit_s != 60 else "1m"}
    return {"rate": rate.numerator, "time_unit": f"{unit_s * rate.denominator}s"}


def _think(pause: tuple[float, float]) -> Any:
    lo, hi = pause
    return f"{lo:g}s" if lo == hi else {"uniform": [f"{lo:g}s", f"{hi:g}s"]}


def _escape(text: str) -> str:
    """Literal text as a regular expression that JavaScript, Java and Python read alike."""
    return re.sub(r"([\\^$.|?*+()\[\]{}/])", r"\\\1", text)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def _identifier(text: str, taken: set[str], fallback: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", text.strip()).strip("_.-") or fallback
    if not re.match(r"[A-Za-z0-9_]", base):
        base = f"_{base}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def read_plan(data: bytes, file: str) -> _Element:
    """The plan's Test Plan element, with every element under it (a located PlanError for anything else)."""
    root = _parse_xml(data, file)
    if root.tag != "jmeterTestPlan":
        raise PlanError(f"not a JMeter test plan: the root element is <{root.tag}>, expected <jmeterTestPlan>", file,
                        root.line)
    trees = [c for c in root.children if c.tag == "hashTree"]
    if not trees:
        raise PlanError("the plan holds no hashTree", file, root.line)
    top = _elements(trees[0], "", file)
    plans = [e for e in top if e.kind == "TestPlan"]
    if not plans:
        raise PlanError("the plan holds no TestPlan element", file, trees[0].line)
    return plans[0]


def jmx_to_spec(data: bytes, name: str, file: str = "<plan>", base: Path | None = None,
                out_dir: Path | None = None) -> tuple[dict[str, Any], _Importer]:
    """The spec document for a plan, and the import (what it left out, its notes and data files). Data files
    are named so as not to replace a different file already in `out_dir`, where the spec will be written."""
    plan = read_plan(data, file)
    importer = _Importer(file, base or Path(file).parent, out_dir)
    return importer.run(plan, name), importer


def import_jmx(path: Path, name: str, out_dir: Path | None = None) -> JmxImport:
    """The YAML text of a starter spec for the plan at `path`, its data files (to write into `out_dir`, beside the
    spec, where none replaces a different file), and what was left out."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PlanError(f"cannot read the plan: {exc.strerror}", str(path)) from None
    doc, imp = jmx_to_spec(data, name, str(path), Path(path).parent, out_dir)
    header = (f"# Journey spec imported by perfhouse from the JMeter plan {Path(path).name}.\n"
              "# Review it: check the services' base URLs, move secrets to ${env:NAME}, and adjust think times,\n"
              "# checks, profiles (`plan` is the plan's own load) and SLOs.\n")
    for title, lines in (("Not imported (left out with everything under it; the spec never runs it):", imp.left_out),
                         ("Changed on the way:", imp.notes), ("Not needed:", imp.not_needed)):
        if lines:
            header += f"# {title}\n" + "".join(f"#   {' '.join(line.split())}\n" for line in lines)
    text = header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)
    return JmxImport(text, imp.files, imp.left_out, imp.notes, imp.not_needed)
