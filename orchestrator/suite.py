"""Suites: several specs run sequentially, all in parallel, or in groups (hybrid), as one command.

Each entry runs as its own `perfhouse run` process, so parallel entries never share signal
handlers or tool processes; the embedded warehouse's lock makes their ingests take turns.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import SpecError
from orchestrator.watchdog import dies_with_parent

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


@dataclass
class EntryResult:
    entry: SuiteEntry
    exit_code: int
    runs: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


def command(entry: SuiteEntry, warehouse: str | None, extra: list[str]) -> list[str]:
    argv = [sys.executable, "-m", "orchestrator"]
    if warehouse:
        argv += ["--warehouse", warehouse]
    argv += ["run", str(entry.spec), "--profile", entry.profile, "--tool", ",".join(entry.tools), "--json"]
    for name, url in entry.services:
        argv += ["--service", f"{name}={url}"]
    return argv + extra


def run_suite(suite: Suite, warehouse: str | None, extra: list[str], echo: Any = print) -> list[EntryResult]:
    """Run every wave; a wave's entries run side by side. Ctrl-C stops the running entries, which
    keep and mark what they produced, and no further wave starts."""
    results: list[EntryResult] = []
    for n, wave in enumerate(suite.waves(), 1):
        echo(f"suite {suite.name}: wave {n}: " + ", ".join(f"{e.spec.name}/{e.profile}" for e in wave))
        # each entry's perfhouse gets SIGTERM (stops its tools, keeps what they wrote) if this one dies
        procs = [(e, subprocess.Popen([*dies_with_parent("TERM"), *command(e, warehouse, extra)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=os.environ.copy())) for e in wave]
        interrupted = False
        for entry, proc in procs:
            try:
                out, err = proc.communicate()
            except KeyboardInterrupt:
                interrupted = True
                for _, other in procs:
                    if other.poll() is None:
                        other.send_signal(signal.SIGINT)
                out, err = proc.communicate()
            try:
                runs = json.loads(out) if out.strip() else []
            except ValueError:
                runs = []
            message = err.strip().splitlines()[-1] if proc.returncode and err.strip() else ""
            results.append(EntryResult(entry, proc.returncode, runs, message))
        if interrupted:
            break
    return results
