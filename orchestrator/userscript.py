"""A team's own script as the spec model holds it: the requests it makes (what its fingerprint hashes) and the
script a run uses. Plain records, below the spec model, the tool registry and orchestrator.scripts, which reads
a script into them: a tool module fills the Requests, orchestrator.scripts the UserScript, and a Spec carries it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Request:
    """One request a hand-written script makes, as its fingerprint sees it: under which journey, named how,
    which method to which URL or path (as written, variables and all)."""

    journey: str
    step: str
    method: str
    path: str


@dataclass(frozen=True)
class UserScript:
    """A hand-written script as a run uses it."""

    path: Path  # absolute
    tool: str
    content: bytes
    requests: tuple[Request, ...]
    files: tuple[Path, ...] = ()  # files it opens, relative to its directory, copied beside it for a run
    variables: dict[str, str] = field(default_factory=dict, repr=False)  # -e / -J values: secret, never stored
    notes: tuple[str, ...] = ()

    @property
    def structure(self) -> list[tuple[str, str, str, str]]:
        return [(r.journey, r.step, r.method, r.path) for r in self.requests]
