"""Run reports: one data object built from warehouse queries, rendered by the formats in report_formats.

`build_report` gives a run's headline figures (what the dashboard's run page shows); `build_group_report`
gives everything a signed-off report holds for one run or a group of runs (the k6 and JMeter runs of one
invocation, side by side): the verdict per SLO, percentiles at any level, the run over time, bottlenecks,
errors by cause and by status, APDEX, infrastructure series against latency, the knee of a stepped profile,
and, when one is attached, the comparison against a baseline.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from warehouse import tools
from warehouse.analysis import compare, insight, slo
from warehouse.analysis.baseline import optional_baseline
from warehouse.analysis.slo import Objective, Verdict, percentile_level
from warehouse.analysis.verdict import RunVerdict, group_verdict, run_verdict, verdict_of
from warehouse.errors import DataError, WarehouseError
from warehouse.read import queries
from warehouse.read.records import (
    Apdex,
    Bottleneck,
    Capacity,
    ErrorCause,
    Figures,
    Infra,
    InfraPoint,
    InfraSeries,
    LoadLevel,
    LoadStep,
    ReportBucket,
    ReportInfraMean,
    ReportStepRow,
    ReportTotalsRow,
    ReportWindow,
    Row,
    RunRecord,
    Saturation,
    SlowSample,
    StatusErrors,
    StepApdex,
    SummaryFigure,
    TimelinePoint,
)
from warehouse.report import traces
from warehouse.report.charts import bucket_seconds
from warehouse.report.tool_figures import ToolFigures, tool_figures
from warehouse.store import Warehouse

# A run's verdict (warehouse.analysis.verdict): what happened, not only whether SLOs held. ABORTED runs
# (interrupted) and INCOMPLETE runs (a tool failed midway, or the run is still going) never pass.
PASSED, FAILED, NO_SLOS = RunVerdict.PASSED, RunVerdict.FAILED, RunVerdict.NO_SLOS
ABORTED, INCOMPLETE = RunVerdict.ABORTED, RunVerdict.INCOMPLETE
__all__ = ["ABORTED", "FAILED", "INCOMPLETE", "NO_SLOS", "PASSED", "group_verdict", "run_verdict", "verdict_of"]

DEFAULT_PERCENTILES = (50.0, 90.0, 95.0, 99.0)
MAX_PERCENTILES = queries.LEVEL_SLOTS - len(DEFAULT_PERCENTILES)
SLOWEST = 10  # traced samples a report lists


def percentile_label(level: float) -> str:
    """`p50`, `p75`, `p99.9` for a percentile given in percent."""
    return f"p{level:g}"


def parse_percentiles(text: str) -> tuple[float, ...]:
    """`50,75,95,99,99.9` as percent levels; each above 0 and below 100, at most MAX_PERCENTILES."""
    levels = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            value = float(part.removeprefix("p"))
        except ValueError:
            raise WarehouseError(f"--percentiles: {part!r} is not a number (expected e.g. 50,75,95,99,99.9)") from None
        if not 0 < value < 100:
            raise WarehouseError(f"--percentiles: {part} is not between 0 and 100 (exclusive)")
        if value not in levels:
            levels.append(value)
    if not levels:
        raise WarehouseError("--percentiles: give at least one level, e.g. 50,95,99")
    if len(levels) > MAX_PERCENTILES:
        raise WarehouseError(f"--percentiles: at most {MAX_PERCENTILES} levels, found {len(levels)}")
    return tuple(levels)


@dataclass(frozen=True)
class ReportOptions:
    percentiles: tuple[float, ...] = DEFAULT_PERCENTILES  # the per-step table's columns, in percent
    apdex_t_ms: float = 500.0  # APDEX threshold T: satisfied up to T, tolerating up to 4T
    # a run, `auto`, `pinned` or `none` (NO_BASELINE); None: the pinned baseline, else the automatic one
    baseline: str | None = None

    def levels(self) -> list[float]:
        """The levels the queries compute (the table's and the default ones), in slot order."""
        chosen = sorted(set(self.percentiles) | set(DEFAULT_PERCENTILES))
        return chosen + [chosen[-1]] * (queries.LEVEL_SLOTS - len(chosen))

    def params(self) -> dict[str, Any]:
        return {f"q{i}": q / 100 for i, q in enumerate(self.levels(), start=1)} | {"apdex_ms": self.apdex_t_ms}


COMPARED = ("p50_ms", "p95_ms", "p99_ms", "error_rate", "rps")  # the figures a comparison row holds
NO_BASELINE = "none"  # ReportOptions.baseline: leave the comparison out


@dataclass
class ComparisonRow:
    """One step (journey and step empty: overall) against the baseline: its figures in both runs and the
    verdict of the regression analysis (BETTER, SAME, WORSE, INCONCLUSIVE) with its reason."""

    journey: str
    step: str
    verdict: str
    reason: str = ""
    count_baseline: int = 0
    count_current: int = 0
    # each of COMPARED → {"baseline", "current", "change"}; change is relative (current / baseline - 1)
    figures: dict[str, dict[str, float | None]] = field(default_factory=dict)
    floor: float | None = None  # the relative p95 change that matters for this step
    noise_sigma: float | None = None  # run-to-run spread of ln p95 over the history (None: too short)
    noise_runs: int = 0

    @property
    def label(self) -> str:
        return f"{self.journey}/{self.step}" if self.journey or self.step else "overall"


@dataclass
class Comparison(Row):
    """The changes against a baseline run (or, in a group's report, of one tool's run against the other's), as
    the regression analysis decided them; without `baseline_run`, the notes say why there is none."""

    baseline_run: str
    verdict: str
    rows: list[ComparisonRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    how: str = ""  # how the baseline was chosen: named | pinned | auto | group
    baseline_tool: str = ""
    current_run: str = ""
    current_tool: str = ""


def comparison_of(result: compare.Comparison) -> Comparison:
    """A report's comparison section from the analysis' comparison (the baseline is its run A)."""
    rows = []
    for s in [*result.steps, result.overall]:
        deltas = s.deltas()
        rows.append(ComparisonRow(
            s.journey, s.step, str(s.verdict), s.reason, s.a.count if s.a else 0, s.b.count if s.b else 0,
            {k: {"baseline": deltas[k].a, "current": deltas[k].b, "change": deltas[k].relative}
             for k in COMPARED},
            s.floor, s.noise.sigma, s.noise.runs))
    notes = list(result.notes)
    if result.thin:
        notes.insert(0, "Not judged for too few requests: " + "; ".join(
            f"{s.label} ({s.fewest} requests, needs "
            f"{s.needs} in each run)" for s in result.thin))
    return Comparison(result.a.run_id, str(result.verdict), rows, notes, result.how,
                      result.a.tool, result.b.run_id, result.b.tool)


def baseline_comparison(warehouse: Warehouse, run_id: str, choice: str | None = None) -> Comparison:
    """The run against its baseline (`choice` as compare and gate take it); when none exists yet, an empty
    comparison whose note says why. A named or pinned baseline that cannot be found is an error."""
    chosen, why = optional_baseline(warehouse, run_id, choice)
    if chosen is None:
        return Comparison("", "", notes=[f"No baseline: {why}"])
    with warehouse.backend.session():
        result = compare.compare_runs(warehouse.backend, warehouse.run(chosen.run_id), warehouse.run(run_id),
                                      chosen.how)
    return comparison_of(result)


def figures_only_comparison(report: Report) -> Comparison | None:
    """For a run that holds only its tool's own figures (interval aggregates), the note that no comparison can be
    made: compare tests request samples; None for a run with requests."""
    if report.tool_figures is None or report.totals.count:
        return None
    return Comparison("", "", notes=[f"No comparison: the run holds {report.tool_figures.tool_name}'s own figures "
                                     "(interval aggregates), not the request samples a comparison tests"])


def tool_comparison(warehouse: Warehouse, report: GroupReport) -> Comparison:
    """A group's runs against each other as `compare --group` sets them (k6 is run A)."""
    group_id = report.runs[0].run.group_id
    if not group_id:
        return Comparison("", "", notes=["No comparison: the runs share no group"])
    if len({r.run.tool for r in report.runs}) < 2:
        return Comparison("", "", notes=[f"No comparison between tools: the group's {len(report.runs)} runs are "
                                         "repeats of one tool (run --repeat); `perfhouse gate` judges them as one set"])
    return comparison_of(compare.compare(warehouse, group=group_id))


@dataclass
class Report:
    run: RunRecord
    totals: Figures
    steps: list[Figures]
    slos: list[Verdict]
    errors: list[ErrorCause] = field(default_factory=list)
    # Filled by build_run_report (a signed-off report); empty in the headline report of build_report.
    verdict: str = ""
    percentiles: list[str] = field(default_factory=list)
    bucket_s: int = 1
    timeline: list[TimelinePoint] = field(default_factory=list)
    bottlenecks: list[Bottleneck] = field(default_factory=list)
    errors_by_status: list[StatusErrors] = field(default_factory=list)
    apdex: Apdex | None = None
    infra: Infra = field(default_factory=Infra)
    capacity: Capacity | None = None
    comparison: Comparison | None = None
    tool_summary: list[SummaryFigure] = field(default_factory=list)  # the tool's own end-of-test figures beside ours
    slowest: list[SlowSample] = field(default_factory=list)  # the slowest traced requests, with trace links
    tool_figures: ToolFigures | None = None  # the tool's own figures kept as interval aggregates (Locust, JMeter)

    @property
    def passed(self) -> bool:
        """Whether the run's verdict is PASSED: an interrupted or unfinished run never passes."""
        return (self.verdict or run_verdict(self.run.status, self.slos)) == PASSED

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run": self.run.to_dict(),
            "verdict": self.verdict or run_verdict(self.run.status, self.slos),
            "totals": self.totals.to_dict(),
            "slos": [v.to_dict() for v in self.slos],
            "steps": [s.to_dict() for s in self.steps],
            "errors": [e.to_dict() for e in self.errors],
            # which failure each rate counts (the totals' and steps' errors and check_failures likewise)
            "rates": {f.name: f.meaning for f in queries.FAILURES},
            "passed": self.passed,
        }
        if self.verdict:
            out |= {
                "percentiles": self.percentiles,
                "bucket_s": self.bucket_s,
                "timeline": [p.to_dict() for p in self.timeline],
                "bottlenecks": [b.to_dict() for b in self.bottlenecks],
                "errors_by_status": [e.to_dict() for e in self.errors_by_status],
                "apdex": self.apdex.to_dict() if self.apdex else {},
                "infra": self.infra.to_dict(),
                "capacity": self.capacity.to_dict() if self.capacity else None,
                "comparison": self.comparison.to_dict() if self.comparison else None,
            }
            if self.tool_summary:
                out["tool_summary"] = [f.to_dict() for f in self.tool_summary]
        if self.slowest:
            out["slowest"] = [s.to_dict() for s in self.slowest]
        if self.tool_figures is not None:
            out["tool_figures"] = self.tool_figures.to_dict()
        return _finite(out)


@dataclass
class GroupReport:
    """The document a format renders: one run, or the runs of one invocation side by side."""

    runs: list[Report]
    options: ReportOptions = field(default_factory=ReportOptions)
    comparison: Comparison | None = None  # a comparison of the whole group against a baseline, if attached

    @property
    def verdict(self) -> str:
        return group_verdict([r.verdict for r in self.runs])

    @property
    def title(self) -> str:
        first = self.runs[0].run
        return first.name or first.run_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "runs": [r.to_dict() for r in self.runs],
            "options": {"percentiles": list(self.options.percentiles), "apdex_t_ms": self.options.apdex_t_ms},
            "comparison": self.comparison.to_dict() if self.comparison else None,
        }


def build_report(warehouse: Warehouse, run_id: str) -> Report:
    """A run's headline figures: the run, its totals and steps' figures as a signed-off report computes them at
    the default options (p50/p90/p95/p99, APDEX at 500 ms), SLO verdicts, errors by cause, the slowest traced
    samples."""
    with warehouse.backend.session():
        run = warehouse.run(run_id)
        totals, steps = report_figures(warehouse, run_id, ReportOptions())
        return Report(
            run=run,
            totals=totals,
            steps=steps,
            slos=slo.stored(warehouse.backend, run_id),
            errors=warehouse.errors(run_id),
            slowest=slowest_traced(warehouse, run),
            tool_figures=tool_figures(warehouse, run),
        )


def slowest_traced(warehouse: Warehouse, run: RunRecord, limit: int = SLOWEST) -> list[SlowSample]:
    """The run's slowest requests that carry a trace id (none without trace context), each with its trace's URL
    when the run's spec or PERFHOUSE_TRACE_URL gives a template ('' otherwise)."""
    template = traces.url_template(run.labels)
    rows = warehouse.backend.query(queries.SLOWEST_TRACED, {"run": run.run_id, "limit": limit})
    return [SlowSample.of(r, traces.trace_link(template, str(r["trace_id"]))) for r in rows]


def build_group_report(warehouse: Warehouse, run_ids: list[str], options: ReportOptions | None = None) -> GroupReport:
    """Everything a signed-off report holds, for each run of a group (one run is a group of one), with the
    comparison: one run against its baseline (options.baseline), a group's k6 run against its other tool's."""
    options = options or ReportOptions()
    with warehouse.backend.session():
        doc = GroupReport([build_run_report(warehouse, r, options) for r in run_ids], options)
        if options.baseline == NO_BASELINE:
            return doc
        if len(doc.runs) == 1:
            doc.runs[0].comparison = (figures_only_comparison(doc.runs[0])
                                      or baseline_comparison(warehouse, run_ids[0], options.baseline))
        elif options.baseline is not None and len({r.run.tool for r in doc.runs}) < 2:
            raise DataError(f"--baseline {options.baseline}: the group's runs are repeats of one tool (run --repeat); "
                            "`perfhouse gate` judges them as one set against the baseline, or report one run of it")
        elif options.baseline is not None:
            raise DataError(f"--baseline {options.baseline}: a group's report compares its tools' runs with each "
                            "other; report one run of it to compare against a baseline, or give --baseline none")
        else:
            doc.comparison = tool_comparison(warehouse, doc)
        return doc


def report_figures(warehouse: Warehouse, run_id: str, options: ReportOptions) -> tuple[Figures, list[Figures]]:
    """The run's totals and its steps' figures at the options' percentile levels and APDEX threshold."""
    backend, params = warehouse.backend, {"run": run_id, **options.params()}
    labels = [percentile_label(level) for level in options.levels()]
    row = ReportTotalsRow.of(backend.query(queries.REPORT_TOTALS, params)[0])
    totals = Figures.of(row, labels, float(row.span_s), _apdex(row))
    steps = [Figures.of(s, labels, float(row.span_s), _apdex(s))
             for s in (ReportStepRow.of(r) for r in backend.query(queries.REPORT_STEPS, params))]
    return totals, steps


def _apdex(row: ReportTotalsRow | ReportStepRow) -> float | None:
    return insight.apdex(int(row.satisfied), int(row.tolerating), int(row.count))


def build_run_report(warehouse: Warehouse, run_id: str, options: ReportOptions) -> Report:
    backend = warehouse.backend
    run = warehouse.run(run_id)
    slos = slo.stored(warehouse.backend, run_id)
    totals, steps = report_figures(warehouse, run_id, options)
    bucket = bucket_seconds(totals.span_s if totals.count else None)
    timeline = _timeline([ReportBucket.of(r) for r in backend.query(queries.REPORT_TIMELINE,
                                                                    {"run": run_id, "bucket": bucket})], bucket)
    report = Report(
        run=run,
        totals=totals,
        steps=steps,
        slos=slos,
        errors=warehouse.errors(run_id),
        verdict=run_verdict(run.status, slos),
        percentiles=[percentile_label(p) for p in options.percentiles],
        bucket_s=bucket,
        timeline=timeline,
        bottlenecks=insight.bottlenecks(steps),
        errors_by_status=[StatusErrors.of(r) for r in backend.query(queries.REPORT_ERRORS_BY_STATUS, {"run": run_id})],
        apdex=Apdex(options.apdex_t_ms, totals.apdex,
                    [StepApdex(insight.step_name(s.journey, s.step), s.apdex, s.count) for s in steps]),
        infra=_infra([ReportInfraMean.of(r) for r in backend.query(queries.REPORT_INFRA,
                                                                   {"run": run_id, "bucket": bucket})], timeline),
    )
    report.capacity = _capacity(warehouse, run_id, slos, bucket)
    report.slowest = slowest_traced(warehouse, run)
    report.tool_figures = tool_figures(warehouse, run)
    own = tools.get(run.tool)
    if own is not None and own.summary is not None:
        report.tool_summary = own.summary.figures(warehouse.tool_summary(run_id, own.summary.preferred), totals)
    return report


def _number(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def _timeline(rows: list[ReportBucket], bucket: int) -> list[TimelinePoint]:
    out = []
    for r in rows:
        p50, p90, p95, p99 = (_number(v) for v in r.levels)
        out.append(TimelinePoint(r.t, float(r.rps), int(r.errors), int(r.errors) / bucket, float(r.in_flight),
                                 p50, p90, p95, p99))
    return out


def _infra(rows: list[ReportInfraMean], timeline: list[TimelinePoint]) -> Infra:
    """Each scraped series on the latency's time axis, its correlation with P95, and what saturated."""
    several = len({r.source for r in rows}) > 1
    grouped: dict[tuple[str, str, str], list[tuple[str, float]]] = {}
    for r in rows:
        grouped.setdefault((r.source, r.metric, r.series_labels), []).append((r.t, float(r.mean)))
    p95 = {p.t: p.p95_ms for p in timeline if p.p95_ms is not None}
    # The run's first and last buckets (seconds in a short run) hold it only in part: their requests and a series'
    # samples may cover different parts of them (the last scrape, taken after the tool has closed its connections,
    # beside the last requests' P95), so a series is correlated with P95 over the buckets between.
    inner = set(sorted(p95)[1:-1])
    series: list[InfraSeries] = []
    for (source, metric, labels), points in grouped.items():
        counter = insight.is_counter(metric)
        if counter:
            points = insight.as_rate(points)
        if not points:
            continue
        paired = [(v, p95[t]) for t, v in points if t in inner]
        corr = insight.pearson([a for a, _ in paired], [b for _, b in paired])
        series.append(InfraSeries(
            insight.series_name(source, metric, labels, several) + (" (rate/s)" if counter else ""),
            source, metric, json.loads(labels), [InfraPoint(t, v) for t, v in points],
            max(v for _, v in points), corr, corr is not None and corr >= insight.CORRELATED,
        ))
    series.sort(key=lambda s: (-(s.correlation if s.correlation is not None else -2), s.name))
    climbed = insight.climb([(p.t, p.p95_ms) for p in timeline])
    saturated = None
    if climbed is not None:
        for s in series:
            if not s.correlated or not s.peak:
                continue
            at = insight.value_at([(p.t, p.value) for p in s.points], climbed.t)
            if at is not None and at / s.peak >= insight.SATURATED:
                saturated = Saturation(s.name, at, at / s.peak)
                break
    return Infra(series, [s.name for s in series if s.correlated], climbed, saturated)


def _capacity(warehouse: Warehouse, run_id: str, slos: list[Verdict], bucket: int) -> Capacity | None:
    """For a stepped profile: each step's figures and whether it met the SLOs; the knee."""
    backend = warehouse.backend
    levels = [(r.t, float(r.level)) for r in (LoadLevel.of(row) for row in
                                              backend.query(queries.REPORT_LOAD_LEVEL, {"run": run_id, "bucket": bucket}))]
    found = insight.plateaus(levels, bucket)
    if not insight.is_stepped(found):
        return None
    journeys = {str(r["journey"]) for r in backend.query(queries.REPORT_JOURNEYS, {"run": run_id})}
    objectives = [(v, objective_of(v, journeys)) for v in slos if v.metric != "throughput"]
    windows = [insight.window(p, bucket) for p in found]
    where = {"run": run_id, "bucket": bucket, **insight.bucket_parts(windows, bucket)}

    scopes = sorted({("", "", "")} | {(o.journey, o.step, o.service) for _, o in objectives})
    # per scope and step (its window's part): the window and its percentiles by level (None on no figure)
    observed: dict[tuple[str, str, str], dict[int, tuple[ReportWindow, dict[float, float | None]]]] = {}
    for journey, step, service in scopes:  # one query per scope: every level its objectives ask for at once
        wanted = sorted({0.5, 0.95, 0.99} | {o.level for _, o in objectives if (o.journey, o.step, o.service)
                                             == (journey, step, service)})
        wanted += [wanted[-1]] * (queries.LEVEL_SLOTS - len(wanted))
        rows = backend.query(queries.REPORT_WINDOWS, {**where, "journey": journey, "step": step, "service": service,
                                                      **{f"q{i}": q for i, q in enumerate(wanted, start=1)}})
        windows_of = (ReportWindow.of(r) for r in rows)
        observed[(journey, step, service)] = {
            w.part: (w, {q: _number(v) for q, v in zip(wanted, w.levels, strict=True)}) for w in windows_of}
    steps: list[LoadStep] = []
    for index, (p, (start, end)) in enumerate(zip(found, windows, strict=True), start=1):
        whole = observed[("", "", "")].get(index)
        count = int(whole[0].count) if whole else 0
        seconds = max((insight.parse_time(end) - insight.parse_time(start)).total_seconds(), 1.0)
        p50, p95, p99 = (whole[1][0.5], whole[1][0.95], whole[1][0.99]) if whole else (None, None, None)
        missed = []
        for verdict, o in objectives:
            got = observed[(o.journey, o.step, o.service)].get(index)
            value = None
            if got is not None:
                window, at = got
                value = at[o.level] if percentile_level(o.metric) is not None else _number(window.figure(o.metric))
            if value is None or not o.holds(value):
                missed.append(verdict.slo)
        steps.append(LoadStep(p.level, start, end, count, count / seconds,
                              int(whole[0].errors) / count if whole and count else None, p50, p95, p99, missed,
                              met=False))
    if objectives:
        criterion = "every SLO (throughput SLOs aside) held within the step"
        steps = [replace(s, met=bool(s.count) and not s.missed) for s in steps]
    else:
        lowest = min((s.p95_ms for s in steps if s.p95_ms is not None), default=None)
        criterion = "no SLOs: p95 within 2x the lowest step's p95"
        steps = [replace(s, met=lowest is not None and s.p95_ms is not None and s.p95_ms <= 2 * lowest)
                 for s in steps]
    return Capacity(steps, insight.knee([(s.level, s.met) for s in steps]), criterion)


def objective_of(verdict: Verdict, journeys: set[str]) -> Objective:
    """The objective a stored verdict observed, read back from its scope (`overall`, `service S`, `J/S @svc`,
    or a lone name: a journey when the run has a journey of that name, else a step)."""
    scope, service = verdict.scope, ""
    if scope.startswith("service "):
        return Objective(verdict.metric, verdict.threshold, service=scope.removeprefix("service "))
    if " @" in scope:
        scope, service = scope.rsplit(" @", 1)
    journey = step = ""
    if scope != "overall":
        if "/" in scope:
            journey, step = scope.split("/", 1)
        elif scope in journeys:
            journey = scope
        else:
            step = scope
    return Objective(verdict.metric, verdict.threshold, journey, step, service=service)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def ms(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{float(value):.2f}"
