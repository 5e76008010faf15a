"""The runner interface and registry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol


@dataclass(frozen=True)
class Execution:
    exit_code: int
    interrupted: bool  # stopped by Ctrl-C / SIGTERM
    timed_out: bool
    log: Path
    seconds: float


class Runner(Protocol):
    name: ClassVar[str]

    def execute(self, argv: list[str], cwd: Path, log: Path, timeout_s: float | None) -> Execution: ...


RUNNERS: dict[str, Runner] = {}


def register(cls: type) -> type:
    RUNNERS[cls.name] = cls()  # type: ignore[attr-defined]
    return cls
