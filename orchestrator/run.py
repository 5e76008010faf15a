"""A load test from spec to verdict: generate, check targets, execute, ingest, evaluate SLOs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from secrets import token_urlsafe
from types import FrameType
from typing import Any, TextIO
from urllib.parse import urlsplit

from orchestrator.errors import (
    GenerationError,
    PerfhouseError,
    RunAborted,
    TargetUnreachableError,
    ToolMissingError,
)
from orchestrator.generators import GenerationOptions, generate
from orchestrator.generators.base import allocated_vus, has_load, journey_vus, service_urls
from orchestrator.live import LiveIngest
from orchestrator.progress import Progress
from orchestrator.receiver import Receiver
from orchestrator.runners import RUNNERS, Job, Part, Runner, RunnerOptions
from orchestrator.runners.base import ResultsSink
from orchestrator.scrape import InfraRow, Scraper, source_for
from orchestrator.secrets import properties_file, require_env
from orchestrator.spec import Spec, service_env
from orchestrator.tools import TOOLS, Segment
from orchestrator.watchdog import Watchdog
from warehouse.analysis.fingerprint import StepShape, fingerprint, structure_hash
from warehouse.analysis.slo import Objective, Verdict
from warehouse.analysis.verdict import RunVerdict, run_verdict
from warehouse.errors import IngestError, WarehouseError
from warehouse.ingest import IngestResult, StepFacts
from warehouse.ingest.jtl_csv import UNKNOWN_STEP
from warehouse.owners import OWNER_LABEL, me
from warehouse.store import RunInfo, Warehouse, new_run_id
from warehouse.traces import TRACE_URL_LABEL


@dataclass
class ToolRun:
    """What one tool's run produced: the run row, its files, ingestion and verdicts."""

    tool: str
    run_id: str
    status: str
    directory: Path
    exit_code: int | None = None
    ingested: list[IngestResult] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    infra_samples: int = 0

    @property
    def slo_passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def verdict(self) -> RunVerdict:
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
            "totals": self.totals,
            "steps": self.steps,
            "slos": [v.to_dict() for v in self.verdicts],
            "slo_passed": self.slo_passed,
            "verdict": str(self.verdict),
            "notes": self.notes,
            "infra_samples": self.infra_samples,
        }


def objectives(spec: Spec) -> list[Objective]:
    return [Objective(s.metric, s.threshold, s.journey, s.step, s.abort_on_fail, s.service) for s in spec.slos]


def run_fingerprint(spec: Spec, profile: str, tool: str, environment: str, labels: dict[str, str]) -> str:
    """The fingerprint of a run of `spec`: its journeys' structure, profile, tool, environment, chosen labels."""
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
    outputs: list[Path],
    total_s: float,
    echo: Callable[[str], None],
    live: LiveIngest | None = None,
) -> Iterator[Watched]:
    """Scrape Prometheus endpoints, print progress lines and ingest live while the body (the execution) runs.

    Live ingestion is only stopped here; the caller ingests the rest with `live.finish()`."""
    watched = Watched()
    scraper = Scraper(settings.scrape, settings.scrape_interval_s) if settings.scrape else None
    progress = (
        Progress(job.tool.name, outputs, total_s, settings.progress_interval_s, echo, settings.screen)
        if settings.progress_interval_s
        else None
    )
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
    def expected(statuses: tuple[int, ...]) -> int:
        return 0 if not statuses else statuses[0] if len(statuses) == 1 else UNKNOWN_STEP

    return {(j.key, s.key): StepFacts(s.method, expected(s.expected_statuses), len(s.checks))
            for j in spec.journeys for s in j.steps}


def runner_for(name: str) -> Runner:
    if name not in RUNNERS:
        raise PerfhouseError(f"unknown runner {name!r}; perfhouse has: {', '.join(RUNNERS)}")
    return RUNNERS[name]


def run_tool(
    spec: Spec,
    tool_name: str,
    warehouse: Warehouse,
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
) -> ToolRun:
    """Run one tool on one spec and profile; the run lands in the warehouse whatever happens.

    `settings` (runner, its options, generators, scraping, progress) replaces `runner` when given;
    `group_id` is shared by the runs of one invocation (one per tool).
    """
    settings = settings or RunSettings(runner=runner)
    if tool_name not in TOOLS:
        raise ToolMissingError(f"unknown tool {tool_name!r}; perfhouse drives: {', '.join(TOOLS)}")
    tool = TOOLS[tool_name]
    if settings.generators < 1:
        raise PerfhouseError(f"--generators must be at least 1, found {settings.generators}")
    if settings.generators > 1 and not tool.splits:
        raise GenerationError(f"{tool_name} cannot split one test over {settings.generators} generators; "
                              "use --generators 1 for it")
    for url in settings.scrape:
        source_for(url, 1.0)  # an unknown kind of source fails before anything runs
    executor = runner_for(settings.runner)
    target = executor.target(tool, settings.options)
    version = target.version
    # a service's URL: --service, else PERFHOUSE_SERVICE_<NAME> (what the generated scripts read), else the spec's
    retargeted = {name: os.environ[service_env(name)] for name in spec.services if os.environ.get(service_env(name))}
    options = GenerationOptions(
        profile=profile, services={**retargeted, **(services or {})},
        jmeter_version=version if tool_name == "jmeter" else "5.6",
    )
    script = generate(spec, tool_name, options)
    secrets = require_env(spec.env_names(), os.environ, spec.file)
    urls = service_urls(spec, options)
    if executor.on_this_host:
        check_targets(spec, urls)

    run_id = new_run_id(tool_name)
    directory = (runs_dir / run_id).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    prof = spec.profile(profile)
    split_scripts = settings.generators > 1 and tool.scaled_scripts
    script_path = directory / script.filename
    if not split_scripts:  # else each part runs a plan of its own, written below
        script_path.write_text(script.content, encoding="utf-8")
    for data_file in script.files:  # test data is read from beside the script
        shutil.copyfile(data_file, directory / data_file.name)
    effective = {
        "spec": spec.name,
        "file": spec.file,
        "profile": profile,
        "tool": tool_name,
        "tool_version": version,
        "runner": settings.runner,
        "program": target.program,
        "generators": settings.generators,
        "services": urls,
        "vus_per_journey": {a["journey"].name: allocated_vus(a) for a in journey_vus(spec, prof)},
        "approximations": list(script.notes),
        "live": settings.live,
    }
    (directory / "effective.json").write_text(json.dumps(effective, indent=2), encoding="utf-8")
    Path(directory / Path(spec.file).name).write_text(
        Path(spec.file).read_text(encoding="utf-8"), encoding="utf-8"
    )

    sha, branch = git_info(Path(spec.file).resolve().parent)
    run_labels = dict(labels or {})
    if settings.runner != "local":
        run_labels.setdefault("runner", settings.runner)
    if settings.generators > 1:
        run_labels.setdefault("generators", str(settings.generators))
    if spec.trace_url:  # reports link the run's slowest samples to their traces
        run_labels[TRACE_URL_LABEL] = spec.trace_url
    run_labels[OWNER_LABEL] = me().token  # while it runs: a run whose owner died is marked aborted
    info = RunInfo(
        run_id=run_id,
        tool=tool_name,
        tool_version=version,
        name=f"{spec.name}/{profile}",
        spec_name=spec.name,
        spec_hash=spec.source_hash,
        fingerprint=run_fingerprint(spec, profile, tool_name, environment, run_labels),
        group_id=group_id,
        script_hash=script.sha256,
        profile=profile,
        git_sha=sha,
        branch=branch,
        environment=environment,
        labels=run_labels,
        notes="; ".join(script.notes),
    )
    warehouse.save_run(info)
    outcome = ToolRun(tool_name, run_id, "running", directory, notes=list(script.notes))
    if settings.generators > max(prof.max_vus, 1) and prof.executor != "ramping_vus" and not split_scripts:
        outcome.notes.append(f"{settings.generators} generators share {prof.max_vus} VUs: some get none")
    split = f", {settings.generators} generators" if settings.generators > 1 else ""
    echo(f"{tool_name} {version}: run {run_id} ({prof.executor}, {settings.runner}{split}, {directory})")

    # What a killed perfhouse would leave behind (tool processes, containers, a secrets file), the watchdog
    # process undoes; JMeter reads ${env:NAME} values from a properties file that exists only while it runs
    # (in memory when the tool runs on this host: nothing of it is ever on disk).
    resources = ExitStack()
    watchdog = resources.enter_context(Watchdog(directory / "watchdog.log")) if executor.on_this_host else None
    env_file = resources.enter_context(
        properties_file(directory, secrets if tool_name == "jmeter" else {}, in_memory=executor.inherits_fds)
    )
    if env_file is not None and env_file.on_disk and watchdog is not None:
        watchdog.guard_file(env_file.path)
    parts: list[Part] = []
    outputs: list[tuple[str, Path]] = []
    summaries: list[Path] = []  # the tool's own end-of-test summaries, kept with the run
    for index in range(settings.generators):
        segment = Segment(index, settings.generators)
        part_script = script_path
        if split_scripts:
            scale = (index, settings.generators)
            if not has_load(journey_vus(spec, prof, scale)):
                outcome.notes.append(f"generator {segment.name} gets no share of the load "
                                     f"({settings.generators} generators); it was not started")
                continue
            part_script = directory / f"{script_path.stem}{segment.suffix}{script_path.suffix}"
            part_script.write_text(generate(spec, tool_name, replace(options, vu_scale=scale)).content,
                                   encoding="utf-8")
        invocation = tool.invocation(target.program, part_script, directory, segment)
        argv = [*invocation.argv, "-q", str(env_file.path)] if env_file else invocation.argv
        parts.append(Part(segment.name, argv, directory / f"{tool_name}{segment.suffix}-console.log"))
        outputs.extend((segment.name, out) for out in invocation.outputs)
        summaries.extend([invocation.summary] if invocation.summary else [])
    fds = (env_file.fd,) if env_file is not None and env_file.fd is not None else ()
    # the scripts read their services' URLs from the environment first: give them the ones this run uses
    job_env = {**secrets, **{service_env(name): url for name, url in urls.items()}}
    job = Job(run_id, tool, tuple(parts), directory, timeout_s, settings.options, env=job_env, fds=fds,
              watchdog=watchdog)
    services_map, steps_map = spec.step_services(), step_facts(spec)
    receiver: Receiver | None = None
    live = (
        LiveIngest(warehouse, info, outputs, directory, settings.live_interval_s, services_map, echo,
                   steps=steps_map)
        if settings.live and executor.on_this_host
        else None
    )
    status, note = "failed", ""
    try:
        if getattr(executor, "streams_results", False):  # the parts send their results to a receiver
            receiver = Receiver(warehouse, run_id, settings.receive_listen, token_urlsafe(24),
                                services=services_map, echo=echo, steps=steps_map).start()
            job = replace(job, results=ResultsSink(settings.receive_url.rstrip("/") or receiver.advertised_url,
                                                   receiver.token or ""))
            echo(f"results come back to the receiver at {job.results.url if job.results else ''}")
        with (
            receiving(receiver),
            monitors(settings, job, [o for _, o in outputs], prof.total_duration_s, echo, live) as watched,
        ):
            execution = executor.execute(job)
        outcome.exit_code = execution.exit_code
        if execution.interrupted:
            status, note = "aborted", "interrupted by a signal"
        elif execution.timed_out:
            status, note = "aborted", f"stopped by the {timeout_s:g}s timeout"
        elif all(tool.completed(code) for code in execution.exit_codes):
            status = "completed"
        else:
            logs = ", ".join(str(log) for log in execution.logs)
            note = f"{tool_name} exited with {execution.exit_code}; see {logs}"
        if watched.samples:
            warehouse.add_infra_samples(run_id, watched.samples)
            outcome.infra_samples = len(watched.samples)
        for problem in watched.problems:
            outcome.notes.append(problem)
        if live is not None:  # the rest of every output; the chunks already hold the beginning
            live.finish()
            outcome.ingested.extend(live.ingested)
            outcome.notes.extend(live.problems)
            for summary in summaries:  # an ingest of the whole output keeps it; live chunks lie elsewhere
                if summary.is_file():
                    try:
                        warehouse.attach_summary(run_id, summary, tool_name)
                    except WarehouseError as exc:
                        outcome.notes.append(f"{summary.name} not kept with the run: {exc}")
        for generator, output in outputs:
            if output.exists() and output.stat().st_size > 0:
                if live is not None:
                    continue
                try:
                    outcome.ingested.append(
                        warehouse.ingest(output, info, services=services_map, generator=generator, steps=steps_map)
                    )
                except IngestError as exc:
                    note = f"{note}; {exc}" if note else str(exc)
            elif settings.generators > 1 and executor.on_this_host:
                outcome.notes.append(f"generator {generator} wrote no results (its segment got no VUs?)")
            elif status == "completed" and executor.on_this_host:
                status, note = "failed", f"{tool_name} wrote no results to {output}"
        if status == "completed" and executor.on_this_host and not outcome.ingested:
            status, note = "failed", f"{tool_name} wrote no results in {directory}"
        if receiver is not None:
            stats = receiver.stats
            outcome.ingested.append(IngestResult(run_id, receiver.advertised_url, "influx-line", tool_name,
                                                 rows=stats.requests, points=stats.points, rejected=stats.rejected,
                                                 aggregates=stats.aggregates))
            outcome.notes.extend(receiver.problems)
            outcome.notes.append(f"received {stats.writes} writes ({stats.again} sent again): {stats.points} "
                                 f"k6 points, {stats.requests} requests, {stats.rejected} rejected lines")
            if status == "completed" and not (stats.points or stats.aggregates):
                status, note = "failed", f"no results came back to the receiver at {receiver.advertised_url}"
        elif not executor.on_this_host:
            outcome.notes.append(f"the {settings.runner} runner keeps results where the tool ran; "
                                 f"perfhouse ingested none{' (--live too)' if settings.live else ''}")
        outcome.totals = warehouse.totals(run_id)
        outcome.steps = warehouse.step_stats(run_id)
        if executor.on_this_host or receiver is not None:
            outcome.verdicts = warehouse.evaluate_slos(run_id, objectives(spec))
    except KeyboardInterrupt:
        status, note = "aborted", "interrupted"
        raise RunAborted(f"run {run_id} interrupted; what it produced is kept in {directory}") from None
    except PerfhouseError as exc:
        note = str(exc)
        raise
    finally:
        if live is not None:
            live.close()
        resources.close()  # the secrets file is gone and the watchdog released before the run is final
        info.labels.pop(OWNER_LABEL, None)
        outcome.status = status
        if note:
            outcome.notes.append(note)
        warehouse.finish_run(info, status, note)
    return outcome


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
