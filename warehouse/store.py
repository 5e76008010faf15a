"""The warehouse as the rest of perfhouse sees it: runs, ingestion into them, and the read API.

Long as a facade is: one short method for each thing the rest of perfhouse asks of the warehouse, each a few lines
over read.queries, ingest or the engine; what is more than that lives in those packages.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warehouse import tools
from warehouse.engine import fingerprint as fp
from warehouse.engine.backends import Backend, open_backend
from warehouse.engine.ids import new_run_id
from warehouse.engine.owners import OWNER_LABEL, Owner, abort_orphaned_runs, sweep_scratch
from warehouse.engine.schema import MIGRATIONS, migrate
from warehouse.engine.summaries import batch_shape
from warehouse.errors import DataError, IngestError, WarehouseError
from warehouse.read import queries
from warehouse.read.records import (
    ErrorCause,
    FingerprintHistory,
    InfraBucket,
    InfraSample,
    IntervalAggregate,
    LatencyBucket,
    LatencyDistribution,
    RunChoice,
    RunFacets,
    RunGroup,
    RunListing,
    RunListRow,
    RunRecord,
    RunTotals,
    StepStats,
    TableColumn,
)

if TYPE_CHECKING:  # ingestion loads when a file is ingested, not with every command that opens the warehouse
    from warehouse.ingest import IngestJob, IngestResult, StepFacts
    from warehouse.ingest.history import RunMeta

RUN_STATUSES = ("running", "completed", "failed", "aborted", "imported")


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
    fingerprint: str = ""  # runs with equal fingerprints form one history (warehouse.engine.fingerprint)
    group_id: str = ""  # shared by the runs of one invocation (k6 and JMeter of one `perfhouse run`)
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


def _settled(backend: Backend) -> bool:
    """Is the warehouse at the current schema, with no unfinished batch, no staging table and no running run whose
    owner is known dead? One query (a warehouse without the tables yet, or a cluster, is not settled)."""
    if getattr(backend, "cluster", None):
        return False
    try:
        rows = backend.query(queries.OPEN_CHECK, {"label": OWNER_LABEL})
    except WarehouseError:
        return False
    state = rows[0]
    if not {version for version, _, _ in MIGRATIONS} <= {int(v) for v in state["versions"]}:
        return False
    if int(state["unfinished"]) or int(state["staged"]):
        return False
    return all((owner := Owner.parse(str(token))) is not None and owner.alive() is not False
               for token in state["owners"])


class Warehouse:
    """Open with `Warehouse.open(url)`; every method is one unit of work on the backend."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.orphans_aborted: list[str] = []  # runs found running with a dead owner when it opened

    @classmethod
    def open(cls, url: str | None = None, lock_timeout_s: float = 60.0) -> Warehouse:
        """Open a warehouse: migrate its schema, take back batches a dead ingest left and abort runs whose owner
        died. One query says whether any of that is needed; usually nothing is, and opening costs that query."""
        backend = open_backend(url, lock_timeout_s)
        with backend.session():
            orphans: list[str] = []
            if not _settled(backend):
                from warehouse.ingest import recover

                migrate(backend)
                recover(backend)
                orphans = abort_orphaned_runs(backend)
        sweep_scratch()  # what killed ingests left in the temporary directory
        warehouse = cls(backend)
        warehouse.orphans_aborted = orphans
        return warehouse

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
            "INSERT INTO runs (run_id, name, tool, tool_version, spec_name, spec_hash, fingerprint, group_id, "
            "script_hash, profile, git_sha, branch, environment, labels, source, status, notes, started_at, ended_at, "
            "updated_at) "
            "VALUES ({run_id:String}, {name:String}, {tool:String}, {tool_version:String}, {spec_name:String}, "
            "{spec_hash:String}, {fingerprint:String}, {group_id:String}, {script_hash:String}, {profile:String}, "
            "{git_sha:String}, {branch:String}, "
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

    def runs(
        self, limit: int = 100, tool: str = "", spec: str = "", group: str = "", fingerprint: str = ""
    ) -> list[RunListing]:
        """Runs newest first; `group` and `fingerprint` filter by prefix."""
        rows = self.backend.query(
            queries.RUNS, {"limit": limit, "tool": tool, "spec": spec, "group": group, "fingerprint": fingerprint}
        )
        return [RunListing.of(r) for r in rows]

    def resolve(self, ref: str) -> str:
        """A run id from an id, a unique prefix of one, or `latest`."""
        with self.backend.session():
            if ref == "latest":
                rows = self.backend.query(queries.LATEST_RUN)
                if not rows:
                    raise DataError("the warehouse holds no runs yet")
                return str(rows[0]["run_id"])
            rows = self.backend.query(queries.RUN_PREFIX, {"prefix": ref})
        if not rows:
            raise DataError(f"no run {ref!r} in the warehouse; `perfhouse runs` lists them")
        if len(rows) > 1 and rows[0]["run_id"] != ref:
            raise DataError(f"{ref!r} matches several runs; give more of the id")
        return str(rows[0]["run_id"])

    def run_group(self, run_id: str) -> list[str]:
        """The runs reported together with `run_id`: the runs of one invocation (one per tool) that share its
        group id; a run without a group is a group of one."""
        rows = self.backend.query(queries.RUN_GROUP, {"run": run_id})
        return [str(r["run_id"]) for r in rows] or [run_id]

    def run(self, run_id: str) -> RunRecord:
        rows = self.backend.query(queries.RUN, {"run": run_id})
        if not rows:
            raise DataError(f"no run {run_id!r} in the warehouse")
        return RunRecord.of(rows[0])

    # -- ingestion ----------------------------------------------------------------------------

    def ingest(
        self,
        path: Path,
        run: RunInfo | None = None,
        fmt: str | None = None,
        generator: str = "",
        services: dict[tuple[str, str], str] | None = None,
        meta: RunMeta | None = None,
        steps: dict[tuple[str, str], StepFacts] | None = None,
    ) -> IngestResult:
        """Ingest a file into `run`, or, when none is given, into a new imported run of its own described by
        `meta`. A k6 summary kept beside a k6 results file (k6.json → k6-summary.json) is stored with the run.
        `services` and `steps` say what the spec knows of each (journey, step): its service, method, expected
        status and checks."""
        from warehouse.ingest import all_formats, detect_format, ingest_file, read_head, readable
        from warehouse.ingest.history import RunMeta

        path = Path(path)
        with self.backend.session(), readable(path) as plain:
            source = path if plain != path else None
            if run is not None:
                result = ingest_file(self.backend, plain, run.run_id, fmt, generator, services, steps, source=source)
                self._attach_beside(path, result)
                return result
            fmt_impl = all_formats().get(fmt) if fmt else detect_format(plain, path)
            tool = fmt_impl.tool if fmt_impl is not None else str(fmt).split("-")[0]
            tool_for = getattr(fmt_impl, "tool_for", None)
            if tool_for is not None:
                tool = tool_for(read_head(plain))
            meta = meta or RunMeta()
            if (described := getattr(fmt_impl, "run_meta", None)) is not None:  # what the file says of its own run,
                meta = meta.over(described(plain))  # below what the user says
            info = RunInfo(new_run_id(tool), tool, status="imported", source="import",
                           name=meta.name or (plain.name if source else path.name))

            def record_run(job: IngestJob, result: IngestResult) -> None:
                """The imported run's record, written by ingest_file after the rows and its summary and before its
                commit. Its steps and times come from the summary (it covers this batch alone), or for a file
                without requests from the rows it has."""
                info.tool = result.tool
                shape = batch_shape(self.backend, job.run_id, job.batch)
                if shape is not None:
                    info.started_at, info.ended_at = shape.first_ts, shape.last_ts
                else:
                    name = "aggregates" if result.aggregates else "k6_points"
                    times = self.backend.query(
                        f"SELECT toString(min(ts)) AS a, toString(max(ts)) AS b FROM {job.table(name)} "
                        "WHERE batch = {b:String}", {"b": job.batch}
                    )[0]
                    info.started_at, info.ended_at = times["a"], times["b"]
                for key in ("environment", "profile", "tool_version", "spec_name", "git_sha", "branch"):
                    if getattr(meta, key) is not None:
                        setattr(info, key, getattr(meta, key))
                info.labels = dict(meta.labels)
                info.spec_name = info.spec_name or meta.name or ""
                info.fingerprint = self._imported_fingerprint(info, shape.steps if shape else [])
                if meta.started_at is not None:
                    info.started_at = meta.started_at
                imported = f"imported from {path.name}; {result.rejected} rejected lines"
                info.notes = f"{meta.notes}; {imported}" if meta.notes else imported
                if result.notes:
                    info.notes += "; " + "; ".join(result.notes)
                self.save_run(info)

            result = ingest_file(self.backend, plain, info.run_id, fmt, generator, services, steps,
                                 run_record=record_run, source=source)
            self._attach_beside(path, result)
            return result

    def _imported_fingerprint(self, info: RunInfo, steps: list[tuple[str, str]]) -> str:
        """An imported run's fingerprint from what it says: its name, the steps its requests name, its metadata."""
        shape = fp.structure_hash(fp.StepShape(journey, step) for journey, step in steps)
        return fp.fingerprint(info.spec_name, shape, info.profile, info.tool, info.environment, info.labels)

    def _attach_beside(self, path: Path, result: IngestResult) -> None:
        from warehouse.ingest.history import summary_beside

        own = tools.get(result.tool)
        if own is None or own.summary is None or (summary := summary_beside(path, own.summary.beside(path))) is None:
            return
        try:
            attached = self.attach_summary(result.run_id, summary, result.tool)
        except WarehouseError as exc:  # the results are in; a summary that cannot be kept only says so
            result.notes.append(f"{own.display} summary {summary.name} not kept: {exc}")
            return
        result.notes.append(_summary_note(summary.name, attached.duplicate))

    # -- a tool's own end-of-test summary -------------------------------------------------------

    def attach_summary(self, run_id: str, path: Path, tool: str) -> SummaryResult:
        """Keep a tool's own end-of-test summary JSON (k6's --summary-export / handleSummary) with an existing run
        (once per file name)."""
        from warehouse.ingest.history import read_summary

        path = Path(path)
        doc = read_summary(path)
        text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
        with self.backend.session():
            self.run(run_id)  # the run must exist
            have = self.backend.query(
                "SELECT summary FROM tool_summaries FINAL WHERE run_id = {run:String} AND tool = {tool:String} "
                "AND name = {name:String}",
                {"run": run_id, "tool": tool, "name": path.name},
            )
            if have and have[0]["summary"] == text:
                return SummaryResult(run_id, str(path), tool, duplicate=True)
            self.backend.command(
                "INSERT INTO tool_summaries (run_id, tool, name, summary, added_at) "
                "VALUES ({run:String}, {tool:String}, {name:String}, {summary:String}, now64(3))",
                {"run": run_id, "tool": tool, "name": path.name, "summary": text},
            )
        return SummaryResult(run_id, str(path), tool)

    def tool_summaries(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Every summary kept with a run, by file name (a run split over generators keeps one per part)."""
        rows = self.backend.query(queries.TOOL_SUMMARIES, {"run": run_id})
        return {str(r["name"]): json.loads(r["summary"]) for r in rows}

    def tool_summary(self, run_id: str, preferred: str = "") -> dict[str, Any] | None:
        """The run's own summary (the one named `preferred` when there are several, else the first by name), or
        None."""
        kept = self.tool_summaries(run_id)
        if not kept:
            return None
        return kept.get(preferred) or kept[min(kept)]

    # -- import of history --------------------------------------------------------------------

    def import_files(
        self,
        paths: list[Path],
        flags: RunMeta | None = None,
        recursive: bool = False,
        fmt: str | None = None,
        run_id: str | None = None,
    ) -> Iterator[FileOutcome]:
        """Ingest files and directories (their files; every file below with `recursive`), each file as a run
        whose metadata comes from `flags`, sidecars, perfhouse-runs.yaml and the file name (in that order).

        A named file that cannot be ingested raises; a file found in a directory that is not a results file
        is skipped, and one that fails is reported, both without stopping the import. With `run_id`, results
        go into that existing run and k6 summaries are attached to it.
        """
        from warehouse.ingest.history import RunMeta, discover, looks_like_summary
        from warehouse.tools.locust import locust_csv

        flags = flags or RunMeta()
        work: list[tuple[Path, Path | None, str]] = []  # (file, directory it was found under, kind)
        empty: list[Path] = []  # directories holding no file to ingest
        for given in map(Path, paths):
            if given.is_dir():
                found = [(f.path, given, f.kind) for f in discover(given, recursive)]
                work.extend(found)
                if not found:
                    empty.append(given)
            else:
                summary = given.is_file() and looks_like_summary(given)
                work.append((given, None, "summary" if summary else "results"))
        for directory in empty:
            below = not recursive and any(p.is_dir() for p in directory.iterdir())
            raise IngestError(f"{directory}: no results file in this directory"
                              + ("; its subdirectories are searched with --recursive" if below else ""))
        total, attached = len(work), dict[Path, tuple[str, bool]]()
        summaries = [w for w in work if w[2] == "summary"]
        # Locust's statistics and history of one --csv PREFIX: one run (the history's, the statistics added)
        partners = {} if fmt or run_id else locust_csv.csv_partners([p for p, _, kind in work if kind == "results"])
        position = {p: i for i, (p, _, kind) in enumerate(work, start=1) if kind == "results"}
        done: set[Path] = set()
        for index, (path, root, kind) in enumerate(work, start=1):
            if kind == "summary" or path in done:
                continue
            if path in partners:
                yield from self._import_locust_pair(partners[path], root, flags, position, total, done)
                continue
            outcome = FileOutcome(str(path), index, total)
            yield self._import_one(path, root, flags, fmt, run_id, outcome, attached)
        for path, root, _ in summaries:
            index = work.index((path, root, "summary")) + 1
            outcome = FileOutcome(str(path), index, total, status="summary")
            if path.resolve() in attached:
                outcome.run_id, outcome.duplicate = attached[path.resolve()]
                outcome.reason = f"kept with run {outcome.run_id}, of the results file beside it"
                yield outcome
                continue
            target = run_id or self._lone_summary_run(path, work)
            if target is None:
                if root is None:
                    raise WarehouseError(f"{path}: a k6 summary; attach it to its run with --run RUN_ID")
                outcome.status = "skipped"
                outcome.reason = "a k6 summary with no k6 results file beside it; attach it with --run RUN_ID"
                yield outcome
                continue
            result = self.attach_summary(target, path, self.run(target).tool)
            outcome.run_id, outcome.duplicate = target, result.duplicate
            outcome.reason = f"kept with run {target}"
            yield outcome

    def _import_locust_pair(
        self,
        pair: tuple[Path, Path],
        root: Path | None,
        flags: RunMeta,
        position: dict[Path, int],
        total: int,
        done: set[Path],
    ) -> Iterator[FileOutcome]:
        """Locust's history and statistics of one --csv PREFIX as one run: the history makes the run (its times
        are the run's; named PREFIX unless the metadata names it), the statistics go into it."""
        from warehouse.ingest.history import RunMeta
        from warehouse.tools.locust import locust_csv

        history, stats = pair
        done.update(pair)
        named = RunMeta(name=locust_csv.csv_prefix(history))
        first = self._import_one(history, root, flags, None, None, FileOutcome(str(history), position[history], total),
                                 {}, fallback=named)
        into = first.run_id if first.status in ("ingested", "duplicate") else None
        second = self._import_one(stats, root, flags, None, into, FileOutcome(str(stats), position[stats], total), {},
                                  fallback=named)
        if into is not None and second.result is not None:
            second.meta = first.meta
            second.result.notes.append(f"kept with {history.name} in one run: the statistics of one --csv prefix")
        yield from sorted((first, second), key=lambda o: o.index)  # in the order the files were given

    def _import_one(
        self,
        path: Path,
        root: Path | None,
        flags: RunMeta,
        fmt: str | None,
        run_id: str | None,
        outcome: FileOutcome,
        attached: dict[Path, tuple[str, bool]],
        fallback: RunMeta | None = None,
    ) -> FileOutcome:
        from warehouse.ingest import detect_format
        from warehouse.ingest.history import RunMeta, resolve_meta, summary_beside

        if root is not None and not fmt:
            try:
                detect_format(path)
            except IngestError as exc:
                outcome.status, outcome.reason = "skipped", _after_path(str(exc), path)
                return outcome
        try:
            meta = resolve_meta(path, flags, root).over(fallback or RunMeta())
            if run_id is not None:
                result = self.ingest(path, RunInfo(run_id, ""), fmt)
            else:
                result = self.ingest(path, fmt=fmt, meta=meta)
        except IngestError as exc:
            if root is None:
                raise
            outcome.status, outcome.reason = "failed", _after_path(str(exc), path)
            return outcome
        outcome.result, outcome.meta = result, meta.to_dict()
        outcome.run_id, outcome.duplicate = result.run_id, result.duplicate
        outcome.status = "duplicate" if result.duplicate else "ingested"
        own = tools.get(result.tool)
        if own and own.summary and (beside := summary_beside(path, own.summary.beside(path))) is not None:
            attached[beside.resolve()] = (result.run_id, _summary_note(beside.name, True) in result.notes)
        return outcome

    def _lone_summary_run(self, summary: Path, work: list[tuple[Path, Path | None, str]]) -> str | None:
        """The run of the only results file in the summary's directory of a tool that writes summaries, if there is
        exactly one."""
        from warehouse.ingest import all_formats

        formats = sorted(f.name for f in all_formats().values() if (own := tools.get(f.tool)) and own.summary)
        files = [p for p, _, kind in work if kind == "results" and p.parent == summary.parent]
        rows = []
        for p in files:
            rows.extend(self.backend.query(
                "SELECT DISTINCT f.run_id AS run_id FROM ingested_files AS f FINAL "
                "WHERE f.path = {path:String} AND f.state = 'done' AND f.format IN {formats:Array(String)}",
                {"path": str(p), "formats": formats},
            ))
        runs = {str(r["run_id"]) for r in rows}
        return runs.pop() if len(runs) == 1 else None

    # -- retention ------------------------------------------------------------------------------

    def set_raw_points_ttl(self, days: int | None) -> None:
        """Keep raw k6 points for `days` days (None: for ever); requests and runs are always kept."""
        with self.backend.session():
            if days is None:
                if self.raw_points_ttl() is not None:
                    self.backend.command("ALTER TABLE k6_points REMOVE TTL")
                return
            if int(days) < 1:
                raise WarehouseError(f"a retention of {days} days keeps nothing; give at least 1d, or off")
            self.backend.command(f"ALTER TABLE k6_points MODIFY TTL toDateTime(ts) + INTERVAL {int(days)} DAY")

    def raw_points_ttl(self) -> int | None:
        """Days raw k6 points are kept, read from the table's definition (None: no TTL)."""
        rows = self.backend.query(queries.TABLE_ENGINE, {"table": "k6_points"})
        engine = str(rows[0]["engine_full"]) if rows else ""
        m = re.search(r"TTL toDateTime\(ts\) \+ toIntervalDay\((\d+)\)", engine)
        return int(m[1]) if m else None

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

    def step_stats(self, run_id: str) -> list[StepStats]:
        return [StepStats.of(r) for r in self.backend.query(queries.STEP_STATS, {"run": run_id})]

    def totals(self, run_id: str) -> RunTotals:
        return RunTotals.of(self.backend.query(queries.RUN_TOTALS, {"run": run_id})[0])

    def latency_over_time(self, run_id: str, bucket_s: int = 1) -> list[LatencyBucket]:
        rows = self.backend.query(queries.LATENCY_OVER_TIME, {"run": run_id, "bucket": bucket_s})
        return [LatencyBucket.of(r) for r in rows]

    def errors(self, run_id: str) -> list[ErrorCause]:
        return [ErrorCause.of(r) for r in self.backend.query(queries.ERRORS_BY_CAUSE, {"run": run_id})]

    # -- infrastructure samples (appended by the runners work, issue 5) ---------------------------

    def infra_samples(self, run_id: str, metric: str = "", limit: int = 100_000) -> list[InfraSample]:
        rows = self.backend.query(queries.INFRA_SAMPLES, {"run": run_id, "metric": metric, "limit": limit})
        return [InfraSample.of(r) for r in rows]

    # -- interval aggregates (JMeter's InfluxDB backend listener), issue 6 --------------------------

    def aggregates(self, run_id: str, metric: str = "") -> list[IntervalAggregate]:
        rows = self.backend.query(queries.AGGREGATES, {"run": run_id, "metric": metric})
        return [IntervalAggregate.of(r) for r in rows]

    # -- the dashboard's reads ----------------------------------------------------------------------

    def run_list(self, filters: RunFilter | None = None, limit: int = 500) -> list[RunListRow]:
        """Runs newest first, narrowed by `filters`, with request, error and SLO counts."""
        rows = self.backend.query(queries.RUN_LIST, {**asdict(filters or RunFilter()), "limit": limit})
        return [RunListRow.of(r) for r in rows]

    def run_choices(self, limit: int = 500) -> list[RunChoice]:
        """The newest runs' ids, names, tools and statuses (a picker's options; nothing counted)."""
        return [RunChoice.of(r) for r in self.backend.query(queries.RUN_CHOICES, {"limit": limit})]

    def run_facets(self) -> RunFacets:
        """The values each runs filter can take (sorted, empty values left out) and the span of start times."""
        return RunFacets.of(self.backend.query(queries.RUN_FACETS)[0])

    def latency_distribution(self, run_ids: list[str], journey: str = "", step: str = "") -> list[LatencyDistribution]:
        """Each run's duration distribution (of one journey or step, '' for all) as its quantiles at
        queries.DISTRIBUTION_LEVELS: `points` of (ms, fraction of requests at or below)."""
        rows = self.backend.query(queries.LATENCY_DISTRIBUTION, {"runs": run_ids, "journey": journey, "step": step})
        return [LatencyDistribution.of(r, queries.DISTRIBUTION_LEVELS) for r in rows]

    def run_groups(self, limit: int = 200) -> list[RunGroup]:
        """Groups of several runs (one invocation with several tools), newest first."""
        return [RunGroup.of(r) for r in self.backend.query(queries.RUN_GROUPS, {"limit": limit})]

    def fingerprints(self, limit: int = 200) -> list[FingerprintHistory]:
        """Fingerprints of finished runs with their spec, tool, profile, run count and newest run, newest first."""
        return [FingerprintHistory.of(r) for r in self.backend.query(queries.FINGERPRINTS, {"limit": limit})]

    def recover(self) -> list[str]:
        """Undo the batches of ingests that died, as opening the warehouse does; a reader that stays open (the
        dashboard) calls it before its reads, so it never shows the rows of a batch that will never commit."""
        from warehouse.ingest import recover

        return recover(self.backend)

    def data_version(self) -> tuple[Any, ...]:
        """A value that changes whenever anything is written to the warehouse: the key of cached reads."""
        return tuple(self.backend.query(queries.DATA_VERSION)[0].values())

    def infra_over_time(self, run_id: str, bucket_s: int = 1, limit: int = 50_000) -> list[InfraBucket]:
        rows = self.backend.query(queries.INFRA_OVER_TIME, {"run": run_id, "bucket": bucket_s, "limit": limit})
        return [InfraBucket.of(r) for r in rows]

    def table_columns(self) -> list[TableColumn]:
        """Columns of perfhouse's tables: (table, name, type), in table order."""
        from warehouse.read import sqlgate

        rows = self.backend.query(queries.TABLE_COLUMNS, {"tables": sorted(sqlgate.warehouse_tables())})
        return [TableColumn.of(r) for r in rows]

    def read_only_sql(self, sql: str, row_limit: int | None = None, timeout_s: int | None = None) -> SqlResult:
        """An ad-hoc query through the SQL gate (one SELECT over perfhouse's tables), run read-only with
        a row limit and a timeout (default sqlgate's); sqlgate.Refused when the gate does not admit it."""
        return read_only_sql(self.backend, sql, row_limit, timeout_s)


def read_only_sql(backend: Backend, sql: str, row_limit: int | None = None, timeout_s: int | None = None) -> SqlResult:
    """An ad-hoc query through the SQL gate on `backend` (the warehouse's own, or a connection as a
    read-only ClickHouse user): the engine stops at `row_limit` rows and sqlgate's byte, memory and time
    caps, and an answer larger than sqlgate.MAX_ANSWER_BYTES is refused before Python decodes it."""
    from warehouse.read import sqlgate  # sqlglot loads for the SQL page only

    row_limit = sqlgate.DEFAULT_ROW_LIMIT if row_limit is None else max(1, int(row_limit))
    timeout_s = sqlgate.DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s
    with backend.session():
        database = str(backend.query(queries.CURRENT_DATABASE)[0]["database"])
        admitted = sqlgate.admit(sql, sqlgate.warehouse_tables(), database)
        rows = backend.query(sqlgate.limited(admitted, row_limit + 1, timeout_s), max_bytes=sqlgate.MAX_ANSWER_BYTES)
    return SqlResult(admitted.sql, rows[:row_limit], truncated=len(rows) > row_limit, row_limit=row_limit)


@dataclass(frozen=True)
class RunFilter:
    """What the runs list is narrowed to; an empty value does not filter. Times are UTC text."""

    tool: str = ""
    spec: str = ""
    profile: str = ""
    branch: str = ""
    environment: str = ""
    status: str = ""
    since: str = ""
    until: str = ""
    group: str = ""  # a group id or its prefix: one invocation's runs
    fingerprint: str = ""  # a fingerprint or its prefix: one history of comparable runs


@dataclass
class SqlResult:
    """An ad-hoc query's answer: the SQL that ran, its rows (at most `row_limit`) and whether more were cut."""

    sql: str
    rows: list[dict[str, Any]]
    truncated: bool
    row_limit: int

    @property
    def columns(self) -> list[str]:
        return list(self.rows[0]) if self.rows else []


@dataclass
class SummaryResult:
    run_id: str
    path: str
    tool: str
    duplicate: bool = False


@dataclass
class FileOutcome:
    """One file of an import: ingested as a run, already ingested, a summary kept, skipped or failed."""

    path: str
    index: int
    total: int
    status: str = "ingested"  # ingested | duplicate | summary | skipped | failed
    reason: str = ""
    run_id: str = ""
    duplicate: bool = False
    result: IngestResult | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return self.result.rejected if self.result else 0

    def to_dict(self) -> dict[str, Any]:
        base = self.result.to_dict() if self.result else {"run_id": self.run_id, "path": self.path,
                                                          "duplicate": self.duplicate}
        return {**base, "status": self.status, "reason": self.reason, "meta": self.meta}


def _summary_note(name: str, duplicate: bool) -> str:
    return f"k6 summary {name} {'already ' if duplicate else ''}kept with the run"


def _after_path(message: str, path: Path) -> str:
    """An error's message without the leading `path:` (the progress line names the file already)."""
    text = message.removeprefix(f"{path}:").lstrip()
    return re.sub(r"^\d+: ", "", text) if text != message else message


_DURATION = re.compile(r"(\d+)\s*([dw])")


def parse_retention(text: str) -> int | None:
    """`30d` or `4w` as days; `off`, `none` or `forever` as None (no TTL)."""
    value = text.strip().lower()
    if value in ("off", "none", "forever"):
        return None
    m = _DURATION.fullmatch(value)
    if not m:
        raise WarehouseError(f"retention {text!r}: expected days or weeks like 30d or 4w, or off")
    return int(m[1]) * (7 if m[2] == "w" else 1)
