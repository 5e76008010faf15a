"""The k6 generator: a spec becomes one scenario per journey, with checks, tags and thresholds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from orchestrator.generators.base import (
    GeneratedScript,
    GenerationOptions,
    environment,
    fmt_seconds,
    journey_vus,
    service_urls,
    used_datasets,
)
from orchestrator.spec import Ref, Spec, Template

_SLO_AGG = {"p50": "med", "p90": "p(90)", "p95": "p(95)", "p99": "p(99)", "avg": "avg", "max": "max"}


def js_string(value: str) -> str:
    """A JS string literal; non-ASCII, U+2028/9 and `</` are escaped so no value can break out."""
    return json.dumps(value, ensure_ascii=True).replace("</", "<\\/")


def js_string_json(value: Any) -> str:
    """Any JSON value as a JS literal, escaped like js_string."""
    return json.dumps(value, ensure_ascii=True).replace("</", "<\\/")


def js_template(tmpl: Template) -> str:
    """A templated spec string as a JS expression over the VU's `vars` and the run's `__ENV`."""
    pieces = [
        (f"__ENV[{js_string(p.name)}]" if p.env else f"vars[{js_string(p.name)}]") if isinstance(p, Ref)
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
            }
        )
        thresholds: dict[str, list[str]] = {}
        for slo in spec.slos:
            scope = (("journey", slo.journey), ("step", slo.step), ("service", slo.service))
            tags = ",".join(f"{k}:{v}" for k, v in scope if v)
            if slo.metric == "error_rate":
                metric, expr = "http_req_failed", f"rate<{slo.threshold:g}"
            elif slo.metric == "throughput":
                metric, expr = "http_reqs", f"rate>={slo.threshold:g}"
            else:
                metric, expr = "http_req_duration", f"{_SLO_AGG[slo.metric]}<{slo.threshold:g}"
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
        )
        files = tuple(d.path for d in used_datasets(spec).values())
        return GeneratedScript("k6", f"{spec.name}.k6.js", content, files=files)
