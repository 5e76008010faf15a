"""What every generator shares: the registry, the result type and the jinja2 environment."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import jinja2

from orchestrator.errors import GenerationError
from orchestrator.spec import Profile, Spec

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "templates"


@dataclass(frozen=True)
class GenerationOptions:
    """What a generation depends on beyond the spec."""

    profile: str
    services: dict[str, str] = field(default_factory=dict)  # overrides of the spec's base URLs
    jmeter_version: str = "5.6"
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


GENERATORS: dict[str, Generator] = {}


def register(cls: type) -> type:
    GENERATORS[cls.tool] = cls()  # type: ignore[attr-defined]
    return cls


def generate(spec: Spec, tool: str, options: GenerationOptions) -> GeneratedScript:
    if tool not in GENERATORS:
        raise GenerationError(f"unknown tool {tool!r}; known: {', '.join(sorted(GENERATORS))}")
    return GENERATORS[tool].render(spec, options)


def environment(filters: dict[str, Any]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
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


def journey_vus(spec: Spec, profile: Profile) -> list[dict[str, Any]]:
    """Per journey, its share by weight of the profile: VUs, stage targets, rates and VU pools.

    Every share is a whole number from the same largest-remainder split (at least 1 each), so
    both tools get identical allocations; a stage target of 0 stays 0.
    """
    def share(total: int) -> dict[str, int]:
        return spec.vus_per_journey(max(1, total))

    vus = share(profile.vus)
    stage_shares = [share(s.target) for s in profile.stages]
    rate, start = share(profile.rate), share(profile.start_rate)
    pre, cap = share(profile.pre_allocated_vus), share(profile.max_allocated_vus)
    out = []
    for j in spec.journeys:
        stages = [
            {"duration_s": s.duration_s, "target": (sh[j.name] if s.target else 0)}
            for s, sh in zip(profile.stages, stage_shares, strict=True)
        ]
        out.append({
            "journey": j, "vus": vus[j.name], "stages": stages,
            "rate": rate[j.name] if profile.rate else 0,
            "start_rate": start[j.name] if profile.start_rate else 0,
            "pre_allocated_vus": pre[j.name], "max_vus": cap[j.name],
        })
    return out


def fmt_seconds(seconds: float) -> str:
    """k6 duration text: 1m30s, 250ms."""
    ms = round(seconds * 1000)
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (sec, "s")) if v) or "0s"
