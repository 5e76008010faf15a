"""The k6 generator: a spec becomes one scenario per journey, with checks, tags and thresholds."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

from orchestrator.errors import GenerationError
from orchestrator.generators.base import (
    GeneratedScript,
    GenerationOptions,
    environment,
    fmt_seconds,
    journey_vus,
    service_urls,
    used_datasets,
)
from orchestrator.spec import Journey, Ref, Spec, Template, service_env

_SLO_AGG = {"p50": "med", "p90": "p(90)", "p95": "p(95)", "p99": "p(99)", "avg": "avg", "max": "max"}


def js_string(value: str) -> str:
    """A JS string literal; non-ASCII, U+2028/9 and `</` are escaped so no value can break out."""
    return json.dumps(value, ensure_ascii=True).replace("</", "<\\/")


def js_string_json(value: Any) -> str:
    """Any JSON value as a JS literal, escaped like js_string."""
    return json.dumps(value, ensure_ascii=True).replace("</", "<\\/")


def js_template(tmpl: Template, scope: str = "vars") -> str:
    """A templated spec string as a JS expression over the run's `__ENV` and `scope`: the VU's `vars`
    inside a journey, the spec's `VARIABLES` outside one (where only spec variables are known)."""
    pieces = [
        (f"__ENV[{js_string(p.name)}]" if p.env else f"{scope}[{js_string(p.name)}]") if isinstance(p, Ref)
        else js_string(p)
        for p in tmpl.parts
        if p != ""
    ]
    return " + ".join(pieces) if pieces else '""'


def js_value(value: Any) -> str:
    """A JSON body as a JS expression; its strings may reference variables."""
    if isinstance(value, str):
        return js_template(Template.parse(value))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{js_string(str(k))}: {js_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(js_value(v) for v in value) + "]"
    return json.dumps(value)


_HTTP_FUNCTION = {"GET": "get", "POST": "post", "PUT": "put", "PATCH": "patch", "DELETE": "del", "HEAD": "head",
                  "OPTIONS": "options"}
# names a journey's function must not take: JavaScript's reserved words and the script's own names
_TAKEN = frozenset(re.findall(r"\S+", """
    await break case catch class const continue debugger default delete do else enum export extends false finally
    for function if implements import in instanceof interface let new null package private protected public return
    static super switch this throw true try typeof var void while with yield arguments eval undefined NaN Infinity
    http check group sleep exec open SharedArray options setup teardown handleSummary serviceUrl url jsonValue asText
    jsonPath headerValue header regex parseCsv vars res SERVICES VARIABLES DEFAULT_HEADERS
"""))


def function_names(spec: Spec) -> dict[str, str]:
    """Each journey's exported function: its name where that is a JavaScript identifier free to take."""
    out: dict[str, str] = {}
    for j in spec.journeys:
        name = re.sub(r"\W", "_", j.name, flags=re.ASCII)
        if name[0].isdigit() or name in _TAKEN or name.startswith("DATA_"):
            name = "journey_" + name
        while name in out.values():
            name += "_"
        out[j.name] = name
    return out


def scenario_names(spec: Spec) -> dict[str, str]:
    """Each journey's scenario: its name, with the dots k6 refuses in scenario names as underscores."""
    out: dict[str, str] = {}
    for j in spec.journeys:
        name = j.name.replace(".", "_")
        while name in out.values():
            name += "_"
        out[j.name] = name
    return out


def uses_vars(journey: Journey) -> bool:
    """Does the journey's function read or write its VU's variables?"""
    return bool(journey.data) or any(
        step.extract or any(t.refs for t in step.templates) for step in journey.steps
    )


def helpers(spec: Spec) -> set[str]:
    """The helper functions some step of the script calls (the others are left out)."""
    checks = [c for j in spec.journeys for st in j.steps for c in st.checks]
    extracts = [e for j in spec.journeys for st in j.steps for e in st.extract]
    used = set()
    if any(c.kind == "jsonpath" for c in checks) or any(e.kind == "jsonpath" for e in extracts):
        used.add("jsonValue")
    if any(c.kind == "jsonpath" and c.equals is not None for c in checks) or any(e.kind == "jsonpath"
                                                                                 for e in extracts):
        used |= {"jsonPath", "asText"}
    if any(c.kind == "header" for c in checks) or any(e.kind == "header" for e in extracts):
        used.add("headerValue")
    if any(c.kind == "header" and c.equals is not None for c in checks) or any(e.kind == "header"
                                                                               for e in extracts):
        used |= {"header", "asText"}
    if any(e.kind == "regex" for e in extracts):
        used.add("regex")
    return used


class K6Generator:
    tool: ClassVar[str] = "k6"

    def render(self, spec: Spec, options: GenerationOptions) -> GeneratedScript:
        profile = spec.profile(options.profile)
        env = environment(
            {
                "js": js_string,
                "js_tmpl": js_template,
                "js_value": js_value,
                "dur": fmt_seconds,
                "js_json": lambda v: js_string_json(v),
                "service_env": service_env,
            }
        )
        env.tests["using_vars"] = uses_vars
        thresholds: dict[str, list[str]] = {}
        for slo in spec.slos:
            scope = (("journey", slo.journey), ("step", slo.step), ("service", slo.service))
            tags = ",".join(f"{k}:{v}" for k, v in scope if v)
            if slo.metric == "check_failure_rate":
                # k6's checks rate counts checks, not requests with a failed check: the warehouse judges this
                # SLO after the run, and k6 cannot stop the run on it
                if slo.abort_on_fail:
                    raise GenerationError(
                        "SLO check_failure_rate with abort_on_fail: k6 measures checks one by one, not requests "
                        "with a failed check, so it cannot stop a run on this SLO; drop abort_on_fail (the "
                        "warehouse judges it after the run) or use error_rate")
                continue
            if slo.metric == "error_rate":
                metric, expr = "http_req_failed", f"rate<{slo.threshold:g}"
            elif slo.metric == "throughput":
                metric, expr = "http_reqs", f"rate>={slo.threshold:g}"
            else:
                metric, expr = "http_req_duration", f"{_SLO_AGG.get(slo.metric) or f'p({slo.metric[1:]})'}<{slo.threshold:g}"
            key = f"{metric}{{{tags}}}" if tags else metric
            entry = (
                json.dumps({"threshold": expr, "abortOnFail": True}) if slo.abort_on_fail else js_string(expr)
            )
            thresholds.setdefault(key, []).append(entry)
        content = env.get_template("k6/script.js.j2").render(
            spec=spec,
            spec_file=Path(spec.file).name,
            profile=profile,
            journeys=journey_vus(spec, profile),
            urls=service_urls(spec, options),
            thresholds=thresholds,
            datasets=used_datasets(spec),
            uses_groups=any(step.group for j in spec.journeys for step in j.steps),
            uses_checks=any(step.checks for j in spec.journeys for step in j.steps),
            uses_sleep=any(j.think_time or j.group_think or any(st.think_time for st in j.steps)
                           for j in spec.journeys),
            functions=function_names(spec),
            scenarios=scenario_names(spec),
            helpers=helpers(spec),
            http_function=_HTTP_FUNCTION,
        )
        files = tuple(d.path for d in used_datasets(spec).values())
        return GeneratedScript("k6", f"{spec.name}.k6.js", content, files=files)
