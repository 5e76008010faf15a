"""The warehouse as the rest of perfhouse sees it: runs, ingestion into them, and the read API."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from warehouse import queries
from warehouse.analysis import slo
from warehouse.backends import Backend, open_backend
from warehouse.errors import WarehouseError
from warehouse.ingest import IngestResult, ingest_file, recover
from warehouse.schema import migrate

RUN_STATUSES = ("running", "completed", "failed", "aborted", "imported")


def new_run_id(tool: str) -> str:
    now = dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%d-%H%M%S}-{tool}-{secrets.token_hex(2)}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass
class RunInfo:
    run_id: str
    tool: str
    status: str = "running"
    name: str = ""
    tool_version: str = ""
    spec_name: str = ""
    spec_hash: str = ""
    script_hash: str = ""
    profile: str = ""
    git_sha: str = ""
    branch: str = ""
    environment: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    source: str = "perfhouse"
    notes: str = ""
    started_at: str = field(default_factory=_now)
    ended_at: str | None = None


class Warehouse:
    """Open with `Warehouse.open(url)`; every method is one unit of work on the backend."""

    def __init__(self, backend: Backend):
        self.backend = backend

    @classmethod
    def open(cls, url: str | None = None, lock_timeout_s: float = 60.0) -> Warehouse:
        backend = open_backend(url, lock_timeout_s)
        with backend.session():
            migrate(backend)
            recover(backend)
        return cls(backend)

    @property
    def url(self) -> str:
        return self.backend.url

    # -- runs ---------------------------------------------------------------------------------

    def save_run(self, info: RunInfo) -> None:
        """Insert or update a run (the newest version of a run row wins)."""
        if info.status not in RUN_STATUSES:
            raise WarehouseError(f"unknown run status {info.status!r}")
        row = asdict(info)
        self.backend.command(
            "INSERT INTO runs (run_id, name, tool, tool_version, spec_name, spec_hash, script_hash, profile, "
            "git_sha, branch, environment, labels, source, status, notes, started_at, ended_at, updated_at) "
            "VALUES ({run_id:String}, {name:String}, {tool:String}, {tool_version:String}, {spec_name:String}, "
            "{spec_hash:String}, {script_hash:String}, {profile:String}, {git_sha:String}, {branch:String}, "
            "{environment:String}, {labels:Map(String, String)}, {source:String}, {status:String}, "
            "{notes:String}, {started_at:DateTime64(3, 'UTC')}, {ended_at:Nullable(DateTime64(3, 'UTC'))}, "
            "now64(6))",
            row,
        )

    def finish_run(self, info: RunInfo, status: str, notes: str = "") -> None:
        info.status = status
        info.ended_at = _now()
        if notes:
            info.notes = f"{info.notes}; {notes}" if info.notes else notes
        self.save_run(info)

    def runs(self, limit: int = 100, tool: str = "", spec: str = "") -> list[dict[str, Any]]:
        return self.backend.query(queries.RUNS, {"limit": limit, "tool": tool, "spec": spec})

    def resolve(self, ref: str) -> str:
        """A run id from an id, a unique prefix of one, or `latest`."""
        with self.backend.session():
            if ref == "latest":
                rows = self.backend.query(queries.LATEST_RUN)
                if not rows:
                    raise WarehouseError("the warehouse holds no runs yet")
                return str(rows[0]["run_id"])
            rows = self.backend.query(queries.RUN_PREFIX, {"prefix": ref})
        if not rows:
            raise WarehouseError(f"no run {ref!r} in the warehouse; `perfhouse runs` lists them")
        if len(rows) > 1 and rows[0]["run_id"] != ref:
            raise WarehouseError(f"{ref!r} matches several runs; give more of the id")
        return str(rows[0]["run_id"])

    def run(self, run_id: str) -> dict[str, Any]:
        rows = self.backend.query(queries.RUN, {"run": run_id})
        if not rows:
            raise WarehouseError(f"no run {run_id!r} in the warehouse")
        return rows[0]

    # -- ingestion ----------------------------------------------------------------------------

    def ingest(
        self,
        path: Path,
        run: RunInfo | None = None,
        fmt: str | None = None,
        generator: str = "",
        services: dict[tuple[str, str], str] | None = None,
    ) -> IngestResult:
        """Ingest a file into `run`, or, when none is given, into a new imported run of its own."""
        with self.backend.session():
            if run is not None:
                return ingest_file(self.backend, path, run.run_id, fmt, generator, services)
            from warehouse.ingest import detect_format

            tool = detect_format(Path(path)).tool if fmt is None else fmt.split("-")[0]
            info = RunInfo(new_run_id(tool), tool, status="imported", source="import", name=Path(path).name)
            result = ingest_file(self.backend, path, info.run_id, fmt, generator, services)
            if not result.duplicate:
                times = self.backend.query(
                    "SELECT toString(min(ts)) AS a, toString(max(ts)) AS b FROM requests WHERE run_id = {r:String}",
                    {"r": info.run_id},
                )[0]
                if result.rows:
                    info.started_at, info.ended_at = times["a"], times["b"]
                info.notes = f"imported from {Path(path).name}; {result.rejected} rejected lines"
                self.save_run(info)
            return result

    def add_infra_samples(
        self, run_id: str, rows: list[tuple[str, str, str, dict[str, str], float]], chunk: int = 5000
    ) -> int:
        """Store scraped infrastructure samples: (ts UTC text, source, metric, labels, value) each."""
        with self.backend.session():
            for start in range(0, len(rows), chunk):
                self.backend.command(
                    "INSERT INTO infra_samples (run_id, ts, source, metric, labels, value) "
                    "SELECT {run:String}, parseDateTime64BestEffort(r.1, 3, 'UTC'), r.2, r.3, r.4, r.5 "
                    "FROM (SELECT arrayJoin({rows:Array(Tuple(String, String, String, Map(String, String), "
                    "Float64))}) AS r)",
                    {"run": run_id, "rows": [tuple(r) for r in rows[start : start + chunk]]},
                )
        return len(rows)

    # -- reading ------------------------------------------------------------------------------

    def step_stats(self, run_id: str) -> list[dict[str, Any]]:
        return self.backend.query(queries.STEP_STATS, {"run": run_id})

    def totals(self, run_id: str) -> dict[str, Any]:
        return self.backend.query(queries.RUN_TOTALS, {"run": run_id})[0]

    def latency_over_time(self, run_id: str, bucket_s: int = 1) -> list[dict[str, Any]]:
        return self.backend.query(queries.LATENCY_OVER_TIME, {"run": run_id, "bucket": bucket_s})

    def errors(self, run_id: str) -> list[dict[str, Any]]:
        return self.backend.query(queries.ERRORS_BY_CAUSE, {"run": run_id})

    def evaluate_slos(self, run_id: str, objectives: list[slo.Objective]) -> list[slo.Verdict]:
        with self.backend.session():
            return slo.evaluate(self.backend, run_id, objectives)

    def slo_verdicts(self, run_id: str) -> list[slo.Verdict]:
        return slo.stored(self.backend, run_id)

    # -- infrastructure samples (appended by the runners work, issue 5) ---------------------------

    def infra_samples(self, run_id: str, metric: str = "", limit: int = 100_000) -> list[dict[str, Any]]:
        return self.backend.query(queries.INFRA_SAMPLES, {"run": run_id, "metric": metric, "limit": limit})
