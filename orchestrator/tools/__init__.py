"""The load tools perfhouse drives, one module each, behind one registry (`TOOLS`, by tool name).

A tool module declares everything perfhouse needs of its tool: how to find it and ask its version, how to
render a spec as its script, the command line and files of a run (per generator of a split test), the
result formats it writes (each with its progress counter and live cutter), how secrets reach it, how to
stop it, and which runners and images can run it. Orchestration, live ingest, progress, runners, secrets
and the CLI ask the tool through this interface and never branch on its name.
"""

from __future__ import annotations

import importlib
import math
import os
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from orchestrator.errors import GenerationError, ToolMissingError
from orchestrator.userscript import Request

if TYPE_CHECKING:
    from orchestrator.generators.base import GeneratedScript, GenerationOptions
    from orchestrator.spec import Spec


@dataclass(frozen=True)
class Segment:
    """One part of a test split over `count` generators (k6 execution segments: index/count)."""

    index: int  # 0-based
    count: int

    @property
    def name(self) -> str:
        """The generator tag of this part: `g1` ... `gN`, or "" when the test is not split."""
        return f"g{self.index + 1}" if self.count > 1 else ""

    @property
    def suffix(self) -> str:
        return f"-{self.name}" if self.name else ""


WHOLE = Segment(0, 1)


@dataclass
class Counts:
    requests: int = 0
    errors: int = 0
    durations: list[float] = field(default_factory=list)  # ms, of the requests since the last `take_p95`

    def take_p95(self) -> float | None:
        """The p95 (nearest rank) of the durations fed since the last call, which it then forgets."""
        if not self.durations:
            return None
        ordered = sorted(self.durations)
        self.durations = []
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class Counter(Protocol):
    """Counts requests, errors and durations in complete lines of one result format, fed as the file grows;
    `vus` is the tool's latest count of active VUs (threads) in this file, None until it says.

    Progress lines (orchestrator.progress) add up what the counters of a run's outputs count."""

    vus: int | None

    def feed(self, lines: list[bytes], counts: Counts) -> None: ...


class Cutter(Protocol):
    """Where a format's growing file may be cut: chunks that the warehouse ingests like the whole file.

    Live ingest (orchestrator.live) cuts each growing output where its format's cutter says."""

    def header(self, data: bytes) -> int:
        """At offset 0: the length of a header every chunk must repeat (0: none); -1: not known yet."""

    def cut(self, data: bytes, final: bool) -> int:
        """How many leading bytes of `data` (the file from the current offset) form a safe chunk (0: none).

        `final`: the tool has stopped and `data` runs to the end of the file.
        """

    def worth_ingesting(self, chunk: bytes) -> bool:
        """Does the chunk hold anything the warehouse keeps (else it is skipped, not an error)?"""


@dataclass(frozen=True)
class ResultFormat:
    """A result file a tool writes: the warehouse's ingest format for it, and how to follow it as it grows."""

    name: str  # the warehouse ingest format (warehouse.ingest.all_formats)
    counter: type[Counter] | None = None  # progress: requests, errors, durations, VUs from its lines
    cutter: type[Cutter] | None = None  # live ingest: where the growing file may be cut into chunks


@dataclass(frozen=True)
class Output:
    """One result file of a run: where the tool writes it, for which generator, in which format."""

    path: Path
    format: ResultFormat
    generator: str = ""  # "" when the test is not split, else g1..gN


@dataclass(frozen=True)
class ScriptFacts:
    """What perfhouse reads of a hand-written script without running it."""

    requests: tuple[Request, ...]  # in the script's order: the structure its fingerprint hashes
    references: tuple[str, ...] = ()  # strings that may name files it opens (data, modules), relative to it


@dataclass(frozen=True)
class ThresholdVerdict:
    """One of a script's own thresholds as the tool judged it at the end of the run. `metric`, `scope` and
    `bound` map it onto a warehouse SLO when they can (`metric` "" when it does not map)."""

    name: str  # as the script writes it: http_req_duration{name:checkout} p(95)<500
    passed: bool
    metric: str = ""  # an SLO metric (p95, avg, error_rate, throughput, ...) or "" when none maps
    threshold: float = 0.0
    journey: str = ""
    step: str = ""


@dataclass(frozen=True)
class Invocation:
    argv: list[str]
    outputs: list[Output]  # result files to ingest, in order
    summary: Path | None = None  # the tool's own end-of-test summary, kept beside the run


class Tool(Protocol):
    name: ClassVar[str]
    display_name: ClassVar[str]  # as a sentence names it (JMeter)
    # The tool version a generated script targets when neither the user (generate --jmeter-version) nor an
    # installed tool says; '' for a tool whose scripts do not depend on its version.
    script_version: ClassVar[str]
    script_suffix: ClassVar[str]
    version_args: ClassVar[tuple[str, ...]]  # what follows the program to print its version
    stop_signal: ClassVar[int]  # ends the tool gracefully, flushing its results
    splits: ClassVar[bool]  # can one test be split over several generators (--generators N)?
    # How a split reaches the parts: False, one script and the segment's arguments (k6 execution
    # segments); True, a script of its own per part, generated with GenerationOptions.vu_scale.
    scaled_scripts: ClassVar[bool]
    runners: ClassVar[frozenset[str]]  # the runners that can run it (local, docker, k8s)
    default_image: ClassVar[str]  # the image container runners use unless told otherwise
    install_hint: ClassVar[str]  # how to install it, said when it is missing

    def binary(self) -> str | None: ...

    def version(self, binary: str) -> str: ...

    def parse_version(self, output: str) -> str: ...

    def render(self, spec: Spec, options: GenerationOptions) -> GeneratedScript:
        """The spec as this tool's script (see orchestrator.generators)."""

    def for_version(self, options: GenerationOptions, version: str) -> GenerationOptions:
        """The generation options for the tool version a run will use (a script may depend on it)."""

    def invocation(self, binary: str, script: Path, outdir: Path, segment: Segment = WHOLE) -> Invocation:
        """The argv (argv[0] is the program; a container runner uses the image's entrypoint) and outputs.

        Every path in it lies in `outdir`, so a runner that mounts `outdir` at the same path keeps it valid.
        """

    def secret_file(self, values: Mapping[str, str]) -> bytes | None:
        """The ${env:NAME} values as a file the tool reads for the run, or None when the environment
        (which every runner hands the tool) is how it reads them."""

    def secret_args(self, path: Path) -> list[str]:
        """The arguments that point the tool at its secret file."""

    def completed(self, exit_code: int) -> bool:
        """Did the tool finish its load (possibly with failed thresholds)?"""

    # -- hand-written scripts (orchestrator.scripts) ---------------------------------------------------
    # script_suffixes: the file names its scripts end with; variable_flag: how its users pass variables to a
    # script (-e NAME=VALUE: environment variables; -J name=value: JMeter properties).
    script_suffixes: ClassVar[tuple[str, ...]]
    variable_flag: ClassVar[str]

    def owns_script(self, text: str) -> bool:
        """Is this text (of a file with one of `script_suffixes`) a script of this tool?"""

    def script_facts(self, text: str, file: str) -> ScriptFacts:
        """Its requests and the files it may open; a script that cannot be read is a one-line SpecError."""

    def script_variables(self, values: Mapping[str, str]) -> tuple[dict[str, str], bytes | None]:
        """The variables given with `variable_flag` as environment (every runner hands it to the tool, never
        on its command line) and as a file the tool reads (see secret_file; None: none)."""

    def script_invocation(self, binary: str, script: Path, outdir: Path, segment: Segment = WHOLE) -> Invocation:
        """As `invocation`, for a hand-written script (its own name in `outdir`, files beside it)."""

    def scale_script(self, text: str, segment: Segment, variables: Mapping[str, str]) -> str | None:
        """A scaled_scripts tool: the script with this part's share of the load, with the variables given for it
        (GenerationError if it cannot; None when the part gets no load)."""

    def script_verdicts(self, summary: Path) -> list[ThresholdVerdict]:
        """The script's own thresholds as the tool judged them, from its end-of-test summary ([] if none)."""

    def stopped_early(self, console: str) -> str:
        """Why a completed run ended before its profile did by the tool's own rule (an SLO's abort_on_fail),
        read from the end of its console log; '' when it ran its whole profile."""


TOOLS: dict[str, Tool] = {}


def register(cls: type) -> type:
    TOOLS[cls.name] = cls()  # type: ignore[attr-defined]
    return cls


def get(name: str) -> Tool:
    """The tool of that name; an unknown name is a one-line error listing the known ones."""
    if name not in TOOLS:
        raise ToolMissingError(f"unknown tool {name!r}; perfhouse drives: {', '.join(TOOLS)}")
    return TOOLS[name]


def generate(spec: Spec, tool: str, options: GenerationOptions) -> GeneratedScript:
    """The spec as the script of `tool`, which that tool's module renders with its generator."""
    if tool not in TOOLS:
        raise GenerationError(f"unknown tool {tool!r}; known: {', '.join(sorted(TOOLS))}")
    return TOOLS[tool].render(spec, options)


def require(name: str) -> tuple[Tool, str]:
    tool = get(name)
    binary = tool.binary()
    if binary is None:
        raise ToolMissingError(f"{name} is not installed (not found on PATH): {tool.install_hint}")
    return tool, binary


def available() -> list[str]:
    return [name for name, tool in TOOLS.items() if tool.binary() is not None]


def script_tool(suffix: str, text: str) -> Tool | None:
    """The tool whose script this is (by the file's suffix and what it holds), or None."""
    for tool in TOOLS.values():
        if suffix.lower() in tool.script_suffixes and tool.owns_script(text):
            return tool
    return None


def script_suffixes() -> list[str]:
    return sorted({s for tool in TOOLS.values() for s in tool.script_suffixes})


def image_env(name: str) -> str:
    """The environment variable that names a tool's image: PERFHOUSE_<TOOL>_IMAGE."""
    return f"PERFHOUSE_{name.upper()}_IMAGE"


def default_image(name: str) -> str:
    """The image a container runner uses for a tool: $PERFHOUSE_<TOOL>_IMAGE, else the tool's own default."""
    return os.environ.get(image_env(name), "") or get(name).default_image


def _discover() -> None:
    """Import every module of this package: each registers its tool (adding a tool is adding a module)."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_discover()

__all__ = [
    "TOOLS",
    "WHOLE",
    "Counter",
    "Counts",
    "Cutter",
    "Invocation",
    "Output",
    "Request",
    "ResultFormat",
    "ScriptFacts",
    "Segment",
    "ThresholdVerdict",
    "Tool",
    "available",
    "default_image",
    "generate",
    "get",
    "register",
    "require",
    "script_suffixes",
    "script_tool",
]
