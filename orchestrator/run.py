"""A load test from spec to verdict: generate, check targets, execute, ingest, evaluate SLOs.

Long because the run's steps, in the order they happen, are read together with what each leaves behind when the
run is interrupted or a tool dies; each step's own work lives in its module (runners, live, watchdog, ingest).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from secrets import token_urlsafe
from types import FrameType
from typing import TYPE_CHECKING, Any, Generic, TextIO, TypeVar, cast
from urllib.parse import urlsplit

from orchestrator.errors import GenerationError, PerfhouseError, RunAborted, TargetUnreachableError
from orchestrator.generators.base import (
    GeneratedScript,
    GenerationOptions,
    allocated_vus,
    has_load,
    journey_vus,
    service_urls,
)
from orchestrator.runners import RUNNERS, Execution, Job, Part, Runner, RunnerOptions, Target
from orchestrator.runners.base import ResultsSink
from orchestrator.secrets import SecretFile, require_env, secret_file
from orchestrator.spec import Spec, service_env
from orchestrator.tools import Output, Segment, Tool
from orchestrator.tools import get as get_tool
from orchestrator.watchdog import Watchdog
from warehouse.engine.ids import new_run_id
from warehouse.engine.owners import OWNER_LABEL, me
from warehouse.errors import IngestError, WarehouseError
from warehouse.report.traces import TRACE_URL_LABEL

# The warehouse's engine and SQL load while the tool runs, not before it starts; scraping and progress lines when asked
if TYPE_CHECKING:
    from orchestrator.live import LiveIngest
    from orchestrator.progress import Progress
    from orchestrator.receiver import Receiver
    from orchestrator.scrape import InfraRow, Scraper
    from warehouse.analysis.slo import Objective, Verdict
    from warehouse.analysis.verdict import RunVerdict
    from warehouse.ingest import IngestResult, StepFacts
    from warehouse.read.records import RunTotals, StepStats
    from warehouse.store import RunInfo, Warehouse

T = TypeVar("T")


@dataclass
class ToolRun:
    """What one tool's run produced: the run row, its files, ingestion and verdicts."""

    tool: str
    run_id: str
    status: str
    directory: Path
    exit_code: int | None = None
    ingested: list[IngestResult] = field(default_factory=list)
    totals: RunTotals | None = None  # once judged
    steps: list[StepStats] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    infra_samples: int = 0
    stopped_early: str = ""  # why a completed run ended before its profile did (an SLO's abort_on_fail)

    @property
    def slo_passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def verdict(self) -> RunVerdict:
        from warehouse.analysis.verdict import run_verdict

        return run_verdict(self.status, self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "run_id": self.run_id,
            "status": self.status,
            "directory": str(self.directory),
            "exit_code": self.exit_code,
            "rows": sum(i.rows for i in self.ingested),
            "rejected": sum(i.rejected for i in self.ingested),
            "totals": self.totals.to_dict() if self.totals is not None else {},
            "steps": [s.to_dict() for s in self.steps],
            "slos": [v.to_dict() for v in self.verdicts],
            "slo_passed": self.slo_passed,
            "verdict": str(self.verdict),
            "notes": self.notes,
            "infra_samples": self.infra_samples,
            "stopped_early": self.stopped_early,
        }


def objectives(spec: Spec) -> list[Objective]:
    from warehouse.analysis.slo import Objective

    return [Objective(s.metric, s.threshold, s.journey, s.step, s.abort_on_fail, s.service) for s in spec.slos]


def run_fingerprint(spec: Spec, profile: str, tool: str, environment: str, labels: dict[str, str]) -> str:
    """The fingerprint of a run of `spec`: its journeys' structure, profile, tool, environment, chosen labels."""
    from warehouse.engine.fingerprint import StepShape, fingerprint, structure_hash

    if spec.script is not None:  # what a hand-written script requests, as its tool reads it
        shape = structure_hash(StepShape(r.journey, r.step, r.method, r.path) for r in spec.script.requests)
    else:
        shape = structure_hash(
            StepShape(j.name, s.name, s.method, s.path.source, s.service) for j in spec.journeys for s in j.steps
        )
    return fingerprint(spec.name, shape, profile, tool, environment, labels)


def check_targets(spec: Spec, urls: dict[str, str], timeout_s: float = 3.0) -> None:
    """Fail fast, in one line, when a service the journeys use does not accept connections."""
    used = {step.service for j in spec.journeys for step in j.steps}
    for name in sorted(used):
        parts = urlsplit(urls[name])
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
                pass
        except OSError as exc:
            raise TargetUnreachableError(
                f"service {name!r} at {urls[name]} is unreachable: {exc.strerror or exc}"
            ) from None


def git_info(cwd: Path) -> tuple[str, str]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    return git("rev-parse", "HEAD"), git("rev-parse", "--abbrev-ref", "HEAD")


@dataclass(frozen=True)
class RunSettings:
    """How a run executes beyond spec and profile: where, split how, watched how."""

    runner: str = "local"
    options: RunnerOptions = field(default_factory=RunnerOptions)
    generators: int = 1  # split the test over N generators (k6 execution segments, JMeter scaled plans)
    scrape: tuple[str, ...] = ()  # Prometheus exposition URLs scraped while the run goes
    scrape_interval_s: float = 5.0
    progress_interval_s: float | None = None  # print a progress line this often (None: never)
    live: bool = False  # ingest the results while the tools run (orchestrator.live), not only after
    live_interval_s: float = 5.0
    # Runners whose parts run elsewhere (Kubernetes) send results to a receiver perfhouse starts for the run:
    # where it listens, and the URL the parts reach it by (default: this host's name and the port)
    receive_listen: str = "0.0.0.0:8086"
    receive_url: str = ""
    screen: TextIO | None = None  # a terminal to redraw the progress line on (else plain lines, as in CI)


@dataclass
class Watched:
    """What watching a run produced besides the tools' own outputs."""

    samples: list[InfraRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@contextmanager
def monitors(
    settings: RunSettings,
    job: Job,
    outputs: list[Output],
    total_s: float,
    echo: Callable[[str], None],
    live: LiveIngest | None = None,
) -> Iterator[Watched]:
    """Scrape Prometheus endpoints, print progress lines and ingest live while the body (the execution) runs.

    Live ingestion is only stopped here; the caller ingests the rest with `live.finish()`."""
    watched = Watched()
    scraper: Scraper | None = None
    progress: Progress | None = None
    if settings.scrape:  # each loads when asked for
        from orchestrator.scrape import Scraper

        scraper = Scraper(settings.scrape, settings.scrape_interval_s)
    if settings.progress_interval_s:
        from orchestrator.progress import Progress

        progress = Progress(job.tool.name, outputs, total_s, settings.progress_interval_s, echo, settings.screen)
    for monitor in (scraper, progress, live):
        if monitor is not None:
            monitor.start()
    try:
        yield watched
    finally:
        if live is not None:
            live.stop()
        if progress is not None:
            progress.stop()
            progress.update()
            echo(progress.line())
        if scraper is not None:
            scraper.stop()
            watched.samples.extend(scraper.rows)
            watched.problems.extend(scraper.problems)


def step_facts(spec: Spec) -> dict[tuple[str, str], StepFacts]:
    """What the warehouse must know of each step to read a tool's results alike: method, expected status, checks.

    Keyed by the names results carry (labels, else names). The expected status is the step's one expected
    status, or 0 for the tools' default (200-399); a step that expects several is judged by JMeter's own
    success flag, which the plan's expected-status assertion sets.
    """
    from warehouse.ingest import UNKNOWN_STEP, StepFacts

    def expected(statuses: tuple[int, ...]) -> int:
        return 0 if not statuses else statuses[0] if len(statuses) == 1 else UNKNOWN_STEP

    return {(j.key, s.key): StepFacts(s.method, expected(s.expected_statuses), len(s.checks))
            for j in spec.journeys for s in j.steps}


def runner_for(name: str) -> Runner:
    if name not in RUNNERS:
        raise PerfhouseError(f"unknown runner {name!r}; perfhouse has: {', '.join(RUNNERS)}")
    return RUNNERS[name]


class Background(Generic[T]):
    """A value computed in a thread (opening a warehouse: loading the engine, migrating) while the caller
    goes on; `get()` waits for it and raises what computing it raised."""

    def __init__(self, compute: Callable[[], T], name: str = "perfhouse-background", start: bool = True) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(compute,), name=name, daemon=True)
        self._lock = threading.Lock()
        if start:
            self.start()

    def start(self) -> None:
        """Begin computing (once): a value needed only later starts when the caller has nothing else to do."""
        with self._lock:
            if not self._thread.is_alive() and self._thread.ident is None:
                self._thread.start()

    def _run(self, compute: Callable[[], T]) -> None:
        try:
            self._value = compute()
        except BaseException as exc:  # raised again by get(), in the caller's thread
            self._error = exc

    def get(self) -> T:
        self.start()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return cast(T, self._value)


class PendingWarehouse(Background["Warehouse"]):
    """A warehouse opening in a thread: `run_tool` takes one in place of a Warehouse and asks for it only when it
    needs it (the run's row is written while the tool runs, the results ingested after). `url` names it for a
    process that may have to write to it in perfhouse's place (the watchdog)."""

    def __init__(self, compute: Callable[[], Warehouse], url: str | None = None, name: str = "perfhouse-open",
                 start: bool = True) -> None:
        self.url = absolute_url(url)
        super().__init__(compute, name, start)


def absolute_url(url: str | None) -> str:
    """The warehouse URL as `Warehouse.open` resolves it, an embedded one's path made absolute."""
    from warehouse.engine.backends import DEFAULT_URL

    url = url or os.environ.get("PERFHOUSE_WAREHOUSE") or DEFAULT_URL
    if url.startswith("chdb://"):
        return f"chdb://{Path(url.removeprefix('chdb://')).expanduser().resolve()}"
    return url


# When a tool's run is planned to end, the embedded warehouse's session (closed while the tool ran, so that other
# processes could use the warehouse) is opened again this long before, so that storing the results does not begin by
# waiting for the engine (an open takes a tenth of a second once a warehouse holds some runs). It is kept from
# closing until the results are stored, or this long past the planned end for a tool still running, after which
# the session closes as usual and others have the warehouse again.
WARM_BEFORE_S = 1.0
WARM_HOLD_S = 10.0


class Warm:
    """Opens the warehouse's session ahead of the planned end of a tool's run (counted from `start()`) and keeps
    it open (a unit of work each half linger, so the session never sits idle long enough to close) until
    `release()` or WARM_HOLD_S past that end. Nothing is held for `planned_s` None, or a backend whose sessions
    do not linger (a server's)."""

    def __init__(self, recorded: Background[tuple[Warehouse, RunInfo]], planned_s: float | None) -> None:
        self._done = threading.Event()
        self._thread = (threading.Thread(target=self._hold, args=(recorded, planned_s), name="perfhouse-warm",
                                         daemon=True) if planned_s is not None else None)

    def start(self) -> None:
        """Begin counting down to the planned end (once): call it as the tool starts."""
        if self._thread is not None and self._thread.ident is None:
            self._thread.start()

    def _hold(self, recorded: Background[tuple[Warehouse, RunInfo]], planned_s: float) -> None:
        if self._done.wait(max(0.0, planned_s - WARM_BEFORE_S)):
            return
        with contextlib.suppress(Exception):  # the run's own thread meets and reports a warehouse that fails
            store, _ = recorded.get()
            linger_s = float(getattr(store.backend, "linger_s", 0.0))
            ends = time.monotonic() + WARM_BEFORE_S + WARM_HOLD_S
            while linger_s > 0 and time.monotonic() < ends:
                with store.backend.session():  # opens it, or starts its linger afresh
                    pass
                if self._done.wait(linger_s / 2):
                    return

    def release(self) -> None:
        self._done.set()


def opened(warehouse: Warehouse | PendingWarehouse) -> Warehouse:
    return warehouse.get() if isinstance(warehouse, PendingWarehouse) else warehouse


def check_settings(tool: Tool, settings: RunSettings) -> None:
    """Refuse settings the tool or the perfhouse cannot honour, before anything runs."""
    if settings.generators < 1:
        raise PerfhouseError(f"--generators must be at least 1, found {settings.generators}")
    if settings.generators > 1 and not tool.splits:
        raise GenerationError(f"{tool.name} cannot split one test over {settings.generators} generators; "
                              "use --generators 1 for it")
    if settings.scrape:
        from orchestrator.scrape import source_for

        for url in settings.scrape:
            source_for(url, 1.0)  # an unknown kind of source fails before anything runs


@dataclass(frozen=True)
class Script:
    """A tool's script as its run uses it: rendered for the program and version the runner will start and the
    run's service URLs."""

    target: Target
    options: GenerationOptions
    rendered: GeneratedScript


def render_script(spec: Spec, tool: Tool, profile: str, services: dict[str, str], settings: RunSettings,
                  target: Target | None = None) -> Script:
    """The tool's script for the tool version the runner will use (`target`, else asked of the runner); a service's
    URL is --service, else PERFHOUSE_SERVICE_<NAME> (what the generated scripts read), else the spec's."""
    target = target or runner_for(settings.runner).target(tool, settings.options)
    if spec.script is not None:  # a team's own script runs as it is
        content = spec.script.content.decode("utf-8", errors="replace")
        return Script(target, GenerationOptions(profile=profile),
                      GeneratedScript(tool.name, spec.script.path.name, content, spec.script.notes))
    retargeted = {name: os.environ[service_env(name)] for name in spec.services if os.environ.get(service_env(name))}
    options = tool.for_version(GenerationOptions(profile=profile, services={**retargeted, **services}),
                               target.version)
    return Script(target, options, tool.render(spec, options))


def render_scripts(spec: Spec, tools: list[Tool], profile: str, services: dict[str, str], settings: RunSettings,
                   targets: dict[str, Target] | None = None) -> dict[str, Script]:
    """Every tool's script, by tool name, before any tool runs: a spec that some tool cannot express is refused
    first, and each run then uses its script as rendered here (`run_tool(script=...)`), rendering nothing again.
    `targets`: what the runner will start for each tool, when it was asked already (`probe_targets`)."""
    targets = targets or {}
    return {tool.name: render_script(spec, tool, profile, services, settings, targets.get(tool.name))
            for tool in tools}


def probe_targets(tools: list[Tool], settings: RunSettings) -> dict[str, Background[Target]]:
    """Ask the runner what it will start for each tool (the program or image, and the tool's version: a process
    to run, an image to inspect), each in a thread, so the caller goes on meanwhile (loading the spec)."""
    executor = runner_for(settings.runner)
    return {tool.name: Background(functools.partial(executor.target, tool, settings.options), "perfhouse-probe")
            for tool in tools}


@dataclass
class Plan:
    """A prepared run: its script and files written in its directory, and the facts recorded with it."""

    spec: Spec
    tool: Tool
    executor: Runner
    settings: RunSettings
    profile: str
    version: str
    program: str
    options: GenerationOptions
    script: GeneratedScript
    script_path: Path
    directory: Path
    run_id: str
    urls: dict[str, str]
    secrets: dict[str, str]  # values the tool reads from its environment (${env:NAME}; a script's -e values)
    secret_content: bytes | None = None  # the secrets file the tool reads (Tool.secret_file), if any
    timeout_s: float | None = None

    @property
    def split_scripts(self) -> bool:
        """Does each generator run a script of its own (scaled to its share), written as the parts are made?"""
        return self.settings.generators > 1 and self.tool.scaled_scripts


def prepare(spec: Spec, tool: Tool, profile: str, services: dict[str, str], settings: RunSettings,
            runs_dir: Path, rendered: Script | None = None) -> Plan:
    """Lay out the run directory with the tool's script: `rendered` (render_scripts), else rendered here for the
    tool version the runner will use."""
    executor = runner_for(settings.runner)
    made = rendered or render_script(spec, tool, profile, services, settings)
    target, options, script = made.target, made.options, made.rendered
    secrets = require_env(spec.env_names(), os.environ, spec.file)
    secret_content = tool.secret_file(secrets)
    if spec.script is not None:  # -e / -J values: in the tool's environment or its secrets file, never on disk
        secrets, secret_content = tool.script_variables(spec.script.variables)
    urls = service_urls(spec, options)
    run_id = new_run_id(tool.name)
    directory = (runs_dir / run_id).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    plan = Plan(spec, tool, executor, settings, profile, target.version, target.program, options, script,
                directory / script.filename, directory, run_id, urls, secrets, secret_content)
    if spec.script is not None:
        place_script(spec, directory, write=not plan.split_scripts)
    elif not plan.split_scripts:  # else each part runs a plan of its own, written with the parts
        plan.script_path.write_text(script.content, encoding="utf-8")
    for data_file in script.files:  # test data is read from beside the script
        shutil.copyfile(data_file, directory / data_file.name)
    effective = {
        "spec": spec.name,
        "file": spec.file,
        "profile": profile,
        "tool": tool.name,
        "tool_version": target.version,
        "runner": settings.runner,
        "program": target.program,
        "generators": settings.generators,
        "services": urls,
        "vus_per_journey": {a.journey.name: allocated_vus(a) for a in journey_vus(spec, spec.profile(profile))},
        "approximations": list(script.notes),
        "live": settings.live,
    }
    if spec.script is not None:  # the variables by name only: their values stay out of the run directory
        effective["script"] = {"file": str(spec.script.path), "files": [str(f) for f in spec.script.files],
                               "variables": {name: "***" for name in sorted(spec.script.variables)}}
        effective["slos"] = [o.label for o in objectives(spec)]
    (directory / "effective.json").write_text(json.dumps(effective, indent=2), encoding="utf-8")
    if spec.script is None:
        Path(directory / Path(spec.file).name).write_text(
            Path(spec.file).read_text(encoding="utf-8"), encoding="utf-8"
        )
    return plan


def place_script(spec: Spec, directory: Path, write: bool = True) -> None:
    """A hand-written script in the run directory, as its bytes, with the files it opens at the same places
    relative to it (runners mount or copy the run directory, so they go wherever the tool runs). `write`: the
    script itself too (not when each generator runs a scaled copy of its own)."""
    script = spec.script
    assert script is not None
    if write:
        (directory / script.path.name).write_bytes(script.content)
    for relative in script.files:
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(script.path.parent / relative, target)


def run_fields(plan: Plan, environment: str, labels: dict[str, str] | None, group_id: str = "") -> dict[str, Any]:
    """The run's row (the fields of warehouse.store.RunInfo): what ran, from which spec and script, where and by
    whom, since when (the commit: see `record`); its fingerprint, and the group of the invocation's runs."""
    spec, settings = plan.spec, plan.settings
    run_labels = dict(labels or {})
    if settings.runner != "local":
        run_labels.setdefault("runner", settings.runner)
    if settings.generators > 1:
        run_labels.setdefault("generators", str(settings.generators))
    if spec.trace_url:  # reports link the run's slowest samples to their traces
        run_labels[TRACE_URL_LABEL] = spec.trace_url
    run_labels[OWNER_LABEL] = me().token  # while it runs: a run whose owner died is marked aborted
    return {
        "run_id": plan.run_id,
        "tool": plan.tool.name,
        "tool_version": plan.version,
        "name": f"{spec.name}/{plan.profile}",
        "spec_name": spec.name,
        "spec_hash": spec.source_hash,
        "fingerprint": run_fingerprint(spec, plan.profile, plan.tool.name, environment, run_labels),
        "group_id": group_id,
        "script_hash": plan.script.sha256,
        "profile": plan.profile,
        "environment": environment,
        "labels": run_labels,
        "notes": "; ".join(plan.script.notes),
        "started_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
    }


@dataclass
class Parts:
    """The processes of a run (one per generator) and the result files they write."""

    parts: list[Part] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    summaries: list[Path] = field(default_factory=list)  # the tool's own end-of-test summaries, kept with the run
    notes: list[str] = field(default_factory=list)


def make_parts(plan: Plan, secret: SecretFile | None) -> Parts:
    """One part per generator: its script (a scaled one when the tool splits that way) and command line."""
    spec, tool, count = plan.spec, plan.tool, plan.settings.generators
    prof = spec.profile(plan.profile)
    made = Parts()
    if (count > max(prof.max_vus, 1) and prof.executor != "ramping_vus" and not plan.split_scripts
            and spec.script is None):
        made.notes.append(f"{count} generators share {prof.max_vus} VUs: some get none")
    for index in range(count):
        segment = Segment(index, count)
        part_script = plan.script_path
        if plan.split_scripts and spec.script is not None:  # the script's own load, this part's share of it
            text = spec.script.content.decode("utf-8", errors="surrogateescape")  # its bytes kept as they are
            scaled = tool.scale_script(text, segment, spec.script.variables)
            if scaled is None:
                made.notes.append(f"generator {segment.name} gets no share of the load "
                                  f"({count} generators); it was not started")
                continue
            part_script = plan.directory / f"{plan.script_path.stem}{segment.suffix}{plan.script_path.suffix}"
            part_script.write_bytes(scaled.encode("utf-8", errors="surrogateescape"))
        elif plan.split_scripts:
            scale = (index, count)
            if not has_load(journey_vus(spec, prof, scale)):
                made.notes.append(f"generator {segment.name} gets no share of the load "
                                  f"({count} generators); it was not started")
                continue
            part_script = plan.directory / f"{plan.script_path.stem}{segment.suffix}{plan.script_path.suffix}"
            part_script.write_text(tool.render(spec, replace(plan.options, vu_scale=scale)).content,
                                   encoding="utf-8")
        invocation = (tool.script_invocation if spec.script is not None else tool.invocation)(
            plan.program, part_script, plan.directory, segment)
        argv = [*invocation.argv, *tool.secret_args(secret.path)] if secret else invocation.argv
        made.parts.append(Part(segment.name, argv, plan.directory / f"{tool.name}{segment.suffix}-console.log"))
        made.outputs.extend(invocation.outputs)
        made.summaries.extend([invocation.summary] if invocation.summary else [])
    return made


def execute(plan: Plan, job: Job, outputs: list[Output], live: LiveIngest | None,
            echo: Callable[[str], None], watching: Callable[[], None] = lambda: None) -> tuple[Execution, Watched]:
    """Run the job on the plan's runner while the monitors (scrapes, progress, live ingest) watch it; `watching`
    is called once the runner has started the job's parts (the monitors are set up, their modules loaded, before)."""
    total_s = plan.spec.profile(plan.profile).total_duration_s
    with monitors(plan.settings, job, outputs, total_s, echo, live) as watched:
        execution = plan.executor.execute(replace(job, started=watching))
    return execution, watched


def execution_status(plan: Plan, execution: Execution) -> tuple[str, str]:
    """The run's status and note from how its parts ended."""
    if execution.interrupted:
        return "aborted", "interrupted by a signal"
    if execution.timed_out:
        return "aborted", f"stopped by the {plan.timeout_s or 0:g}s timeout"
    if all(plan.tool.completed(code) for code in execution.exit_codes):
        return "completed", next(filter(None, (plan.tool.stopped_early(_tail(log)) for log in execution.logs)), "")
    logs = ", ".join(str(log) for log in execution.logs)
    return "failed", f"{plan.tool.name} exited with {execution.exit_code}; see {logs}"


def _tail(log: Path, size: int = 65536) -> str:
    """The end of a console log (where a tool says why it stopped); '' when there is none."""
    try:
        with log.open("rb") as fh:
            fh.seek(max(0, log.stat().st_size - size))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def ingest_results(plan: Plan, warehouse: Warehouse, info: RunInfo, made: Parts, live: LiveIngest | None,
                   outcome: ToolRun, status: str, note: str, receiver: Receiver | None = None) -> tuple[str, str]:
    """Load what the tool wrote into the run (the rest of it, after live chunks), or count what came back through
    the receiver; the status and note after."""
    from warehouse.ingest import IngestResult

    run_id, directory, tool = info.run_id, plan.directory, plan.tool
    here = plan.executor.on_this_host
    services_map, steps_map = plan.spec.step_services(), step_facts(plan.spec)
    if live is not None:  # the rest of every output; the chunks already hold the beginning
        live.finish()
        outcome.ingested.extend(live.ingested)
        outcome.notes.extend(live.problems)
        for summary in made.summaries:  # an ingest of the whole output keeps it; live chunks lie elsewhere
            if summary.is_file():
                try:
                    warehouse.attach_summary(run_id, summary, tool.name)
                except WarehouseError as exc:
                    outcome.notes.append(f"{summary.name} not kept with the run: {exc}")
    for output in made.outputs:
        if output.path.exists() and output.path.stat().st_size > 0:
            if live is not None:
                continue
            try:
                outcome.ingested.append(warehouse.ingest(output.path, info, fmt=output.format.name,
                                                         services=services_map, generator=output.generator,
                                                         steps=steps_map))
            except IngestError as exc:
                note = f"{note}; {exc}" if note else str(exc)
        elif plan.settings.generators > 1 and here:
            outcome.notes.append(f"generator {output.generator} wrote no results (its segment got no VUs?)")
        elif status == "completed" and here:
            status, note = "failed", f"{tool.name} wrote no results to {output.path}"
    if status == "completed" and here and not outcome.ingested:
        status, note = "failed", f"{tool.name} wrote no results in {directory}"
    if receiver is not None:
        stats = receiver.stats
        outcome.ingested.append(IngestResult(run_id, receiver.advertised_url, "influx-line", tool.name,
                                             rows=stats.requests, points=stats.points, rejected=stats.rejected,
                                             aggregates=stats.aggregates))
        outcome.notes.extend(receiver.problems)
        outcome.notes.append(f"received {stats.writes} writes ({stats.again} sent again): {stats.points} "
                             f"k6 points, {stats.requests} requests, {stats.rejected} rejected lines")
        if status == "completed" and not (stats.points or stats.aggregates):
            status, note = "failed", f"no results came back to the receiver at {receiver.advertised_url}"
    elif not here:
        outcome.notes.append(f"the {plan.settings.runner} runner keeps results where the tool ran; "
                             f"perfhouse ingested none{' (--live too)' if plan.settings.live else ''}")
    return status, note


def judge(plan: Plan, warehouse: Warehouse, outcome: ToolRun, received: bool = False,
          summaries: list[Path] | None = None) -> None:
    """The run's totals, per-step figures and SLO verdicts, from the warehouse (verdicts only when it holds the
    results: ingested here, or received). A script's own thresholds, as its tool judged them in `summaries`, are
    verdicts too, with the warehouse's value beside them where they map onto an SLO."""
    from warehouse.analysis.slo import evaluate

    outcome.totals = warehouse.totals(outcome.run_id)
    outcome.steps = warehouse.step_stats(outcome.run_id)
    if plan.executor.on_this_host or received:
        own = script_thresholds(plan.tool, summaries or []) if plan.spec.script is not None else []
        outcome.verdicts = evaluate(warehouse.backend, outcome.run_id, [*own, *objectives(plan.spec)])


def script_thresholds(tool: Tool, summaries: list[Path]) -> list[Objective]:
    """A script's thresholds as objectives carrying the tool's verdict: one that failed in any part failed."""
    from warehouse.analysis.slo import Objective

    judged: dict[str, Objective] = {}
    for summary in summaries:
        if not summary.is_file():
            continue
        for t in tool.script_verdicts(summary):
            before = judged.get(t.name)
            passed = t.passed and (before is None or bool(before.judged))
            judged[t.name] = Objective(t.metric, t.threshold, t.journey, t.step, judged=passed,
                                       name=f"{tool.name} threshold {t.name}")
    return list(judged.values())


def run_tool(
    spec: Spec,
    tool_name: str,
    warehouse: Warehouse | PendingWarehouse,
    profile: str,
    services: dict[str, str] | None = None,
    runner: str = "local",
    runs_dir: Path = Path(".perfhouse/runs"),
    timeout_s: float | None = None,
    environment: str = "",
    labels: dict[str, str] | None = None,
    echo: Callable[[str], None] = lambda _: None,
    settings: RunSettings | None = None,
    group_id: str = "",
    script: Script | None = None,
) -> ToolRun:
    """Run one tool on one spec and profile; the run lands in the warehouse whatever happens.

    Check targets, execute, ingest, judge. `settings` (runner, its options, generators, scraping, progress)
    replaces `runner` when given; `group_id` is shared by the runs of one invocation (one per tool). A
    PendingWarehouse starts opening as the tool starts, and the run's row is written meanwhile. `script` is the
    tool's script from `render_scripts` for this spec, profile, services and settings (else it is rendered here).
    """
    settings = settings or RunSettings(runner=runner)
    tool = get_tool(tool_name)
    check_settings(tool, settings)
    plan = prepare(spec, tool, profile, services or {}, settings, runs_dir, script)
    plan.timeout_s = timeout_s
    if plan.executor.on_this_host:
        check_targets(spec, plan.urls)
    prof = spec.profile(profile)
    outcome = ToolRun(tool.name, plan.run_id, "running", plan.directory, notes=list(plan.script.notes))
    split = f", {settings.generators} generators" if settings.generators > 1 else ""
    echo(f"{tool.name} {plan.version}: run {plan.run_id} ({prof.executor}, {settings.runner}{split}, "
         f"{plan.directory})")

    # What a killed perfhouse would leave behind (tool processes, containers, a secrets file), the watchdog
    # process undoes; a tool that reads ${env:NAME} values from a file gets one that exists only while it runs
    # (in memory when the tool runs on this host: nothing of it is ever on disk).
    resources = ExitStack()
    executor = plan.executor
    watchdog = resources.enter_context(Watchdog(plan.directory / "watchdog.log")) if executor.on_this_host else None
    secret = resources.enter_context(
        secret_file(plan.directory, plan.secret_content, in_memory=executor.inherits_fds)
    )
    if secret is not None and secret.on_disk and watchdog is not None:
        watchdog.guard_file(secret.path)
    made = make_parts(plan, secret)
    outcome.notes.extend(made.notes)
    fds = (secret.fd,) if secret is not None and secret.fd is not None else ()
    # the scripts read their services' URLs from the environment first: give them the ones this run uses
    job_env = {**plan.secrets, **{service_env(name): url for name, url in plan.urls.items()}}
    job = Job(plan.run_id, tool, tuple(made.parts), plan.directory, timeout_s, settings.options, env=job_env,
              fds=fds, watchdog=watchdog, secrets=tuple(plan.secrets),
              files=tuple(plan.directory / f.name for f in plan.script.files))
    live: LiveIngest | None = None
    receiver: Receiver | None = None
    # The run's row: with a warehouse still opening (its engine loading), written while the tool runs, the
    # watchdog knowing it so that a perfhouse killed before it is written still leaves an aborted run; else, and
    # for --live (whose chunks go into the run from the start), before the tool starts.
    fields = run_fields(plan, environment, labels, group_id)
    ahead = isinstance(warehouse, PendingWarehouse) and watchdog is not None and not settings.live
    if ahead and isinstance(warehouse, PendingWarehouse) and watchdog is not None:
        watchdog.guard_run(warehouse.url, fields)
    # Written in a thread started once the tool has (this thread has loaded what watching the run needs before:
    # two threads importing the warehouse's modules at once could each meet the other's half-imported package),
    # which then loads what storing the results needs, so that none of it is loaded after the tool ends.
    def record_ahead() -> tuple[Warehouse, RunInfo]:
        written = record(opened(warehouse), plan.spec, fields, watchdog)
        load_for_results()
        return written

    recorded = Background(record_ahead if ahead else lambda: record(opened(warehouse), plan.spec, fields, watchdog),
                          "perfhouse-record", start=False)
    # the warehouse's session is open again when the tool ends (not with --live: its worker takes turns with it)
    warm = Warm(recorded, prof.total_duration_s if not settings.live and spec.script is None else None)

    def watching() -> None:
        recorded.start()
        warm.start()
    status, note = "failed", ""
    try:
        if not ahead:
            recorded.get()
        if settings.live and executor.on_this_host:
            store, info = recorded.get()
            from orchestrator import live as live_ingest  # loads the warehouse's ingest: only for --live

            live = live_ingest.LiveIngest(store, info, made.outputs, plan.directory, settings.live_interval_s,
                                          spec.step_services(), echo, steps=step_facts(spec))
        if getattr(executor, "streams_results", False):  # the parts send their results to a receiver it starts
            from orchestrator.receiver import Receiver

            store, info = recorded.get()
            receiver = Receiver(store, plan.run_id, settings.receive_listen, token_urlsafe(24),
                                services=spec.step_services(), echo=echo, steps=step_facts(spec)).start()
            job = replace(job, results=ResultsSink(settings.receive_url.rstrip("/") or receiver.advertised_url,
                                                   receiver.token or ""))
            echo(f"results come back to the receiver at {job.results.url if job.results else ''}")
        with receiving(receiver):
            execution, watched = execute(plan, job, made.outputs, live, echo, watching)
        outcome.exit_code = execution.exit_code
        status, note = execution_status(plan, execution)
        outcome.stopped_early = note if status == "completed" else ""
        store, info = recorded.get()
        if watched.samples:
            store.add_infra_samples(plan.run_id, watched.samples)
            outcome.infra_samples = len(watched.samples)
        outcome.notes.extend(watched.problems)
        status, note = ingest_results(plan, store, info, made, live, outcome, status, note, receiver)
        judge(plan, store, outcome, received=receiver is not None, summaries=made.summaries)
    except KeyboardInterrupt:
        status, note = "aborted", "interrupted"
        raise RunAborted(f"run {plan.run_id} interrupted; what it produced is kept in {plan.directory}") from None
    except PerfhouseError as exc:
        note = str(exc)
        raise
    finally:
        if live is not None:
            live.close()
        resources.close()  # the secrets file is gone and the watchdog released before the run is final
        outcome.status = status
        if note:
            outcome.notes.append(note)
        store, info = recorded.get()
        info.labels.pop(OWNER_LABEL, None)
        store.finish_run(info, status, note)
        warm.release()
    return outcome


def record(warehouse: Warehouse, spec: Spec, fields: dict[str, Any], watchdog: Watchdog | None
           ) -> tuple[Warehouse, RunInfo]:
    """Write the run's first row, with the commit of the spec's repository; the watchdog need not any more."""
    from warehouse.store import RunInfo

    info = RunInfo(**fields)
    info.git_sha, info.branch = git_info(Path(spec.file).resolve().parent)
    warehouse.save_run(info)
    if watchdog is not None:
        watchdog.forget_run()
    return warehouse, info


# What ingesting and judging a run's results imports (the ingest, the verdicts): loaded while the tool runs
RESULTS_MODULES = ("warehouse.ingest", "warehouse.ingest.history", "warehouse.analysis.verdict",
                   "concurrent.futures.thread")


def load_for_results() -> None:
    for module in RESULTS_MODULES:
        importlib.import_module(module)
    from warehouse.ingest.formats import all_formats

    all_formats()  # the result formats' modules, found and loaded on first use


@contextmanager
def receiving(receiver: Receiver | None) -> Iterator[None]:
    """The receiver runs while the body (the execution) does; then it stores what it holds and stops."""
    try:
        yield
    finally:
        if receiver is not None:
            receiver.stop()


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C for the duration: runs end aborted, with what they produced kept."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
