"""The JMeter generator: a spec becomes a JMX test plan with one thread group per journey."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from orchestrator.errors import GenerationError
from orchestrator.generators.base import (
    GeneratedScript,
    GenerationOptions,
    environment,
    journey_vus,
    register,
    service_urls,
)
from orchestrator.spec import Extraction, Part, Profile, Ref, Spec, Template

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


def jmeter_literal(text: str) -> str:
    """Literal text that JMeter must not evaluate: `${` is written as the __char function."""
    return text.replace("${", "${__char(36)}{")


def jmeter_template(tmpl: Template) -> str:
    """A templated spec string in JMeter's ${var} syntax, literal parts kept literal."""
    out = []
    for part in tmpl.parts:
        out.append(
            f"${{{part.name}}}" if isinstance(part, Ref) else _escape_backslash(jmeter_literal(part), tmpl)
        )
    return "".join(out)


def _escape_backslash(text: str, tmpl: Template) -> str:
    # JMeter's function parser, which runs on any value holding "${", reads a backslash as an escape.
    needs_parser = bool(tmpl.refs) or any("${" in p for p in tmpl.parts if isinstance(p, str))
    return text.replace("\\", "\\\\") if needs_parser else text


def json_template(value: Any, constants: dict[str, str]) -> Template:
    """A JSON body as one template. Spec variables are constants, inlined JSON-escaped; extracted
    values stay ${var} references that JMeter substitutes as they are (no stock JMeter element
    JSON-escapes a runtime value)."""
    parts: list[Part] = []

    def emit(v: Any) -> None:
        if isinstance(v, str):
            parts.append('"')
            for p in Template.parse(v).parts:
                if isinstance(p, Ref) and p.name not in constants:
                    parts.append(p)
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


def jmeter_query(pairs: tuple[tuple[str, Template], ...]) -> str:
    """A query string for a sampler path: literals URL-encoded now, references by __urlencode at run time."""

    def value(tmpl: Template) -> str:
        return "".join(
            f"${{__urlencode(${{{p.name}}})}}" if isinstance(p, Ref) else quote(p, safe="")
            for p in tmpl.parts
        )

    return "&".join(f"{quote(name, safe='')}={value(tmpl)}" for name, tmpl in pairs)


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


@register
class JMeterGenerator:
    tool: ClassVar[str] = "jmeter"

    def render(self, spec: Spec, options: GenerationOptions) -> GeneratedScript:
        profile = spec.profile(options.profile)
        version = _version_tuple(options.jmeter_version)
        has_json_extractor = version >= (3, 0)
        notes: list[str] = []
        if not has_json_extractor and any(
            e.kind == "jsonpath" for j in spec.journeys for s in j.steps for e in s.extract
        ):
            notes.append(
                f"JMeter {options.jmeter_version} has no JSON extractor: JSONPath extraction uses a "
                "regular expression for the first occurrence of the path's last member"
            )
        urls = {name: urlsplit(u) for name, u in service_urls(spec, options).items()}
        thread_groups = [dict(j, **self._thread_group(profile, j)) for j in journey_vus(spec, profile)]
        env = environment(
            {
                "xml": xml,
                "jm": jmeter_template,
                "jm_query": jmeter_query,
                "jm_json": lambda v: jmeter_template(json_template(v, spec.variables)),
                "jm_literal": jmeter_literal,
                "json_regex": json_regex,
                "regex_escape": re.escape,
            }
        )
        content = env.get_template("jmeter/plan.jmx.j2").render(
            spec=spec,
            spec_file=Path(spec.file).name,
            profile=profile,
            thread_groups=thread_groups,
            urls=urls,
            has_json_extractor=has_json_extractor,
            jmeter_version=options.jmeter_version,
        )
        return GeneratedScript("jmeter", f"{spec.name}.jmx", content, tuple(notes))

    def _thread_group(self, profile: Profile, j: dict[str, Any]) -> dict[str, Any]:
        """Threads, ramp-up, loops and duration of one journey's thread group."""
        if profile.executor == "constant_vus":
            return {"threads": j["vus"], "ramp_s": 0, "loops": -1, "duration_s": round(profile.duration_s)}
        if profile.executor == "iterations":
            return {"threads": j["vus"], "ramp_s": 0, "loops": profile.iterations, "duration_s": 0}
        stages = j["stages"]
        # A thread group ramps up once, then holds: stages of the form [0→N over T1, hold N for T2].
        if (
            len(stages) in (1, 2)
            and stages[0]["target"] > 0
            and all(s["target"] == stages[0]["target"] for s in stages)
        ):
            total = sum(s["duration_s"] for s in stages)
            return {
                "threads": stages[0]["target"],
                "ramp_s": round(stages[0]["duration_s"]),
                "loops": -1,
                "duration_s": round(total),
            }
        raise GenerationError(
            f"profile {profile.name!r}: a JMeter thread group can ramp up once and hold; stages "
            f"{[(s.duration_s, s.target) for s in profile.stages]} need another shape of profile"
        )
