"""Report formats: Markdown (with PNG charts beside it), one self-contained HTML file (inline SVG charts, no
script, no network), JSON and JUnit XML. Each is one function from a GroupReport to a Rendered document,
registered in FORMATS by name.

Long because the four renderings of the same report sections stand side by side: a section added to one format
is seen missing in the others.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from warehouse.analysis import junit
from warehouse.analysis.insight import step_name
from warehouse.analysis.slo import RATES
from warehouse.errors import WarehouseError
from warehouse.read.queries import CHECK_FAILURE, REQUEST_ERROR
from warehouse.read.records import Figures
from warehouse.report import charts
from warehouse.report.reports import (
    ABORTED,
    INCOMPLETE,
    NO_SLOS,
    GroupReport,
    Report,
    ReportOptions,
    build_group_report,
    ms,
)
from warehouse.report.text import markdown, shorten
from warehouse.store import Warehouse

INFRA_SERIES_CHARTED = 8


@dataclass
class Rendered:
    """A document's text and the files that go beside it (relative path → bytes)."""

    text: str
    files: dict[str, bytes] = field(default_factory=dict)


# -- what every visual format shows ---------------------------------------------------------------------

@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    chart: Any


def figures(report: Report) -> list[Figure]:
    """The charts of one run, in the order a report shows them."""
    out = []
    if report.timeline:
        out.append(Figure("latency", "Latency percentiles over time", charts.percentiles_chart(report.timeline)))
        out.append(Figure("throughput", "Throughput and errors over time", charts.throughput_chart(report.timeline)))
    if report.bottlenecks:
        out.append(Figure("bottlenecks", "Bottlenecks", charts.bottleneck_chart(report.bottlenecks)))
    series = report.infra.series
    if series and report.timeline:
        out.append(Figure("infrastructure", "Infrastructure and latency",
                          charts.infra_chart(report.timeline, series[:INFRA_SERIES_CHARTED])))
    if report.capacity:
        out.append(Figure("capacity", "Throughput against latency",
                          charts.capacity_chart(report.capacity.steps, report.capacity.knee)))
    return out + _tool_figure_charts(report)


def _tool_figure_charts(report: Report) -> list[Figure]:
    """The tool's own figures of the whole run per interval, when it reported several."""
    tool = report.tool_figures
    if tool is None or len(tool.timeline) < 2:
        return []
    points = tool.timeline
    out = []
    if any(p.p50_ms is not None or p.p95_ms is not None for p in tool.timeline):
        out.append(Figure("tool-latency", f"{tool.title}: percentiles over time", charts.percentiles_chart(points)))
    if any(p.rps is not None for p in tool.timeline):
        out.append(Figure("tool-throughput", f"{tool.title}: requests and failures per second",
                          charts.throughput_chart(points)))
    return out


def _pct(value: Any) -> str:
    return "–" if value is None else f"{float(value) * 100:.2f} %"


def _num(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"


def _observed(metric: str, value: float | None) -> str:
    if value is None:
        return "–"
    if metric in RATES:
        return f"{value * 100:.2f} %"
    if metric == "throughput":
        return f"{value:.2f}/s"
    return f"{value:.2f} ms"


def _slo_rows(report: Report) -> list[list[str]]:
    return [[v.slo, _observed(v.metric, v.observed), "pass" if v.passed else "FAIL"] for v in report.slos]


def _step_header(report: Report) -> list[str]:
    return ["journey", "step", "count", "request errors", "error %", "failed checks", "avg ms",
            *(f"{p} ms" for p in report.percentiles), "max ms", "req/s", "APDEX"]


def _step_rows(report: Report, text: Callable[[Any], str] = shorten) -> list[list[str]]:
    return [[text(s.journey), text(s.step), str(s.count), str(s.errors), _pct(s.error_rate),
             str(s.check_failures), ms(s.avg_ms),
             *(ms(s.percentile(p)) for p in report.percentiles), ms(s.max_ms), _num(s.throughput),
             _num(s.apdex, 3)] for s in report.steps]


def _bottleneck_rows(report: Report, text: Callable[[Any], str] = shorten) -> list[list[str]]:
    return [[str(i), text(b.name), _pct(b.time_share), _pct(b.error_share), _num(b.tail_ratio)]
            for i, b in enumerate(report.bottlenecks, start=1)]


SLOWEST_HEADER = ["time (UTC)", "step", "status", "ms", "trace"]
SLOWEST_SENTENCE = ("The slowest requests, each with the trace id it sent (a trace URL template comes from the spec's "
                    "trace.url or PERFHOUSE_TRACE_URL).")


def _slowest_rows(report: Report, text: Callable[[Any], str] = shorten) -> list[tuple[list[str], str, str]]:
    """(cells before the trace, trace id, trace URL) per slow sample."""
    return [([r.ts, text(step_name(r.journey, r.step)), str(r.status), ms(r.duration_ms)], r.trace_id, r.trace_url)
            for r in report.slowest]


def _md_link(text: str, url: str) -> str:
    if not url:
        return f"`{text}`"
    return f"[`{text}`](<{url.replace('<', '%3C').replace('>', '%3E')}>)"


def _status_rows(report: Report) -> list[list[str]]:
    total = sum(e.count for e in report.errors_by_status) or 1
    return [[str(e.status) if e.status else "no response", e.error or "–", str(e.count), _pct(e.count / total)]
            for e in report.errors_by_status]


CAUSE_HEADER = ["kind", "journey", "step", "status", "error or failed check", "count"]


def _cause_rows(report: Report, text: Callable[[Any], str] = shorten) -> list[list[str]]:
    return [[e.kind, text(e.journey), text(e.step), str(e.status), text(e.error) if e.error else "–", str(e.count)]
            for e in report.errors]


def _infra_rows(report: Report) -> list[list[str]]:
    return [[s.name, f"{s.peak:.4g}", _num(s.correlation), "yes" if s.correlated else "no"]
            for s in report.infra.series]


def _infra_sentences(report: Report) -> list[str]:
    infra = report.infra
    if not infra.series:
        return []
    out = []
    correlated = infra.correlated
    out.append("Correlated with latency (Pearson r ≥ 0.6 against P95 per bucket): "
               + (", ".join(f"`{n}`" for n in correlated) if correlated else "none") + ".")
    climb = infra.climb
    if climb is None:
        out.append("Latency did not climb: P95 stayed within 1.5x of its early level.")
    else:
        text = (f"Latency climbed at {climb.t} UTC: P95 {climb.p95_ms:.2f} ms, {climb.ratio:.1f}x its "
                f"early level of {climb.early_p95_ms:.2f} ms.")
        saturated = infra.saturated
        if saturated:
            text += (f" Saturated then: `{saturated.series}` at {saturated.value:.4g} "
                     f"({saturated.share_of_peak * 100:.0f} % of its peak in the run).")
        else:
            text += " No correlated series was near its peak then."
        out.append(text)
    return out


def _capacity_rows(report: Report) -> list[list[str]]:
    cap = report.capacity
    if cap is None:
        return []
    return [[f"{s.level:g}", s.start[:19], str(s.count), _num(s.rps), ms(s.p50_ms), ms(s.p95_ms),
             ms(s.p99_ms), _pct(s.error_rate),
             ("knee" if s.level == cap.knee else "met") if s.met else
             "missed" + (": " + "; ".join(s.missed) if s.missed else "")]
            for s in cap.steps]


def _knee_sentence(report: Report) -> str:
    cap = report.capacity
    if cap is None:
        return ""
    knee = cap.knee
    if knee is None:
        return f"No step met the SLOs ({cap.criterion})."
    step = next(s for s in cap.steps if s.level == knee)
    top = max(s.level for s in cap.steps)
    tail = " (the highest step tested: the knee may lie beyond it)" if knee == top else ""
    return (f"Knee: {knee:g} VUs, {step.rps:.1f} requests/s at P95 {ms(step.p95_ms)} ms{tail}; "
            f"criterion: {cap.criterion}.")


_SUMMARY_HEADER = ["figure", "warehouse", "tool's summary", "difference"]
_SUMMARY_SENTENCE = ("The figures the tool printed at the end of the run, beside the warehouse's over the same "
                     "requests (percentiles exact over every sample in both).")


def _summary_rows(report: Report) -> list[list[str]]:
    def fmt(name: str, value: float) -> str:
        return str(int(value)) if name == "requests" else _pct(value) if "rate" in name else f"{value:.2f}"

    return [[f.figure, fmt(f.figure, f.warehouse), fmt(f.figure, f.theirs),
             fmt(f.figure, f.difference) if "rate" not in f.figure else f"{f.difference * 100:+.2f} points"]
            for f in report.tool_summary]


def _throughput(t: Figures) -> str:
    """The rate and what it divides by: the tools' own summaries divide by other times (k6's by the test's
    duration, start-up and graceful stop included; JMeter's summariser by its samples' span to the last one's end)."""
    if not t.count:
        return f"Throughput {_num(t.throughput)} requests/s"
    return (f"Throughput {_num(t.throughput)} requests/s over the requests' span ({_num(t.span_s)} s, "
            "first to last request; a tool's own summary divides by its test's duration)")


def _run_facts(report: Report, text: Callable[[Any], str] = shorten) -> list[str]:
    run, t = report.run, report.totals
    return [
        f"Run `{run.run_id}` · {text(run.tool)} {text(run.tool_version or '')}".rstrip() + f" · status {run.status}",
        f"Spec: {text(run.spec_name or '–')}, profile {text(run.profile or '–')}"
        + (f", environment {text(run.environment)}" if run.environment else ""),
        f"Window: {run.started_at} → {run.ended_at or '–'} (UTC)",
        f"Requests: {t.count}, request errors: {t.errors} ({_pct(t.error_rate)}), "
        f"with a failed check: {t.check_failures} ({_pct(t.check_failure_rate)}); "
        f"checks failed {t.checks_failed} of {t.checks_total}",
        f"error_rate counts {REQUEST_ERROR.meaning}; check_failure_rate counts {CHECK_FAILURE.meaning}",
        _throughput(t) + f", APDEX {_num(t.apdex, 3)}" + (f" (T = {report.apdex.t_ms:g} ms)" if report.apdex else ""),
        "Latency ms: " + ", ".join(f"{p} {ms(t.percentile(p))}" for p in report.percentiles)
        + f", max {ms(t.max_ms)}",
    ]


def _side_by_side(doc: GroupReport) -> tuple[list[str], list[list[str]]]:
    header = ["tool", "run", "verdict", "requests", "error %", "req/s", "p50 ms", "p95 ms", "p99 ms"]
    rows = [[r.run.tool, r.run.run_id, r.verdict, str(r.totals.count), _pct(r.totals.error_rate),
             _num(r.totals.throughput), ms(r.totals.p50_ms), ms(r.totals.p95_ms), ms(r.totals.p99_ms)]
            for r in doc.runs]
    return header, rows


@dataclass(frozen=True)
class ComparisonSection:
    title: str
    headline: str  # with Markdown's ** and ` marks
    header: list[str]
    rows: list[list[str]]
    reasons: list[tuple[str, str]]  # (step, why)
    notes: list[str]


def _change(figure: dict[str, float | None], pct: bool = False) -> str:
    def fmt(v: float | None) -> str:
        return "–" if v is None else (f"{v * 100:.2f} %" if pct else f"{v:.2f}")

    change = figure.get("change")
    return f"{fmt(figure.get('baseline'))} → {fmt(figure.get('current'))}" + (
        "" if change is None else f" ({change * 100:+.1f} %)")


def _comparison_section(doc: GroupReport) -> ComparisonSection | None:
    """The comparison of the document (a group's tools against each other) or of its one run (against the
    baseline); a comparison without a baseline run is its one-line note."""
    c = next((c for c in (doc.comparison, *(r.comparison for r in doc.runs)) if c is not None), None)
    if c is None:
        return None
    group = c.how == "group"
    title = "Between the tools" if group else "Against the baseline"
    if not c.baseline_run:
        return ComparisonSection(title, " ".join(c.notes), [], [], [], [])
    if group:
        headline = (f"{c.current_tool} `{c.current_run}` against {c.baseline_tool} `{c.baseline_run}` "
                    f"of the same invocation: **{c.verdict}**")
    else:
        headline = f"Against baseline `{c.baseline_run}` ({c.how}): **{c.verdict}**"
    a, b = (c.baseline_tool, c.current_tool) if group else ("baseline", "this run")
    header = ["step", f"requests ({a} → {b})", "p50 ms", "p95 ms", "p99 ms", "error rate", "req/s", "verdict"]
    rows, reasons = [], []
    for r in c.rows:
        f = r.figures
        rows.append([r.label, f"{r.count_baseline} → {r.count_current}", _change(f["p50_ms"]), _change(f["p95_ms"]),
                     _change(f["p99_ms"]), _change(f["error_rate"], pct=True), _change(f["rps"]), r.verdict])
        noise = (f"history of {r.noise_runs} runs moves p95 by {r.noise_sigma * 100:.1f} % (1σ)"
                 if r.noise_sigma is not None else "")
        reasons.append((r.label, f"{r.verdict}: {r.reason}" + (f"; {noise}" if noise else "")))
    return ComparisonSection(title, headline, header, rows, reasons, list(c.notes))


# -- a tool's own figures (interval aggregates: Locust's --csv statistics, JMeter's backend listener) -------

def _tool_figures_header(report: Report) -> list[str]:
    return ["journey", "step", "count", "failures", "failure %", "avg ms", "min ms",
            *(f"{p} ms" for p in report.percentiles), "max ms", "req/s"]


def _tool_figures_rows(report: Report, text: Callable[[Any], str] = shorten) -> list[list[str]]:
    figures = report.tool_figures
    if figures is None:
        return []
    levels = [float(p.removeprefix("p")) for p in report.percentiles]
    rows = [*figures.steps, *([figures.overall] if figures.overall else [])]
    return [[text(s.journey), text(s.step if s is not figures.overall else f"{s.step} (overall)"), _count(s.count),
             _count(s.failures), _pct(s.failure_rate), ms(s.avg_ms), ms(s.min_ms),
             *(ms(s.percentile(level)) for level in levels), ms(s.max_ms), _num(s.rps)] for s in rows]


def _count(value: int | None) -> str:
    return "–" if value is None else str(value)


def _tool_figures_sentences(report: Report) -> list[str]:
    """What the figures are; for a run without requests, that they are all it holds."""
    figures = report.tool_figures
    if figures is None:
        return []
    out = [figures.how]
    if len(figures.timeline) > 1:
        out.append(f"{figures.tool_name} reported the whole run over {len(figures.timeline)} intervals "
                   "(the JSON report's tool_figures.timeline).")
    return out


def _no_requests_sentence(report: Report) -> str:
    figures = report.tool_figures
    tool = figures.tool_name if figures is not None else report.run.tool
    return (f"No requests: this run holds {tool}'s own figures (interval aggregates), not one row per request, "
            "so its percentiles, APDEX and SLOs cannot be computed here; see below.")


def _shows_steps(report: Report) -> bool:
    """The per-request steps table, unless the run holds only the tool's own figures."""
    return bool(report.steps) or report.tool_figures is None


# -- Markdown ---------------------------------------------------------------------------------------------

def _md_cell(text: Any) -> str:
    """A table cell: a pipe not escaped yet is escaped (text from `markdown` has its pipes escaped already)."""
    return _BARE_PIPE.sub(lambda m: m[1] + "\\|", str(text)).replace("\n", " ")


_BARE_PIPE = re.compile(r"(?<!\\)((?:\\\\)*)\|")


def _md_table(header: list[str], rows: list[list[str]], numeric_from: int = 2, text_from: int = 99) -> list[str]:
    align = ["---" if i < numeric_from or i >= text_from else "---:" for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
    return [*out, ""]


def render_markdown(doc: GroupReport, output: PurePosixPath | None = None) -> Rendered:
    """Markdown; with an output path, the charts as PNG files in `<stem>_files/` beside it."""
    assets = f"{output.stem}_files" if output is not None else None
    files: dict[str, bytes] = {}
    single = len(doc.runs) == 1
    lines = [f"# Load test report: {markdown(doc.title)}", "", f"**Verdict: {doc.verdict}**", ""]
    if not single:
        lines += ["Runs of one invocation, side by side:", "", *_md_table(*_side_by_side(doc), numeric_from=3)]
    h = "##" if single else "###"
    for index, report in enumerate(doc.runs, start=1):
        if not single:
            lines += [f"## {report.run.tool} · `{report.run.run_id}`: {report.verdict}", ""]
        lines += [f"- {_md_cell(f)}" for f in _run_facts(report, markdown)] + [""]
        lines += [f"{h} SLOs", ""]
        lines += (_md_table(["SLO", "observed", "verdict"], _slo_rows(report), numeric_from=1, text_from=2)
                  if report.slos else ["No SLOs were defined for this run.", ""])
        chart_for = {f.key: f for f in figures(report)}

        def picture(key: str, number: int = index, chart_for: dict[str, Figure] = chart_for) -> list[str]:
            figure = chart_for.get(key)
            if figure is None or assets is None:
                return []
            name = f"{assets}/{key}.png" if single else f"{assets}/run{number}-{key}.png"
            try:
                files[name] = charts.to_png(figure.chart)
            except charts.ChartError as exc:
                return [f"_{figure.title}: not drawn ({exc})._", ""]
            return [f"![{figure.title}]({name})", ""]

        if report.timeline:
            lines += [f"{h} Over time", "", f"Buckets of {report.bucket_s} s.", ""]
            lines += picture("latency") + picture("throughput")
        if _shows_steps(report):
            lines += [f"{h} Steps", "", *_md_table(_step_header(report), _step_rows(report, markdown))]
        else:
            lines += [f"{h} Steps", "", _no_requests_sentence(report), ""]
        if report.tool_figures is not None:
            lines += [f"{h} {report.tool_figures.title}", "", *[x for t in _tool_figures_sentences(report)
                                                                for x in (_md_cell(t), "")]]
            lines += _md_table(_tool_figures_header(report), _tool_figures_rows(report, markdown))
            lines += picture("tool-latency") + picture("tool-throughput")
        if report.bottlenecks:
            lines += [f"{h} Bottlenecks", "", "Ranked by impact: share of all request time plus share of all "
                      "failed requests; p99/p50 is the tail ratio.", ""]
            lines += _md_table(["rank", "step", "time share", "error share", "p99/p50"], _bottleneck_rows(report, markdown))
            lines += picture("bottlenecks")
        if report.errors_by_status:
            lines += [f"{h} Errors by status and message", ""]
            lines += _md_table(["status", "message", "count", "share"], _status_rows(report), numeric_from=2)
            lines += [f"{h} Errors by step and cause", ""]
            lines += _md_table(CAUSE_HEADER, _cause_rows(report, markdown), numeric_from=3,
                                text_from=4)
        if report.slowest:
            lines += [f"{h} Slowest samples", "", SLOWEST_SENTENCE, ""]
            lines += _md_table(SLOWEST_HEADER, [[*cells, _md_link(tid, url)] for cells, tid, url in _slowest_rows(report, markdown)],
                               numeric_from=2, text_from=4)
        if report.infra.series:
            lines += [f"{h} Infrastructure", "", *[s for x in _infra_sentences(report) for s in (x, "")]]
            lines += picture("infrastructure")
            lines += _md_table(["series", "peak", "r with P95", "correlated"], _infra_rows(report), numeric_from=1,
                                text_from=3)
        if report.tool_summary:
            lines += [f"{h} {report.run.tool}'s own summary", "", _SUMMARY_SENTENCE, ""]
            lines += _md_table(_SUMMARY_HEADER, _summary_rows(report), numeric_from=1)
        if report.capacity:
            lines += [f"{h} Capacity", "", _knee_sentence(report), ""]
            lines += _md_table(["VUs", "from (UTC)", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors",
                                "SLOs"], _capacity_rows(report), numeric_from=0, text_from=8)
            lines += picture("capacity")
    section = _comparison_section(doc)
    if section is not None:
        lines += [f"## {section.title}", "", _md_cell(section.headline), ""]
        if section.rows:
            lines += _md_table(section.header, [[markdown(r[0]), *r[1:]] for r in section.rows], numeric_from=1,
                               text_from=7)
            lines += [f"- **{markdown(step)}**: {_md_cell(why)}" for step, why in section.reasons] + [""]
            if section.notes:
                lines += ["Notes:", "", *(f"- {_md_cell(n)}" for n in section.notes), ""]
    return Rendered("\n".join(lines).rstrip("\n") + "\n", files)


# -- HTML -------------------------------------------------------------------------------------------------

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1.2em; } th, td { padding: .25em .6em; border-bottom: 1px solid #ddd; }
th { text-align: left; background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { display: inline-block; padding: .2em .7em; border-radius: 4px; color: #fff; font-weight: bold; }
.PASSED { background: #2b8a3e; } .FAILED { background: #c92a2a; } .ABORTED, .INCOMPLETE { background: #e67700; }
.NO-SLOS { background: #868e96; } .fail { color: #c92a2a; font-weight: bold; }
figure.chart { margin: 1em 0; } figure.chart svg { max-width: 100%; height: auto; }
"""


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _html_table(header: list[str], rows: list[list[str]], numeric_from: int = 2, text_from: int = 99) -> str:
    head = "".join(f"<th>{_h(c)}</th>" for c in header)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="{"n" if numeric_from <= i < text_from else ""}{" fail" if c == "FAIL" else ""}">{_h(c)}</td>'
            for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n"


def _slowest_html(report: Report) -> str:
    head = "".join(f"<th>{_h(c)}</th>" for c in SLOWEST_HEADER)
    body = ""
    for cells, trace_id, url in _slowest_rows(report):
        trace = f'<a href="{_h(url)}"><code>{_h(trace_id)}</code></a>' if url else f"<code>{_h(trace_id)}</code>"
        body += ("<tr>" + "".join(f'<td class="{"n" if i >= 2 else ""}">{_h(c)}</td>' for i, c in enumerate(cells))
                 + f"<td>{trace}</td></tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n"


def _badge(verdict: str) -> str:
    return f'<span class="verdict {verdict.replace(" ", "-")}">{_h(verdict)}</span>'


def render_html(doc: GroupReport, output: PurePosixPath | None = None) -> Rendered:
    """One HTML file that needs nothing else: styles inline, charts as inline SVG, no script, no link."""
    single = len(doc.runs) == 1
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>Load test report: {_h(doc.title)}</title><style>{_CSS}</style></head><body>\n",
             f"<h1>Load test report: {_h(doc.title)}</h1>\n<p>Verdict: {_badge(doc.verdict)}</p>\n"]
    if not single:
        parts.append("<p>Runs of one invocation, side by side:</p>" + _html_table(*_side_by_side(doc), numeric_from=3))
    h = "h2" if single else "h3"
    for index, report in enumerate(doc.runs, start=1):
        if not single:
            parts.append(f"<h2>{_h(report.run.tool)} · {_h(report.run.run_id)} {_badge(report.verdict)}</h2>\n")
        parts.append("<ul>" + "".join(f"<li>{_h(f.replace('`', ''))}</li>" for f in _run_facts(report)) + "</ul>\n")
        parts.append(f"<{h}>SLOs</{h}>\n")
        parts.append(_html_table(["SLO", "observed", "verdict"], _slo_rows(report), numeric_from=1, text_from=2)
                     if report.slos else "<p>No SLOs were defined for this run.</p>\n")
        chart_for = {f.key: f for f in figures(report)}

        def picture(key: str, number: int = index, chart_for: dict[str, Figure] = chart_for) -> str:
            figure = chart_for.get(key)
            if figure is None:
                return ""
            try:
                svg = charts.to_svg(figure.chart, f"r{number}-{key}")
            except charts.ChartError as exc:
                return f"<p><i>{_h(figure.title)}: not drawn ({_h(exc)}).</i></p>\n"
            return f'<figure class="chart" data-chart="{key}">{svg}<figcaption>{_h(figure.title)}</figcaption></figure>\n'

        if report.timeline:
            parts.append(f"<{h}>Over time</{h}>\n<p>Buckets of {report.bucket_s} s.</p>\n")
            parts.append(picture("latency") + picture("throughput"))
        if _shows_steps(report):
            parts.append(f"<{h}>Steps</{h}>\n" + _html_table(_step_header(report), _step_rows(report)))
        else:
            parts.append(f"<{h}>Steps</{h}>\n<p>{_h(_no_requests_sentence(report))}</p>\n")
        if report.tool_figures is not None:
            parts.append(f"<{h}>{_h(report.tool_figures.title)}</{h}>\n"
                         + "".join(f"<p>{_h(t)}</p>\n" for t in _tool_figures_sentences(report))
                         + _html_table(_tool_figures_header(report), _tool_figures_rows(report))
                         + picture("tool-latency") + picture("tool-throughput"))
        if report.bottlenecks:
            parts.append(f"<{h}>Bottlenecks</{h}>\n<p>Ranked by impact: share of all request time plus share of "
                         "all failed requests; p99/p50 is the tail ratio.</p>\n")
            parts.append(_html_table(["rank", "step", "time share", "error share", "p99/p50"],
                                     _bottleneck_rows(report)) + picture("bottlenecks"))
        if report.errors_by_status:
            parts.append(f"<{h}>Errors by status and message</{h}>\n"
                         + _html_table(["status", "message", "count", "share"], _status_rows(report)))
            parts.append(f"<{h}>Errors by step and cause</{h}>\n"
                         + _html_table(CAUSE_HEADER, _cause_rows(report)))
        if report.slowest:
            parts.append(f"<{h}>Slowest samples</{h}>\n<p>{_h(SLOWEST_SENTENCE)}</p>\n" + _slowest_html(report))
        if report.infra.series:
            parts.append(f"<{h}>Infrastructure</{h}>\n"
                         + "".join(f"<p>{_h(s.replace('`', ''))}</p>\n" for s in _infra_sentences(report)))
            parts.append(picture("infrastructure") + _html_table(["series", "peak", "r with P95", "correlated"],
                                                                 _infra_rows(report), numeric_from=1))
        if report.tool_summary:
            parts.append(f"<{h}>{_h(report.run.tool)}'s own summary</{h}>\n<p>{_h(_SUMMARY_SENTENCE)}</p>\n"
                         + _html_table(_SUMMARY_HEADER, _summary_rows(report), numeric_from=1))
        if report.capacity:
            parts.append(f"<{h}>Capacity</{h}>\n<p>{_h(_knee_sentence(report))}</p>\n")
            parts.append(_html_table(["VUs", "from (UTC)", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms",
                                      "errors", "SLOs"], _capacity_rows(report), numeric_from=0, text_from=8))
            parts.append(picture("capacity"))
    section = _comparison_section(doc)
    if section is not None:
        parts.append(f"<h2>{_h(section.title)}</h2>\n"
                     f"<p>{_h(section.headline.replace('**', '').replace('`', ''))}</p>\n")
        if section.rows:
            parts.append(_html_table(section.header, section.rows, numeric_from=1, text_from=7))
            parts.append("<ul>" + "".join(f"<li><b>{_h(step)}</b>: {_h(why)}</li>" for step, why in section.reasons)
                         + "</ul>\n")
            parts.append("".join(f"<p>Note: {_h(n)}</p>\n" for n in section.notes))
    parts.append("</body></html>\n")
    return Rendered("".join(parts))


# -- JSON and JUnit -----------------------------------------------------------------------------------------

def _rounded(value: Any) -> Any:
    """Floats to 6 decimals: the figures read the same whichever backend computed them."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def render_json(doc: GroupReport, output: PurePosixPath | None = None) -> Rendered:
    return Rendered(json.dumps(_rounded(doc.to_dict()), indent=2, default=str) + "\n")


def junit_suites(doc: GroupReport) -> list[junit.Suite]:
    """A testsuite per run and a testcase per SLO: failed on a breach; errored when the run was aborted or is
    incomplete (partial data is never a pass); one skipped case when the run has no SLOs."""
    suites = []
    for report in doc.runs:
        run, verdict = report.run, report.verdict
        span = float(report.totals.span_s or 0) if report.totals.count else 0.0
        cases = []
        for v in report.slos:
            details = f"observed {_observed(v.metric, v.observed)}, threshold {_observed(v.metric, v.threshold)}"
            if verdict in (ABORTED, INCOMPLETE):
                cases.append(junit.Case(v.slo, f"perfhouse.slo.{v.scope}", error=f"run {verdict.lower()} "
                                        f"(status {run.status}): not judged", details=details))
            else:
                cases.append(junit.Case(v.slo, f"perfhouse.slo.{v.scope}", details=details,
                                        failure=None if v.passed else f"SLO breached: {details}"))
        if not cases:
            if verdict in (ABORTED, INCOMPLETE):
                cases.append(junit.Case("run", "perfhouse.run", error=f"run {verdict.lower()} (status {run.status})"))
            else:
                cases.append(junit.Case("SLOs", "perfhouse.slo", skipped=f"{NO_SLOS}: none defined for this run"
                                        + _tool_figures_skip(report)))
        suites.append(junit.Suite(
            f"perfhouse {run.tool} {run.run_id}", tuple(cases), run.started_at.replace(" ", "T"), span,
            (("run_id", run.run_id), ("tool", run.tool), ("status", run.status),
             ("verdict", verdict)),
        ))
    return suites


def _tool_figures_skip(report: Report) -> str:
    if report.tool_figures is None or report.totals.count:
        return ""
    return (f"; it holds {report.tool_figures.tool_name}'s own figures (interval aggregates), not the requests "
            "SLOs judge")


def render_junit(doc: GroupReport, output: PurePosixPath | None = None) -> Rendered:
    return Rendered(junit.write(junit_suites(doc)))


def report(warehouse: Warehouse, run_ids: list[str], fmt: str, options: ReportOptions | None = None,
           output: PurePosixPath | None = None) -> Rendered:
    """Build the report of `run_ids` and render it as `fmt`; charts start rendering while the queries run."""
    if fmt not in FORMATS:
        raise WarehouseError(f"unknown report format {fmt!r}; perfhouse writes {', '.join(FORMATS)}")
    warming = charts.warm_up() if fmt in CHARTED else None
    doc = build_group_report(warehouse, run_ids, options)
    if warming is not None:
        warming.join()
    return FORMATS[fmt](doc, output)


CHARTED = ("md", "html")
FORMATS: dict[str, Callable[[GroupReport, PurePosixPath | None], Rendered]] = {
    "md": render_markdown,
    "html": render_html,
    "json": render_json,
    "junit": render_junit,
}
