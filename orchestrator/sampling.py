"""How many requests a profile gives each step, estimated from the spec before a run, and the steps that would
get fewer than a verdict needs (a comparison judges no step with fewer than MIN_SAMPLES requests).

Every step is sent once per journey iteration. Iterations come from the profile: a fixed count per VU, an
arrival rate over its duration, or, for VUs looping, the VU-seconds over the shortest an iteration can take
(its think times, at their minimum; requests taking no time at all). So the figure is the most the step can
get: when even that is short of MIN_SAMPLES the step cannot be judged, whatever the server does. Without
think time a looping VU's iterations have no upper bound and no warning is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.generators.base import Allocation, journey_vus
from orchestrator.spec import Journey, Spec, Stage
from warehouse.analysis import MIN_SAMPLES


@dataclass(frozen=True)
class ThinStep:
    label: str  # journey/step as results name them
    at_most: int  # requests the profile can give it


def thin_steps(spec: Spec, profile_name: str, needed: int = MIN_SAMPLES) -> list[ThinStep]:
    """The steps whose most requests under the profile fall short of `needed`."""
    out = []
    for alloc in journey_vus(spec, spec.profile(profile_name)):
        iterations = _iterations(alloc)
        if iterations is None or iterations >= needed:
            continue
        out += [ThinStep(f"{alloc.journey.key}/{step.key}", int(iterations)) for step in alloc.journey.steps]
    return out


def warning(spec: Spec, profile_name: str, needed: int = MIN_SAMPLES) -> str:
    """One line naming the thin steps with what they would get and need ('' when none)."""
    thin = thin_steps(spec, profile_name, needed)
    if not thin:
        return ""
    shown = ", ".join(f"{t.label} (at most {t.at_most})" for t in thin[:8])
    more = f" and {len(thin) - 8} more" if len(thin) > 8 else ""
    return (f"warning: profile {profile_name!r} gives {len(thin)} step(s) fewer requests than the {needed} a "
            f"regression verdict needs, so they will be INCONCLUSIVE: {shown}{more}; lengthen the profile or "
            "raise its load")


def _iterations(alloc: Allocation) -> float | None:
    """The most iterations of the journey the allocation can run (None: no bound)."""
    profile = alloc.profile
    if profile.executor == "iterations":
        return float(alloc.vus * profile.iterations)
    if profile.is_arrival_rate:
        if profile.executor == "constant_arrival_rate":
            return alloc.rate * profile.duration_s / profile.time_unit_s
        return _area(alloc.start_rate, alloc.stages) / profile.time_unit_s
    vu_seconds = alloc.vus * profile.duration_s if profile.executor == "constant_vus" else _area(0, alloc.stages)
    shortest = _think_s(alloc.journey)
    return None if shortest <= 0 else vu_seconds / shortest


def _area(start: float, stages: tuple[Stage, ...]) -> float:
    """The integral of a ramp (linear between targets, from `start`) over its stages."""
    total, level = 0.0, float(start)
    for stage in stages:
        total += (level + stage.target) / 2 * stage.duration_s
        level = float(stage.target)
    return total


def _think_s(journey: Journey) -> float:
    """The least think time one iteration of the journey waits (steps, groups and the journey's own)."""
    waits = [s.think_time for s in journey.steps] + [journey.think_time] + [t for _, t in journey.group_think]
    return sum(w.min_s for w in waits if w is not None)
