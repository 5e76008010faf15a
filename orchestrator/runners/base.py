"""The runner interface and registry: what a runner is given (a Job of parts) and what it returns."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import ClassVar, Protocol

from orchestrator.tools import Tool, default_image
from orchestrator.watchdog import Watchdog

GRACE_S = 15.0  # how long a stopped tool may take to flush its results before it is killed


@dataclass(frozen=True)
class RunnerOptions:
    """Where and how a runner starts the tools; each runner reads the fields that concern it."""

    images: dict[str, str] = field(default_factory=dict)  # tool -> image (container runners)
    network_mode: str = "host"
    cpus: float | None = None  # CPU limit per container
    memory: str | None = None  # memory limit per container, docker syntax: 512m, 2g
    user: str | None = None  # container user; None: the invoking user's uid:gid, so outputs are theirs
    namespace: str = "default"  # Kubernetes
    kube_context: str | None = None
    docker_hosts: tuple[str, ...] = ()  # Docker engines the parts are spread over (else the local one)

    def image(self, tool: str) -> str:
        return self.images.get(tool) or default_image(tool)


@dataclass(frozen=True)
class Part:
    """One process or container of a job: the tool on one generator's share of the load."""

    generator: str  # "" when the test is not split, else g1..gN
    argv: list[str]  # argv[0] is the tool's program; container runners use the image's entrypoint
    log: Path  # the tool's console output


@dataclass(frozen=True)
class ResultsSink:
    """Where parts that run away from this host send their results: the results receiver (InfluxDB v1 write API)."""

    url: str  # base URL as the parts reach it; k6 writes to {url}/perfhouse
    token: str = ""  # the password the receiver requires (InfluxDB credentials)


@dataclass(frozen=True)
class Job:
    run_id: str
    tool: Tool
    parts: tuple[Part, ...]
    directory: Path  # the run directory: scripts in, results out
    timeout_s: float | None = None
    options: RunnerOptions = field(default_factory=RunnerOptions)
    env: dict[str, str] = field(default_factory=dict)  # ${env:NAME} values the tool reads (never logged)
    secrets: tuple[str, ...] = ()  # the names in `env` that are ${env:NAME} values (the rest: service URLs)
    files: tuple[Path, ...] = ()  # the data files the script opens, beside it in the run directory
    fds: tuple[int, ...] = ()  # descriptors the tool's processes inherit (in-memory secret files)
    watchdog: Watchdog | None = None  # told of every process group and container, undoes them if perfhouse dies
    results: ResultsSink | None = None  # set when the runner's parts send results to a receiver
    # called once every part has started (by `supervise`): work that can wait for the tool, not delay its start
    started: Callable[[], None] = field(default=lambda: None, compare=False)


@dataclass(frozen=True)
class Execution:
    exit_codes: tuple[int, ...]  # one per part, in order
    interrupted: bool  # stopped by Ctrl-C / SIGTERM
    timed_out: bool
    logs: tuple[Path, ...]
    seconds: float

    @property
    def exit_code(self) -> int:
        """The first non-zero exit code of the parts, else 0."""
        return next((c for c in self.exit_codes if c != 0), 0)


@dataclass(frozen=True)
class Target:
    """What a runner will start for a tool: a program on PATH or an image, and the tool's version."""

    program: str
    version: str


class Runner(Protocol):
    name: ClassVar[str]
    # Do the tools run on this host, sharing its network and the run directory? Then perfhouse checks
    # the targets first and ingests the outputs after; otherwise (Kubernetes) results stay remote.
    on_this_host: ClassVar[bool]
    # Can the tool inherit file descriptors (then secrets reach it as in-memory files, never on disk)?
    inherits_fds: ClassVar[bool]

    def target(self, tool: Tool, options: RunnerOptions) -> Target:
        """Check the tool can run here (raise a PerfhouseError saying why not) and report its version."""

    def execute(self, job: Job) -> Execution:
        """Run every part to its end, the timeout or a signal; leave no process or container behind."""


RUNNERS: dict[str, Runner] = {}


def register(cls: type) -> type:
    RUNNERS[cls.name] = cls()  # type: ignore[attr-defined]
    return cls


class StopRequest:
    """Set by SIGINT/SIGTERM (or the caller) while a job runs; the runner then stops its parts gracefully."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signals = 0  # a second Ctrl-C means: do not wait for the tools to flush

    def __bool__(self) -> bool:
        return self.event.is_set()

    @contextmanager
    def on_signals(self) -> Iterator[StopRequest]:
        """Catch SIGINT and SIGTERM for the duration (only possible in the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def stop(signum: int, frame: FrameType | None) -> None:
            self.signals += 1
            self.event.set()

        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def supervise(
    job: Job,
    alive: Callable[[], bool],
    stop: Callable[[], None],
    kill: Callable[[], None],
    stop_request: StopRequest,
    started: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> tuple[bool, bool]:
    """The wait loop every runner shares, entered once the parts have started (it calls `job.started()` first):
    until the parts end; on a signal or the timeout, `stop` them, give them GRACE_S to flush (a second signal cuts
    that short), then `kill`. Returns (interrupted, timed_out)."""
    job.started()
    deadline = None if job.timeout_s is None else started + job.timeout_s
    timed_out = False
    stopping_since: float | None = None
    while alive():
        now = clock()
        if stopping_since is None and (stop_request or (deadline is not None and now > deadline)):
            timed_out = not stop_request
            stopping_since = now
            stop()
        if stopping_since is not None and (now - stopping_since > GRACE_S or stop_request.signals > 1):
            kill()
            break
        sleep(0.1)
    return bool(stop_request), timed_out
