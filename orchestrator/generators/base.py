"""What every generator shares: the registry, the result type and the jinja2 environment."""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol

import jinja2

from orchestrator.errors import GenerationError
from orchestrator.spec import Journey, Profile, Spec, Stage, split_by_weight

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "templates"


@dataclass(frozen=True)
class GenerationOptions:
    """What a generation depends on beyond the spec."""

    profile: str
    services: dict[str, str] = field(default_factory=dict)  # overrides of the spec's base URLs
    tool_version: str = ""  # the version of the tool the script is for ('' : its generator's default)
    vu_scale: tuple[int, int] = (0, 1)  # (index, count) of a generator when a test is split


@dataclass(frozen=True)
class GeneratedScript:
    tool: str
    filename: str
    content: str
    notes: tuple[str, ...] = ()  # documented approximations this script makes
    files: tuple[Path, ...] = ()  # data files the script reads, to be placed beside it

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()


class Generator(Protocol):
    tool: ClassVar[str]

    def render(self, spec: Spec, options: GenerationOptions) -> GeneratedScript: ...


@functools.cache
def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept in the user's cache directory, so a run does not compile them again (a compile
    takes a tenth of a second or more); each entry is checked against its template's source."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "perfhouse" / "templates"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(root)) if os.access(root, os.W_OK) else None


def environment(filters: dict[str, Any]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        bytecode_cache=_bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # every value goes through the filter for its context instead
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filters)
    env.tests["search"] = lambda value, pattern: re.search(pattern, str(value)) is not None
    return env


def used_datasets(spec: Spec) -> dict[str, Any]:
    """The data sets some journey reads, by name."""
    return {j.data: spec.datasets[j.data] for j in spec.journeys if j.data}


def service_urls(spec: Spec, options: GenerationOptions) -> dict[str, str]:
    urls = dict(spec.services)
    for name, url in options.services.items():
        if name not in urls:
            raise GenerationError(
                f"--service {name}=...: the spec {spec.file} has no service {name!r}; "
                f"its services: {', '.join(urls)}"
            )
        urls[name] = url.rstrip("/")
    return urls


@dataclass(frozen=True)
class Allocation:
    """One journey's share of a profile (see journey_vus): its VUs, stage targets, rates and VU pools."""

    journey: Journey
    profile: Profile  # the shape this journey follows: the profile's own or the journey's within it
    vus: int
    stages: tuple[Stage, ...]
    rate: int
    start_rate: int
    pre_allocated_vus: int
    max_vus: int


def journey_vus(spec: Spec, profile: Profile, vu_scale: tuple[int, int] = (0, 1)) -> list[Allocation]:
    """Per journey, its share by weight of the profile: VUs, stage targets, rates and VU pools.

    Every share is a whole number from the same largest-remainder split (at least 1 each), so
    both tools get identical allocations; a stage target of 0 stays 0. With `vu_scale` (index, count)
    each of those numbers is then split among `count` parts (see `part_share`) and part `index`'s
    share returned: the parts add up to the whole exactly, and a part may get 0 of something; only
    the VU pools of arrival rates differ (a part with iterations to start has at least one VU, a part
    without has none).
    """
    own = dict(profile.journeys)  # journeys with a shape of their own get all of it
    sharing = [(j.name, j.weight) for j in spec.journeys if j.name not in own]
    out = [_allocation(own[j.name], j, [(j.name, 1)]) if j.name in own else _allocation(profile, j, sharing)
           for j in spec.journeys]
    index, count = vu_scale
    if not 0 <= index < count:
        raise GenerationError(f"vu_scale {vu_scale}: the part index must lie in 0..count-1")
    if count > 1:
        out = [_scaled(alloc, index, count, offset) for offset, alloc in enumerate(out)]
    return out


def _allocation(profile: Profile, journey: Journey, weights: list[tuple[str, int]]) -> Allocation:
    """A journey's share by weight (among `weights`) of a profile's VUs, stage targets, rates and pools."""
    def share(total: int) -> int:
        return split_by_weight(max(1, total), weights)[journey.name]

    return Allocation(
        journey=journey, profile=profile, vus=share(profile.vus),
        stages=tuple(Stage(s.duration_s, share(s.target) if s.target else 0) for s in profile.stages),
        rate=share(profile.rate) if profile.rate else 0,
        start_rate=share(profile.start_rate) if profile.start_rate else 0,
        pre_allocated_vus=share(profile.pre_allocated_vus), max_vus=share(profile.max_allocated_vus),
    )


def allocated_vus(alloc: Allocation) -> int:
    """The most VUs a journey's allocation (journey_vus) may run at once."""
    if alloc.profile.is_arrival_rate:
        return int(alloc.max_vus)
    return max([alloc.vus, *(s.target for s in alloc.stages)])


def part_share(total: int, index: int, count: int, offset: int = 0) -> int:
    """Part `index`'s share of `total` split among `count` equal parts by largest remainder.

    Every part gets `total // count`; the remainders tie, so the `total % count` extra units go to the
    parts in turn from part `offset` on (the journey's position, so small journeys spread over the
    parts instead of all landing on the first). A part's share never falls as `total` grows, so a
    ramp stays a ramp in every part, and the shares of all parts add up to `total`.
    """
    return total // count + ((index - offset) % count < total % count)


def _scaled(alloc: Allocation, index: int, count: int, offset: int) -> Allocation:
    """One part's share of a journey's allocation (see journey_vus)."""
    def part(total: int) -> int:
        return part_share(total, index, count, offset)

    scaled = replace(alloc, vus=part(alloc.vus), rate=part(alloc.rate), start_rate=part(alloc.start_rate),
                     stages=tuple(replace(s, target=part(s.target)) for s in alloc.stages),
                     pre_allocated_vus=part(alloc.pre_allocated_vus), max_vus=part(alloc.max_vus))
    if alloc.profile.is_arrival_rate:
        # A part that starts a journey's iterations needs a VU to run them, even when the pool split left it
        # none; a part that starts none gets no pool (JMeter before 5.5 paces a pool of threads by a timer
        # whose rate 0 would mean: no pacing at all).
        busy = has_load([scaled])
        scaled = replace(scaled, pre_allocated_vus=max(1, scaled.pre_allocated_vus) if busy else 0,
                         max_vus=max(1, scaled.max_vus) if busy else 0)
    return scaled


def has_load(allocations: list[Allocation]) -> bool:
    """Does any journey of these allocations (journey_vus) run anything at all?"""
    for a in allocations:
        executor = a.profile.executor
        if executor in ("constant_vus", "iterations") and a.vus > 0:
            return True
        if executor in ("ramping_vus", "ramping_arrival_rate") and any(s.target for s in a.stages):
            return True
        if a.rate > 0 or a.start_rate > 0:
            return True
    return False


def fmt_seconds(seconds: float) -> str:
    """k6 duration text: 1m30s, 250ms."""
    ms = round(seconds * 1000)
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (sec, "s")) if v) or "0s"
