"""The Locust generator: a spec becomes a locustfile with one user class per journey and a load shape."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from orchestrator.errors import GenerationError
from orchestrator.generators.base import (
    Allocation,
    GeneratedScript,
    GenerationOptions,
    environment,
    journey_vus,
    service_urls,
    used_datasets,
)
from orchestrator.spec import Profile, Ref, Spec, Template, service_env

# Users started per second when a shape asks for more: every user of a step starts at once, as k6's VUs do
SPAWN_RATE = 10_000


def py_string(value: str) -> str:
    """A Python string literal in ASCII: quotes, backslashes, line breaks and every non-ASCII character
    escaped (an astral character as one escape, not a surrogate pair), so no value can break out."""
    return ascii(value)


def py_template(tmpl: Template) -> str:
    """A templated spec string as a Python expression over the user's `vars` and the run's environment."""
    pieces = [
        (f"os.environ[{py_string(p.name)}]" if p.env else f"vars[{py_string(p.name)}]") if isinstance(p, Ref)
        else py_string(p)
        for p in tmpl.parts
        if p != ""
    ]
    return " + ".join(pieces) if pieces else '""'


def py_value(value: Any) -> str:
    """A JSON body as a Python expression; its strings may reference variables."""
    if isinstance(value, str):
        return py_template(Template.parse(value))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_string(str(k))}: {py_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(py_value(v) for v in value) + "]"
    if value is None or isinstance(value, bool):
        return {None: "None", True: "True", False: "False"}[value]
    return json.dumps(value)


def py_json(value: Any) -> str:
    """Plain data (JSONPath keys) as a Python literal."""
    return py_value(value) if not isinstance(value, str) else py_string(value)


def shape(profile: Profile, journeys: list[Allocation]) -> tuple[list[tuple[float, int]], list[str]]:
    """The users over time as (seconds since start, users) points joined by straight lines, and the notes on
    what Locust does differently. An empty list: no time limit (fixed iterations end the test themselves)."""
    notes: list[str] = []
    if profile.executor == "ramping_arrival_rate":
        raise GenerationError(
            f"profile {profile.name!r}: Locust has no ramping arrival rate (its pacing is per user and fixed); "
            "use a constant_arrival_rate or ramping_vus profile for Locust, or k6 or JMeter for this one"
        )
    if profile.executor == "iterations":
        return [], notes
    if profile.executor in ("constant_vus", "constant_arrival_rate"):
        users = sum(j.pre_allocated_vus if profile.is_arrival_rate else j.vus for j in journeys)
        if profile.is_arrival_rate:
            notes.append("Locust paces each journey's preAllocatedVUs users at an equal share of its rate "
                         "(constant_throughput): it adds no users when iterations run longer than their pacing")
        return [(0.0, users), (profile.duration_s, users)], notes
    points = [(0.0, 0)]
    elapsed = 0.0
    for index, stage in enumerate(profile.stages):
        elapsed += stage.duration_s
        points.append((elapsed, sum(j.stages[index].target for j in journeys)))
    if len(journeys) > 1:
        notes.append("Locust splits a ramp's users among the journeys by weight itself: a journey may have one "
                     "user more or less than k6 and JMeter give it at a moment")
    return points, notes


class LocustGenerator:
    tool = "locust"

    def render(self, spec: Spec, options: GenerationOptions) -> GeneratedScript:
        profile = spec.profile(options.profile)
        if options.vu_scale != (0, 1):
            raise GenerationError("Locust runs one generator per test here; use --generators 1 for it")
        if profile.journeys:
            raise GenerationError(
                f"profile {profile.name!r} gives journeys a shape of their own; Locust runs one load shape per "
                "test: use k6 or JMeter for this profile"
            )
        aborting = [i for i, slo in enumerate(spec.slos) if slo.abort_on_fail]
        if aborting:
            raise GenerationError(
                f"{Path(spec.file).name}: slos[{aborting[0]}] sets abort_on_fail, and perfhouse cannot stop a Locust "
                "run when an SLO fails; run this spec with k6, or drop abort_on_fail for Locust runs"
            )
        if spec.trace:
            raise GenerationError(
                f"{Path(spec.file).name}: trace context (a traceparent on every request) is generated for k6 and "
                "JMeter, not yet for Locust; run this spec with k6 or JMeter, or without `trace`"
            )
        journeys = journey_vus(spec, profile)
        points, notes = shape(profile, journeys)
        env = environment({"py": py_string, "py_tmpl": py_template, "py_value": py_value, "py_json": py_json,
                           "service_env": service_env})
        datasets = used_datasets(spec)
        content = env.get_template("locust/locustfile.py.j2").render(
            spec=spec,
            spec_file=Path(spec.file).name,
            profile=profile,
            journeys=journeys,
            urls=service_urls(spec, options),
            datasets=datasets,
            points=points,
            spawn_rate=SPAWN_RATE,
            total_vus=sum(j.vus for j in journeys),
            stop_timeout_s=stop_timeout_s(spec),
            uses_random=any(d.mode == "random" for d in datasets.values()) or any(
                t is not None and not t.is_constant
                for j in spec.journeys
                for t in (*(s.think_time for s in j.steps), j.think_time, *(g for _, g in j.group_think))
            ),
        )
        files = tuple(d.path for d in datasets.values())
        return GeneratedScript("locust", f"{spec.name}.locustfile.py", content, notes=tuple(notes), files=files)


def stop_timeout_s(spec: Spec) -> int:
    """How long a stopping test waits for its users: the request in flight (at most the slowest step's timeout)
    and a think time begun (at most the longest), whole seconds, one more for the line to be written."""
    timeouts = [s.timeout_s for j in spec.journeys for s in j.steps]
    pauses = [t.max_s for j in spec.journeys
              for t in (*(s.think_time for s in j.steps), j.think_time, *(g for _, g in j.group_think)) if t]
    return math.ceil(max(timeouts, default=0) + max(pauses, default=0)) + 1
