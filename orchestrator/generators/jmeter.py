"""The JMeter generator: a spec becomes a JMX test plan with one thread group per journey."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, unquote_to_bytes

from orchestrator.errors import GenerationError
from orchestrator.generators.base import (
    Allocation,
    GeneratedScript,
    GenerationOptions,
    environment,
    has_load,
    journey_vus,
    service_urls,
    used_datasets,
)
from orchestrator.spec import (
    SERVICE_PROPERTY_PREFIX,
    Check,
    Extraction,
    Part,
    Profile,
    Ref,
    Spec,
    Stage,
    Template,
)

_XML_TEXT = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "'": "&apos;",
    "\n": "&#10;",
    "\r": "&#13;",
    "\t": "&#9;",
}
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml(value: Any) -> str:
    """Text for an XML attribute or element: markup, quotes and line breaks as references."""
    text = str(value)
    if _XML_BAD.search(text):
        raise GenerationError(f"{text!r} holds a control character that XML 1.0 cannot carry")
    return "".join(_XML_TEXT.get(ch, ch) for ch in text)


def _no_refs(text: str) -> str:
    return text.replace("${", "${__char(36)}{")


def jmeter_literal(text: str) -> str:
    """Literal text that JMeter must not evaluate: `${` is written as the __char function, and then,
    as JMeter's function parser runs on the value, its backslashes are doubled."""
    if "${" not in text:
        return text
    return _no_refs(text.replace("\\", "\\\\"))


# Environment values reach JMeter as properties with this prefix, from a file the runner writes
# for the run's duration only (see orchestrator.tools); scripts hold just their names.
ENV_PREFIX = "perfhouse.env."


@dataclass(frozen=True)
class JsonRef(Ref):
    """A run-time value inside a JSON string: JMeter inserts it JSON-escaped through a function."""

    version: tuple[int, ...] = (5,)

    def expression(self) -> str:
        value = f'props.get("{ENV_PREFIX}{self.name}")' if self.env else f'vars.get("{self.name}")'
        if self.version >= (3, 1):  # Groovy is bundled from JMeter 3.1 on
            return f"${{__groovy(groovy.json.JsonOutput.toJson(String.valueOf({value}))[1..-2])}}"
        # before that, Rhino: the function parser splits arguments on unescaped commas
        return f"${{__javaScript(JSON.stringify(String({value})).slice(1\\,-1))}}"


def _ref_text(ref: Ref, version: tuple[int, ...] = (5,)) -> str:
    """A reference in JMeter syntax: a thread variable, or (env) the run's property read as it is
    (__P would trim its spaces)."""
    if not ref.env:
        return f"${{{ref.name}}}"
    function = "__groovy" if version >= (3, 1) else "__javaScript"
    return f'${{{function}(props.get("{ENV_PREFIX}{ref.name}"))}}'


def jmeter_template(tmpl: Template, version: tuple[int, ...] = (5,)) -> str:
    """A templated spec string in JMeter's ${var} syntax, literal parts kept literal."""
    out = []
    for part in tmpl.parts:
        if isinstance(part, JsonRef):
            out.append(part.expression())
        elif isinstance(part, Ref):
            out.append(_ref_text(part, version))
        else:
            out.append(_escape_backslash(_no_refs(part), tmpl))
    return "".join(out)


def _escape_backslash(text: str, tmpl: Template) -> str:
    # JMeter's function parser, which runs on any value holding "${", reads a backslash as an escape.
    needs_parser = bool(tmpl.refs) or any("${" in p for p in tmpl.parts if isinstance(p, str))
    return text.replace("\\", "\\\\") if needs_parser else text


def json_template(value: Any, constants: dict[str, str], version: tuple[int, ...] = (5,)) -> Template:
    """A JSON body as one template. Spec variables are constants, inlined JSON-escaped; values known
    only at run time (extracted, test data) are JSON-escaped by a JMeter function as they are sent."""
    parts: list[Part] = []

    def emit(v: Any) -> None:
        if isinstance(v, str):
            parts.append('"')
            for p in Template.parse(v).parts:
                if isinstance(p, Ref) and p.name not in constants:
                    parts.append(JsonRef(p.name, p.env, version))
                else:
                    parts.append(_json_escape(constants[p.name] if isinstance(p, Ref) else p))
            parts.append('"')
        elif isinstance(v, dict):
            parts.append("{")
            for i, (k, item) in enumerate(v.items()):
                parts.append(("" if i == 0 else ", ") + '"' + _json_escape(str(k)) + '": ')
                emit(item)
            parts.append("}")
        elif isinstance(v, list):
            parts.append("[")
            for i, item in enumerate(v):
                if i:
                    parts.append(", ")
                emit(item)
            parts.append("]")
        else:
            parts.append(json.dumps(v))

    emit(value)
    merged: list[Part] = []
    for p in parts:
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        else:
            merged.append(p)
    return Template(tuple(merged))


def jmeter_query(pairs: tuple[tuple[str, Template], ...], version: tuple[int, ...] = (5,)) -> str:
    """A query string for a sampler path: literals URL-encoded now, references by __urlencode at run time."""

    def value(tmpl: Template) -> str:
        return "".join(
            f"${{__urlencode({_ref_text(p, version)})}}" if isinstance(p, Ref) else quote(p, safe="")
            for p in tmpl.parts
        )

    return "&".join(f"{quote(name, safe='')}={value(tmpl)}" for name, tmpl in pairs)


# What k6 (Go's net/url) sends as a path: as written when every character may stand in a path
# (RFC 3986 pchars, `[` `]` and %XX escapes), else the decoded path escaped again, byte by byte.
_PATH_VALID = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~!$&'()*+,;=:@[]/%")
_PATH_KEPT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~$&+,/:;=@")


def service_variables(name: str, url: str, version: tuple[int, ...]) -> list[tuple[str, str]]:
    """Test plan variables holding a service's protocol, host, port and base path, read once at start
    from the property perfhouse.service.NAME (a base URL), else from the spec's URL."""
    key = SERVICE_PROPERTY_PREFIX + name
    if version >= (3, 1):  # Groovy; single quotes: no interpolation of $ in the URL
        def lit(text: str) -> str:
            return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
        base = f"new URL(props.getProperty({lit(key)}, {lit(url)}))"
        parts = {"protocol": f"{base}.protocol", "host": f"{base}.host", "port": f"Math.max(0, {base}.port)",
                 "path": f"{base}.path.replaceAll('/+$', '')"}
        function = "__groovy"
    else:  # Rhino
        base = f"new java.net.URL(props.getProperty({json.dumps(key)}, {json.dumps(url)}))"
        parts = {"protocol": f"{base}.getProtocol()", "host": f"{base}.getHost()",
                 "port": f"Math.max(0, {base}.getPort())",
                 "path": f'String({base}.getPath()).replace(new RegExp("/+$"), "")'}
        function = "__javaScript"
    # JMeter's function parser: backslashes and commas in arguments are escaped
    return [(f"{key}.{part}", f"${{{function}({expr.replace(chr(92), chr(92) * 2).replace(',', chr(92) + ',')})}}")
            for part, expr in parts.items()]


def go_path(path: str) -> str:
    """A literal URL path percent-encoded exactly as k6 sends it."""
    return path if all(ch in _PATH_VALID for ch in path) else _reescape(path)


def _reescape(path: str) -> str:
    return "".join(chr(b) if chr(b) in _PATH_KEPT else f"%{b:02X}" for b in unquote_to_bytes(path))


TAGS_NOTE = "JMeter results carry no tags of a step's own: the plan keeps them as each sampler's comment"
UNTYPED_BODY_NOTE = ("JMeter sends a body without a Content-Type with one of its own (2.13: "
                     "application/x-www-form-urlencoded for POST, text/plain; charset=UTF-8 otherwise)")
BRACKETS_NOTE = "JMeter cannot send [ or ] in a path: it sends them percent-encoded (%5B, %5D) where k6 may not"


def _path_ref(ref: Ref) -> str:
    """A run-time value in a path, percent-encoded as it is sent (JMeter would refuse a space or a quote):
    encodeURI, keeping the %XX escapes that k6 keeps too."""
    value = f'props.get("{ENV_PREFIX}{ref.name}")' if ref.env else f'vars.get("{ref.name}")'
    return f'${{__javaScript(encodeURI(String({value})).replace(/%25([0-9A-Fa-f][0-9A-Fa-f])/g\\, "%$1"))}}'


def jmeter_path(tmpl: Template) -> str:
    """A step's path (after its service's base path) as k6 sends it (see go_path), but for brackets
    (BRACKETS_NOTE): literal text encoded now, run-time values as they are sent."""
    parts: list[Part] = list(tmpl.parts)
    literal = "".join(p for p in parts if isinstance(p, str))
    if not any(isinstance(p, Ref) for p in parts):
        return _brackets(go_path(literal))
    reencode = any(ch not in _PATH_VALID for ch in literal)
    return "".join(
        _path_ref(p) if isinstance(p, Ref) else _brackets(_reescape(p) if reencode else p) for p in parts
    )


def _brackets(path: str) -> str:
    return path.replace("[", "%5B").replace("]", "%5D")


def _json_escape(text: str) -> str:
    """JSON string content (quotes, backslashes, control characters and U+2028/9 escaped)."""
    out = []
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ch in "\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3]) or (5,)


def json_regex(extraction: Extraction) -> str:
    """JMeter before 3.0 has no JSON extractor: the value of the path's last member, by regex."""
    last = extraction.json_keys[-1]
    if isinstance(last, int):
        raise GenerationError(
            f"JSONPath {extraction.expr!r} ends in an index; JMeter before 3.0 has no JSON extractor and "
            "perfhouse can only approximate paths that end in a member name there"
        )
    return '"' + re.escape(last) + r'"\s*:\s*"?([^",}\]]*)'


# ResponseAssertion test types: 2 = contains (regex), 8 = equals, 16 = substring.
_CONTAINS, _EQUALS, _SUBSTRING = 2, 8, 16


def assertion(check: Check) -> dict[str, Any]:
    """The ResponseAssertion that performs a check: field, test type and pattern."""
    if check.kind == "status":
        return {"field": "Assertion.response_code", "test_type": _EQUALS, "pattern": str(check.status)}
    if check.kind == "body_contains":
        return {"field": "Assertion.response_data", "test_type": _SUBSTRING, "pattern": check.target}
    if check.kind == "body_matches":
        return {"field": "Assertion.response_data", "test_type": _CONTAINS, "pattern": check.target}
    if check.kind == "header":
        value = "" if check.equals is None else "[ \\t]*" + re.escape(check.equals) + "[ \\t]*\\r?$"
        return {"field": "Assertion.response_headers", "test_type": _CONTAINS,
                "pattern": "(?im)^" + re.escape(check.target) + ":" + value}
    # JSONPath before JMeter 3.0: the path's last member, by regex on the body
    last = check.json_keys[-1]
    if isinstance(last, int):
        raise GenerationError(f"check {check.label!r}: JMeter before 3.0 has no JSONPath assertion and perfhouse "
                              "can only approximate paths that end in a member name there")
    value = "" if check.equals is None else '\\s*"?' + re.escape(check.equals) + '"?\\s*[,}\\]]'
    return {"field": "Assertion.response_data", "test_type": _CONTAINS,
            "pattern": '"' + re.escape(last) + '"\\s*:' + value}


class JMeterGenerator:
    tool: ClassVar[str] = "jmeter"

    def render(self, spec: Spec, options: GenerationOptions) -> GeneratedScript:
        profile = spec.profile(options.profile)
        aborting = [i for i, slo in enumerate(spec.slos) if slo.abort_on_fail]
        if aborting:
            raise GenerationError(
                f"{Path(spec.file).name}: slos[{aborting[0]}] sets abort_on_fail, and perfhouse cannot stop a JMeter run when an "
                "SLO fails (only k6 honours it, by its thresholds); run this spec with --tool k6, or drop "
                "abort_on_fail for JMeter runs"
            )
        target = options.tool_version  # the JMeter tool gives its default when no version was asked for
        version = _version_tuple(target)
        has_json_extractor = version >= (3, 0)
        notes: list[str] = []
        if not has_json_extractor and any(c.kind == "jsonpath" for j in spec.journeys for s in j.steps
                                          for c in s.checks):
            notes.append(f"JMeter {target} has no JSONPath assertion: JSONPath checks use a "
                         "regular expression on the path's last member")
        if not has_json_extractor and any(
            e.kind == "jsonpath" for j in spec.journeys for s in j.steps for e in s.extract
        ):
            notes.append(
                f"JMeter {target} has no JSON extractor: JSONPath extraction uses a "
                "regular expression for the first occurrence of the path's last member"
            )
        if any("[" in p or "]" in p for j in spec.journeys for st in j.steps for p in st.path.parts
               if isinstance(p, str)):
            notes.append(BRACKETS_NOTE)
        if any(st.tags for j in spec.journeys for st in j.steps):
            notes.append(TAGS_NOTE)
        if any(st.body is not None and not st.body.content_type for j in spec.journeys for st in j.steps):
            notes.append(UNTYPED_BODY_NOTE)
        datasets = used_datasets(spec)
        for d in datasets.values():
            if d.mode != "sequential":
                raise GenerationError(
                    f"data set {d.name!r} (mode {d.mode}): stock JMeter reads CSV rows in sequence only; use mode "
                    "sequential for JMeter, or k6 alone for random and per-VU rows"
                )
        urls = service_urls(spec, options)
        used = [st.service for j in spec.journeys for st in j.steps]
        default_service = max(urls, key=used.count)  # the most used; the first of those on a tie
        thread_groups = [
            dict(group, journey=j.journey, layer=n)
            for j in journey_vus(spec, profile, options.vu_scale)
            if has_load([j])  # a part of a split test may have no share of a journey
            for n, group in enumerate(self._thread_groups(j.profile, j, version, notes))
        ]
        env = environment(
            {
                "xml": xml,
                "jm": lambda t: jmeter_template(t, version),
                "jm_query": lambda pairs: jmeter_query(pairs, version),
                "jm_path": jmeter_path,
                "jm_json": lambda v: jmeter_template(json_template(v, spec.variables, version), version),
                "jm_literal": jmeter_literal,
                "json_regex": json_regex,
                "regex_escape": re.escape,
                "assertion": assertion,
            }
        )
        content = env.get_template("jmeter/plan.jmx.j2").render(
            spec=spec,
            spec_file=Path(spec.file).name,
            profile=profile,
            thread_groups=thread_groups,
            default_service=default_service,
            service_variables=[v for name, url in urls.items() for v in service_variables(name, url, version)],
            has_json_extractor=has_json_extractor,
            jmeter_version=target,
            datasets=datasets,
        )
        files = tuple(d.path for d in datasets.values())
        return GeneratedScript("jmeter", f"{spec.name}.jmx", content, tuple(notes), files)

    def _thread_groups(self, profile: Profile, j: Allocation, version: tuple[int, ...],
                       notes: list[str]) -> list[dict[str, Any]]:
        """The thread groups that give one journey its share of the profile."""
        closed = {"kind": "closed", "ramp_s": 0, "delay_s": 0, "loops": -1}
        if profile.executor == "constant_vus":
            return [dict(closed, threads=j.vus, duration_s=round(profile.duration_s))]
        if profile.executor == "iterations":
            return [dict(closed, threads=j.vus, loops=profile.iterations, duration_s=0)]
        if profile.executor == "ramping_vus":
            groups, approximated = vu_layers(j.stages)
            if approximated and not any("ramp-down" in n for n in notes):
                notes.append("JMeter thread groups cannot ramp down: each ramp-down stage stops its threads at the "
                             "stage's midpoint (the same VU-seconds as a linear ramp-down)")
            return [dict(closed, **g) for g in groups]
        unit = profile.time_unit_s
        if version >= (5, 5):
            if profile.executor == "constant_arrival_rate":
                rate = _per_second(j.rate, unit)
                schedule = f"rate({rate}) even_arrivals({_secs(profile.duration_s)} sec) rate({rate})"
            else:
                schedule = f"rate({_per_second(j.start_rate, unit)})"
                for st in j.stages:
                    schedule += (f" even_arrivals({_secs(st.duration_s)} sec)"
                                 f" rate({_per_second(st.target, unit)})")
            return [{"kind": "open", "schedule": schedule}]
        if profile.executor == "ramping_arrival_rate":
            raise GenerationError(
                f"profile {profile.name!r}: a ramping arrival rate needs JMeter 5.5's open model thread group; "
                f"JMeter {'.'.join(map(str, version))} has none"
            )
        if not any("Constant Throughput Timer" in n for n in notes):
            notes.append("JMeter before 5.5 has no open model: the arrival rate is paced by a Constant Throughput "
                         "Timer on each journey's first request, with max_vus threads")
        return [dict(closed, kind="paced", threads=j.max_vus, duration_s=round(profile.duration_s),
                     per_minute=round(j.rate * 60 / unit, 6))]


def _per_second(rate: int, unit_s: float) -> str:
    """A rate for the open model's schedule, in the profile's own unit where the schedule has one."""
    units = {1.0: "sec", 60.0: "min", 3600.0: "hour"}
    if unit_s in units:
        return f"{rate}/{units[unit_s]}"
    return f"{rate / unit_s:.6g}/sec"


def _secs(seconds: float) -> str:
    return f"{seconds:.6g}"


def vu_layers(stages: Sequence[Stage]) -> tuple[list[dict[str, Any]], bool]:
    """A VU curve as stacked thread groups: each rise is a group starting then (delay) that ramps its
    threads over the stage; each fall stops the newest groups first, at the falling stage's midpoint.
    Returns the groups (threads, delay_s, ramp_s, duration_s) and whether any fall was approximated."""
    active: list[dict[str, float]] = []  # newest last: threads, start, ramp
    done: list[dict[str, float]] = []
    level, t, approximated = 0, 0.0, False
    for stage in stages:
        d, target = float(stage.duration_s), int(stage.target)
        if target > level:
            active.append({"threads": target - level, "start": t, "ramp": d})
        elif target < level:
            stop = t + d / 2
            approximated = approximated or d > 0
            drop = level - target
            while drop:
                top = active[-1]
                if top["threads"] <= drop:
                    active.pop()
                    done.append(dict(top, end=stop))
                    drop -= int(top["threads"])
                else:  # the last-started threads of this group stop; the rest carry on
                    keep = top["threads"] - drop
                    frac = keep / top["threads"]
                    done.append({"threads": drop, "start": top["start"] + top["ramp"] * frac,
                                 "ramp": top["ramp"] * (1 - frac), "end": stop})
                    top["threads"], top["ramp"] = keep, top["ramp"] * frac
                    drop = 0
        level, t = target, t + d
    done += [dict(a, end=t) for a in active]
    groups = [{"threads": int(g["threads"]), "delay_s": round(g["start"]), "ramp_s": round(g["ramp"]),
               "duration_s": max(1, round(g["end"] - g["start"]))}
              for g in sorted(done, key=lambda g: (g["start"], g["end"]))]
    return groups, approximated
