"""Suites: several specs run sequentially, all in parallel, or in groups (hybrid), as one command.

Each entry is what `perfhouse run` does for one spec (orchestrator.run), with every run option; the entries
of a parallel wave run in processes of their own.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from orchestrator.errors import ExitStatus, PerfhouseError, SpecError
from orchestrator.run import RunSettings, ToolRun

if TYPE_CHECKING:
    from concurrent.futures import Future

    from warehouse.store import Warehouse

MODES = ("sequential", "parallel", "hybrid")


@dataclass(frozen=True)
class SuiteEntry:
    spec: Path
    profile: str
    tools: tuple[str, ...] = ("k6",)
    group: int = 0
    services: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Suite:
    name: str
    file: str
    mode: str
    entries: tuple[SuiteEntry, ...]

    def waves(self) -> list[list[SuiteEntry]]:
        """Entries grouped by when they start: each wave runs in parallel, waves run one after another."""
        if self.mode == "sequential":
            return [[e] for e in self.entries]
        if self.mode == "parallel":
            return [list(self.entries)]
        groups: dict[int, list[SuiteEntry]] = {}
        for entry in self.entries:
            groups.setdefault(entry.group, []).append(entry)
        return [groups[g] for g in sorted(groups)]


def is_suite(path: Path) -> bool:
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(doc, dict) and "suite" in doc


def load_suite(path: Path) -> Suite:
    file = str(path)
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read the suite: {exc}", file) from None
    if not isinstance(doc, dict):
        raise SpecError("a suite is a mapping with suite, mode and runs", file)
    unknown = set(doc) - {"suite", "mode", "runs"}
    if unknown:
        raise SpecError(f"unknown field {sorted(unknown)[0]!r}; allowed: suite, mode, runs", file)
    mode = str(doc.get("mode", "sequential"))
    if mode not in MODES:
        raise SpecError(f"expected one of {', '.join(MODES)}, found {mode!r}", file, field="mode")
    runs = doc.get("runs")
    if not isinstance(runs, list) or not runs:
        raise SpecError("expected a non-empty list of runs", file, field="runs")
    entries = []
    for i, raw in enumerate(runs):
        where = f"runs[{i}]"
        if not isinstance(raw, dict) or "spec" not in raw or "profile" not in raw:
            raise SpecError("each run names a spec and a profile", file, field=where)
        extra = set(raw) - {"spec", "profile", "tools", "group", "services"}
        if extra:
            raise SpecError(f"unknown field {sorted(extra)[0]!r}", file, field=where)
        spec = (Path(path).parent / str(raw["spec"])).resolve()
        if not spec.is_file():
            raise SpecError(f"no spec file {raw['spec']!r} beside the suite", file, field=f"{where}.spec")
        tools = raw.get("tools", ["k6"])
        tools = [tools] if isinstance(tools, str) else list(tools)
        group = raw.get("group", 0)
        if mode == "hybrid" and not isinstance(group, int):
            raise SpecError("a hybrid suite puts every run in a numbered group", file, field=f"{where}.group")
        services = tuple((str(k), str(v)) for k, v in (raw.get("services") or {}).items())
        entries.append(SuiteEntry(spec, str(raw["profile"]), tuple(str(t) for t in tools), int(group or 0),
                                  services))
    return Suite(str(doc.get("suite") or Path(path).stem), file, mode, tuple(entries))


@dataclass(frozen=True)
class SuiteRun:
    """What every entry of a suite shares: the warehouse, where runs go, and how they execute (every option of
    `perfhouse run`: runner and its options, generators, scraping, progress, live ingest, timeout)."""

    warehouse: str | None = None  # URL; None: the default one
    settings: RunSettings = field(default_factory=RunSettings)
    runs_dir: Path = Path(".perfhouse/runs")
    timeout_s: float | None = None
    environment: str = ""


@dataclass
class EntryResult:
    entry: SuiteEntry
    runs: list[ToolRun] = field(default_factory=list)
    error: str = ""
    exit_status: ExitStatus = ExitStatus.OK


def run_entry(entry: SuiteEntry, shared: SuiteRun, warehouse: Warehouse | None = None,
              echo: Callable[[str], None] = lambda _: None) -> EntryResult:
    """One entry: its spec with each of its tools, as `perfhouse run` would; errors become the entry's result."""
    from orchestrator.run import PendingWarehouse, render_scripts, run_tool, terminate_as_interrupt
    from orchestrator.spec import load_spec
    from orchestrator.tools import get as get_tool
    from warehouse.engine.fingerprint import new_group_id

    result = EntryResult(entry)
    try:
        spec = load_spec(entry.spec)
        spec.profile(entry.profile)
        scripts = render_scripts(spec, [get_tool(tool) for tool in entry.tools], entry.profile, dict(entry.services),
                                 shared.settings)
        group_id = new_group_id()  # the entry's runs, one per tool, as one `perfhouse run` groups them
        # the warehouse opens while the first tool runs
        store = warehouse or PendingWarehouse(lambda: _open(shared.warehouse), shared.warehouse, start=False)
        with terminate_as_interrupt():
            for tool in entry.tools:
                outcome = run_tool(spec, tool, store, entry.profile, dict(entry.services), runs_dir=shared.runs_dir,
                                   timeout_s=shared.timeout_s, environment=shared.environment, echo=echo,
                                   settings=shared.settings, group_id=group_id, script=scripts[tool])
                result.runs.append(outcome)
                if outcome.status == "aborted":
                    break
    except PerfhouseError as exc:
        result.error = str(exc)
        result.exit_status = ExitStatus(int(exc.exit_status))
        return result
    except KeyboardInterrupt:
        result.error = "interrupted"
        result.exit_status = ExitStatus.ABORTED
        return result
    result.exit_status = exit_status(result.runs)
    return result


def _open(url: str | None) -> Warehouse:
    from warehouse.store import Warehouse

    return Warehouse.open(url)


def exit_status(outcomes: list[ToolRun]) -> ExitStatus:
    """The status of `perfhouse run` for these runs: aborted, failed, an SLO failed, or OK."""
    if any(o.status == "aborted" for o in outcomes):
        return ExitStatus.ABORTED
    if any(o.status == "failed" for o in outcomes):
        return ExitStatus.ERROR
    if not all(o.slo_passed for o in outcomes):
        return ExitStatus.SLO_FAILED
    return ExitStatus.OK


def _entry_in_child(entry: SuiteEntry, shared: SuiteRun) -> EntryResult:
    """In an entry's own process: stop like a Ctrl-C (its tools stopped, what they wrote kept) if the suite's
    perfhouse dies."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="perfhouse-suite-parent", daemon=True).start()
    return run_entry(entry, shared)


def run_suite(suite: Suite, shared: SuiteRun, warehouse: Warehouse | None = None,
              echo: Callable[[str], None] = print) -> list[EntryResult]:
    """Run every wave; a wave's entries run side by side, each in a process of its own (so each has its own
    signal handling and tool processes; the embedded warehouse's lock makes their ingests take turns).
    Ctrl-C stops the running entries, which keep and mark what they produced, and no further wave starts."""
    results: list[EntryResult] = []
    for n, wave in enumerate(suite.waves(), 1):
        echo(f"suite {suite.name}: wave {n}: " + ", ".join(f"{e.spec.name}/{e.profile}" for e in wave))
        if len(wave) == 1:
            results.append(run_entry(wave[0], shared, warehouse, echo))
            if results[-1].exit_status == ExitStatus.ABORTED:
                break
            continue
        release = getattr(warehouse.backend, "release", None) if warehouse is not None else None
        if release is not None:  # the entries' processes open the embedded warehouse in turn
            release()
        import multiprocessing  # a wave of several entries only: `run` of one spec loads none of it
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(len(wave), mp_context=context) as pool:
            futures = [pool.submit(_entry_in_child, entry, shared) for entry in wave]
            interrupted = False
            for entry, future in zip(wave, futures, strict=True):
                try:
                    results.append(_result(entry, future))
                except KeyboardInterrupt:  # the entries got the terminal's SIGINT too; they stop and keep
                    interrupted = True
                    for process in multiprocessing.active_children():
                        if process.pid is not None:
                            os.kill(process.pid, signal.SIGINT)
                    results.append(_result(entry, future))
        if interrupted or any(r.exit_status == ExitStatus.ABORTED for r in results):
            break
    return results


def _result(entry: SuiteEntry, future: Future[EntryResult]) -> EntryResult:
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool:
        return EntryResult(entry, error="the entry's process died", exit_status=ExitStatus.ERROR)
