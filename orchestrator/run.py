"""A load test from spec to verdict: generate, check targets, execute, ingest, evaluate SLOs."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orchestrator.errors import PerfhouseError, RunAborted, TargetUnreachableError
from orchestrator.generators import GenerationOptions, generate
from orchestrator.generators.base import service_urls
from orchestrator.runners import RUNNERS
from orchestrator.spec import Spec
from orchestrator.tools import require
from warehouse.analysis.slo import Objective, Verdict
from warehouse.errors import IngestError
from warehouse.ingest import IngestResult
from warehouse.store import RunInfo, Warehouse, new_run_id


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

    @property
    def slo_passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

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
            "notes": self.notes,
        }


def objectives(spec: Spec) -> list[Objective]:
    return [Objective(s.metric, s.threshold, s.journey, s.step, s.abort_on_fail) for s in spec.slos]


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
) -> ToolRun:
    """Run one tool on one spec and profile; the run lands in the warehouse whatever happens."""
    tool, binary = require(tool_name)
    version = tool.version(binary)
    options = GenerationOptions(
        profile=profile, services=services or {}, jmeter_version=version if tool_name == "jmeter" else "5.6"
    )
    script = generate(spec, tool_name, options)
    urls = service_urls(spec, options)
    check_targets(spec, urls)

    run_id = new_run_id(tool_name)
    directory = (runs_dir / run_id).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    script_path = directory / script.filename
    script_path.write_text(script.content, encoding="utf-8")
    prof = spec.profile(profile)
    effective = {
        "spec": spec.name,
        "file": spec.file,
        "profile": profile,
        "tool": tool_name,
        "tool_version": version,
        "services": urls,
        "vus_per_journey": spec.vus_per_journey(prof.max_vus or 1),
        "approximations": list(script.notes),
    }
    (directory / "effective.json").write_text(json.dumps(effective, indent=2), encoding="utf-8")
    Path(directory / Path(spec.file).name).write_text(
        Path(spec.file).read_text(encoding="utf-8"), encoding="utf-8"
    )

    sha, branch = git_info(Path(spec.file).resolve().parent)
    info = RunInfo(
        run_id=run_id,
        tool=tool_name,
        tool_version=version,
        name=f"{spec.name}/{profile}",
        spec_name=spec.name,
        spec_hash=spec.source_hash,
        script_hash=script.sha256,
        profile=profile,
        git_sha=sha,
        branch=branch,
        environment=environment,
        labels=labels or {},
        notes="; ".join(script.notes),
    )
    warehouse.save_run(info)
    outcome = ToolRun(tool_name, run_id, "running", directory, notes=list(script.notes))
    echo(f"{tool_name} {version}: run {run_id} ({prof.executor}, {directory})")

    invocation = tool.invocation(binary, script_path, directory)
    status, note = "failed", ""
    try:
        execution = RUNNERS[runner].execute(
            invocation.argv, directory, directory / f"{tool_name}-console.log", timeout_s
        )
        outcome.exit_code = execution.exit_code
        if execution.interrupted:
            status, note = "aborted", "interrupted by a signal"
        elif execution.timed_out:
            status, note = "aborted", f"stopped by the {timeout_s:g}s timeout"
        elif tool.completed(execution.exit_code):
            status = "completed"
        else:
            note = f"{tool_name} exited with {execution.exit_code}; see {execution.log}"
        services_map = spec.step_services()
        for output in invocation.outputs:
            if output.exists() and output.stat().st_size > 0:
                try:
                    outcome.ingested.append(warehouse.ingest(output, info, services=services_map))
                except IngestError as exc:
                    note = f"{note}; {exc}" if note else str(exc)
            elif status == "completed":
                status, note = "failed", f"{tool_name} wrote no results to {output}"
        outcome.totals = warehouse.totals(run_id)
        outcome.steps = warehouse.step_stats(run_id)
        outcome.verdicts = warehouse.evaluate_slos(run_id, objectives(spec))
    except KeyboardInterrupt:
        status, note = "aborted", "interrupted"
        raise RunAborted(f"run {run_id} interrupted; what it produced is kept in {directory}") from None
    except PerfhouseError as exc:
        note = str(exc)
        raise
    finally:
        outcome.status = status
        if note:
            outcome.notes.append(note)
        warehouse.finish_run(info, status, note)
    return outcome
