"""The JSON Schema of the journey spec, for editors (validation and completion while typing).

perfhouse itself validates with orchestrator.spec, which gives located errors; this schema is built
from the same vocabularies (field names, executors, presets, check kinds) so the two cannot drift,
and `perfhouse schema` prints it. The file orchestrator/spec.schema.json is its published copy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator import spec as model

PUBLISHED = Path(__file__).with_name("spec.schema.json")
NAME = {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"}
DURATION = {
    "description": "seconds, or a duration such as 250ms, 30s, 1m30s, 2h",
    "oneOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h))+$"}],
}
TEXT = {"type": ["string", "number", "boolean"], "description": "text; ${name} inserts a variable, $$ a literal $"}
PAIRS = {"type": "object", "additionalProperties": TEXT, "propertyNames": {"minLength": 1}}
LABEL = {"type": "string", "pattern": r"^\S(.*\S)?$",
         "description": "free text naming it in results (k6 name tag, JMeter label); default: the name"}
CONTENT_TYPE = {"type": ["string", "null"], "description": "the Content-Type header; \"\" or null sends none"}
STATUS = {"type": "integer", "minimum": 100, "maximum": 599}
CHECK_NAME = {"type": "string", "pattern": r"^\S(.*\S)?$", "description": "free text naming the check in results"}
COMPARED = {"type": ["string", "number", "boolean"],
            "description": "text to compare with; ${name} inserts a spec variable, $$ a literal $"}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    out.update(extra)
    return out


def _one_key(options: dict[str, Any], **common: Any) -> dict[str, Any]:
    return {"oneOf": [_obj({k: v, **common}, (k,)) for k, v in options.items()]}


def build() -> dict[str, Any]:
    think = {"oneOf": [DURATION, _one_key({
        "constant": DURATION,
        "uniform": {"type": "array", "items": DURATION, "minItems": 2, "maxItems": 2},
    })]}
    checks = {
        "status": STATUS,
        "body_contains": {**COMPARED, "type": "string"},
        "body_matches": {"type": "string", "format": "regex"},
        "jsonpath": _obj({"path": {"type": "string", "pattern": r"^\$"}, "equals": COMPARED,
                          "exists": {"const": True}}, ("path",)),
        "header": _obj({"name": {"type": "string"}, "equals": COMPARED, "exists": {"const": True}}, ("name",)),
        "max_duration": DURATION,
    }
    extraction = _one_key({"jsonpath": {"type": "string", "pattern": r"^\$"},
                           "regex": {"type": "string", "format": "regex"}, "header": {"type": "string"}})
    body = {"oneOf": [
        _obj({"json": {}, "content_type": CONTENT_TYPE}, ("json",)),
        _obj({"form": PAIRS, "content_type": {"type": "string", "minLength": 1}}, ("form",)),
        _obj({"raw": {"type": "string"}, "content_type": CONTENT_TYPE}, ("raw",)),
    ]}
    step_props = {
        "name": NAME, "service": {"type": "string"}, "method": {"enum": list(model.METHODS)},
        "path": {"type": "string", "pattern": "^/"}, "query": PAIRS, "headers": PAIRS, "body": body,
        "timeout": DURATION, "checks": {"type": "array", "items": _one_key(checks, name=CHECK_NAME)},
        "extract": {"type": "object", "additionalProperties": extraction}, "think_time": think,
        "group": {**NAME, "description": "a transaction: consecutive steps of one group are timed together"},
        "label": LABEL,
        "expected_statuses": {"description": "statuses that are not request errors (default 200-399)", "oneOf": [
            STATUS, {"type": "array", "items": STATUS, "minItems": 1}]},
        "tags": {"type": "object", "description": "extra tags of the step's requests (k6)",
                 "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "not": {"enum": list(model.RESERVED_TAGS)}},
                 "additionalProperties": {"type": ["string", "number", "boolean"]}},
    }
    stage = _obj({"duration": DURATION, "target": {"type": "integer", "minimum": 0}}, ("duration", "target"))
    count = {"type": "integer", "minimum": 1}
    profile_props = {
        "executor": {"enum": list(model.EXECUTORS)}, "preset": {"enum": list(model.PRESETS)}, "vus": count,
        "duration": DURATION, "iterations": count, "stages": {"type": "array", "items": stage, "minItems": 1},
        "rate": count, "start_rate": {"type": "integer", "minimum": 0}, "time_unit": DURATION,
        "pre_allocated_vus": count, "max_vus": count, "ramp": DURATION, "step": DURATION,
        "base": count,
    }
    shape = _obj(profile_props, oneOf=[{"required": ["executor"]}, {"required": ["preset"]}])
    profile = _obj({**profile_props, "journeys": {
        "type": "object", "propertyNames": NAME, "additionalProperties": shape,
        "description": "journeys with a shape of their own; the others share the profile's by weight"}},
        anyOf=[{"required": ["executor"]}, {"required": ["preset"]}, {"required": ["journeys"]}])
    slo = _obj({
        "metric": {"anyOf": [{"enum": list(model.SLO_METRICS)},
                             {"type": "string", "pattern": f"^{model.SLO_PERCENTILE.pattern}$",
                              "description": "any percentile of duration: p75, p99.9"}]},
        "threshold": {"description": "a duration for latency metrics; a ratio (0.01) or percentage (1%) "
                                     "for error_rate and check_failure_rate; requests per second (50 or 50/s) for throughput",
                      "type": ["string", "number"]},
        "journey": {"type": "string"}, "step": {"type": "string"}, "service": {"type": "string"},
        "abort_on_fail": {"type": "boolean"},
    }, ("metric", "threshold"))
    top = {
        "name": NAME,
        "services": {"type": "object", "minProperties": 1,
                     "additionalProperties": {"type": "string", "pattern": r"^https?://(?!.*\$\{)"}},
        "variables": {"type": "object", "additionalProperties": TEXT},
        "defaults": _obj({"headers": PAIRS, "timeout": DURATION, "think_time": think}),
        "data": {"type": "object", "propertyNames": NAME, "additionalProperties": _obj({
            "file": {"type": "string", "description": "CSV file, relative to the spec; its header names the "
                                                       "variables of a row"},
            "mode": {"enum": list(model.DATA_MODES)},
        }, ("file",))},
        "journeys": {"type": "array", "minItems": 1, "items": _obj({
            "name": NAME, "label": LABEL, "weight": count,
            "data": {"type": "string", "description": "a data set name"},
            "steps": {"type": "array", "minItems": 1, "items": _obj(step_props, ("name", "path"))},
            "think_time": {**think, "description": "after each iteration, after the last step"},
            "groups": {"type": "object", "propertyNames": NAME, "additionalProperties": _obj(
                {"think_time": {**think, "description": "after the group, outside its duration"}}, ("think_time",))},
        }, ("name", "steps"))},
        "profiles": {"type": "object", "minProperties": 1, "additionalProperties": profile},
        "slos": {"type": "array", "items": slo},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "perfhouse journey spec",
        "description": "One journey spec; perfhouse generates k6 and JMeter scripts from it.",
        **_obj(top, ("name", "services", "journeys", "profiles")),
    }


def text() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
