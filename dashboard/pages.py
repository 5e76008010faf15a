"""The dashboard's pages, one registered function each: runs, one run, compare, trends, a live run and
read-only SQL.

Pages draw; they read only through `dashboard.data` (the Warehouse API) and shape rows with
`dashboard.tables` and `dashboard.charts`. A new page is one more `@page` function here.

Long because the pages stand side by side, each a function of layout only: what they read and how rows are shaped
lives in data, tables and charts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, data, rundir
from dashboard.nav import go, page, param, synced, to_url
from dashboard.tables import (
    ALL,
    VERDICTS,
    Headline,
    compare_frame,
    errors_table,
    ms,
    run_label,
    runs_frame,
    slo_frame,
    slowest_frame,
    steps_frame,
    tool_figures_frame,
    unless_all,
    verdict_style,
)
from warehouse.analysis.compare import Comparison
from warehouse.analysis.gate import RunGate
from warehouse.errors import WarehouseError
from warehouse.read.queries import REQUEST_ERROR
from warehouse.read.records import LatencyBucket, RunChoice, RunListRow, RunRecord, SlowSample
from warehouse.read.sqlgate import DEFAULT_ROW_LIMIT, DEFAULT_TIMEOUT_S, Refused
from warehouse.report.text import streamlit_markdown
from warehouse.report.tool_figures import ToolFigures
from warehouse.store import RunFilter

RUNS_LIMIT = 500
LIVE_REFRESH_S = float(os.environ.get("PERFHOUSE_LIVE_REFRESH_S", "3"))
_MS_COLUMNS = ("avg_ms", "min_ms", "max_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms")


def empty_warehouse(url: str) -> None:
    st.info(
        f"The warehouse `{url}` holds no runs yet.\n\n"
        f"Record some with `perfhouse --warehouse {url} demo`, or import a k6 or JMeter results file with "
        f"`perfhouse --warehouse {url} ingest FILE`; they show here at the next load."
    )


_FILTERS = (("spec", "Spec", "spec_name"), ("tool", "Tool", "tool"), ("profile", "Profile", "profile"),
            ("branch", "Branch", "branch"), ("environment", "Environment", "environment"),
            ("status", "Status", "status"))


@page("runs", "Runs")
def runs_page(url: str) -> None:
    st.title("Runs")
    version = data.version(url)
    known = data.facets(url, version)
    if not known.runs:
        empty_warehouse(url)
        return
    chosen: dict[str, str] = {}
    cells = [*st.columns(4), *st.columns(4)]
    for cell, (name, label, column) in zip(cells, _FILTERS, strict=False):
        chosen[name] = unless_all(cell.selectbox(label, [ALL, *known.values(column)], key=f"runs_{name}"))
    verdict = unless_all(cells[6].selectbox("Verdict", [ALL, *VERDICTS], key="runs_verdict"))
    group_col, fingerprint_col = st.columns(2)
    chosen["group"] = group_col.text_input("Group", value=param("group"), key="runs_group", placeholder="id or prefix",
                                           help="The runs of one invocation with several tools").strip()
    chosen["fingerprint"] = fingerprint_col.text_input(
        "Fingerprint", value=param("fingerprint"), key="runs_fingerprint", placeholder="id or prefix",
        help="One history of comparable runs: spec, journeys, profile, tool, environment and labels").strip()
    first, last = (pd.Timestamp(t).date() for t in (known.first_started, known.last_started))
    span = cells[7].date_input("Started (UTC)", value=[], min_value=min(first, last), max_value=max(first, last),
                               key="runs_started", format="YYYY-MM-DD")
    days = list(span) if isinstance(span, tuple | list) else [span] if span else []
    since = str(days[0]) if days else ""
    until = str(pd.Timestamp(days[-1]) + pd.Timedelta(days=1)) if days else ""
    rows = data.run_list(url, RunFilter(**chosen, since=since, until=until), RUNS_LIMIT, version)
    frame = runs_frame(rows)
    if verdict:
        frame = frame[frame["verdict"] == verdict].reset_index(drop=True)
    if frame.empty:
        st.info("No run matches these filters.")
        return
    st.caption(f"{len(frame)} runs, newest first (at most {RUNS_LIMIT} are listed). Select a row to open the run.")
    event = st.dataframe(
        frame.style.map(verdict_style, subset=["verdict"]), key="runs_table", hide_index=True, on_select="rerun",
        selection_mode="single-row",
        column_config={
            "run_id": st.column_config.TextColumn("run", width="medium"),
            "verdict": st.column_config.TextColumn("verdict", help=", ".join(VERDICTS)),
            "started_at": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "duration_s": st.column_config.NumberColumn("duration (s)", format="%.1f"),
            "requests": st.column_config.NumberColumn("requests", format="%d"),
            "errors": st.column_config.NumberColumn("errors", format="%d"),
            "spec_name": "spec",
            "group_id": st.column_config.TextColumn("group", width="small"),
            "fingerprint": st.column_config.TextColumn("fingerprint", width="small"),
        },
    )
    selected = event["selection"]["rows"]
    if selected:
        go("run", run=str(frame.iloc[selected[0]]["run_id"]))


@page("run", "Run detail")
def run_page(url: str) -> None:
    version = data.version(url)
    listed = data.run_choices(url, RUNS_LIMIT, version)
    if not listed:
        st.title("Run detail")
        empty_warehouse(url)
        return
    run_id = _chosen_run(url, listed, version)
    detail = data.run_detail(url, run_id, version)
    report = detail.report
    st.title(f"Run {streamlit_markdown(run_id)}")
    st.caption(_run_caption(report.run))

    head = Headline.of(report.totals, report.slos, report.run.status)
    _headline(head, report.totals.check_failures)
    _gate(data.gate(url, run_id, version))

    figures = report.tool_figures
    if not head.requests and figures is not None:
        st.info(f"This run holds {figures.tool_name}'s own figures (interval aggregates), not one row per request: "
                "its steps below are as the tool computed them.")
    elif not head.requests:
        st.info("This run holds no requests yet: a run that is starting, or an import that found none.")
    else:
        _over_time(run_id, detail.series, detail.bucket_s, charts.top_steps(report.steps))

    st.subheader("SLOs")
    if report.slos:
        st.dataframe(slo_frame(report.slos), hide_index=True,
                     column_config={"threshold": st.column_config.NumberColumn(format="%g"),
                                    "observed": st.column_config.NumberColumn(format="%.4g")})
    else:
        st.caption(head.slo_detail)

    if figures is not None:
        _tool_figures(figures)

    if head.requests:
        st.subheader("Steps")
        st.dataframe(steps_frame(report.steps), hide_index=True, column_config={
            **{c: st.column_config.NumberColumn(c.replace("_ms", " (ms)"), format="%.2f") for c in _MS_COLUMNS},
            "error_pct": st.column_config.NumberColumn("errors %", format="%.2f"),
        })
        st.subheader("Errors")
        if report.errors:
            chart_col, table_col = st.columns([3, 2])
            chart_col.altair_chart(charts.errors_chart(report.errors), width="stretch")
            table_col.dataframe(errors_table(report.errors), hide_index=True)
        else:
            st.caption("No failed requests.")
        if report.slowest:
            _slowest(report.slowest)
        _infrastructure(run_id, detail, charts.top_steps(report.steps))

    _files(url, run_id)
    with st.expander("Run record"):
        st.json({k: v for k, v in report.run.to_dict().items() if v not in ("", None, {})})


def _tool_figures(figures: ToolFigures) -> None:
    """The tool's own figures (Locust's --csv statistics, JMeter's backend listener), marked as the tool's."""
    st.subheader(figures.title)
    st.caption(figures.how)
    overall = figures.overall
    if overall is not None:
        cells = st.columns(3)
        cells[0].metric(f"Requests ({figures.tool_name})", "–" if overall.count is None else f"{overall.count:,}",
                        border=True)
        rate = overall.failure_rate
        cells[1].metric(f"Failures ({figures.tool_name})", "–" if overall.failures is None else f"{overall.failures:,}",
                        border=True, delta_arrow="off", delta=None if rate is None else f"{rate:.2%}",
                        delta_color="red" if overall.failures else "gray")
        cells[2].metric(f"p95 (ms, {figures.tool_name})", ms(overall.percentile(95)), border=True)
    st.dataframe(tool_figures_frame(figures), hide_index=True, column_config={
        **{c: st.column_config.NumberColumn(c.replace("_ms", " (ms)"), format="%.2f")
           for c in ("avg_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")},
        "failure_pct": st.column_config.NumberColumn("failures %", format="%.2f"),
        "rps": st.column_config.NumberColumn("req/s", format="%.2f"),
    })
    if len(figures.timeline) > 1 and any(p.p95_ms is not None for p in figures.timeline):
        st.altair_chart(charts.tool_timeline_chart(figures.timeline, figures.tool_name), width="stretch")


def _slowest(samples: list[SlowSample]) -> None:
    st.subheader("Slowest samples")
    frame = slowest_frame(samples)
    linked = bool(frame["trace_url"].astype(bool).any())
    st.caption("The slowest requests and the trace id each sent" + (", linked to its trace." if linked else
               ": set trace.url in the spec or PERFHOUSE_TRACE_URL (with {trace_id}) to link them to their traces."))
    if not linked:
        frame = frame.drop(columns=["trace_url"])
    st.dataframe(frame, hide_index=True, column_config={
        "duration_ms": st.column_config.NumberColumn("duration (ms)", format="%.2f"),
        "trace_url": st.column_config.LinkColumn("trace", display_text="open trace"),
    })


def _headline(head: Headline, checked: int) -> None:
    cells = st.columns([1, 1, 1, 1, 1.7])  # INCOMPLETE needs the room
    cells[0].metric("Requests", f"{head.requests:,}", border=True)
    cells[1].metric("Throughput (req/s)", "–" if head.rps is None else f"{head.rps:,.1f}", border=True)
    cells[2].metric("Request errors", f"{head.errors:,}", border=True, delta_arrow="off",
                    help=f"{REQUEST_ERROR.meaning}; {checked:,} requests had a failed check (check_failure_rate)",
                    delta=None if head.error_rate is None else f"{head.error_rate:.2%}",
                    delta_color="red" if head.errors else "gray")
    cells[3].metric("p95 latency (ms)", ms(head.p95_ms), border=True)
    cells[4].metric("Verdict", head.verdict, help=head.slo_detail, border=True, delta_arrow="off",
                    delta=f"SLOs: {head.slo_summary}" if head.slo_summary else None,
                    delta_color="green" if head.verdict == "PASSED" else "red" if head.slo_status == "FAIL"
                    else "gray")


def _gate(gated: RunGate | None) -> None:
    """The run's latest gate outcome, and for a set of repeats, that the set was judged as one."""
    if gated is None:
        st.caption("Not gated: `perfhouse gate RUN` judges a run against its history and baseline.")
        return
    o = gated.outcome
    against = f" against baseline `{streamlit_markdown(o.baseline_id)}`" if o.baseline_id else " (no baseline)"
    text = (f"Gate: **{o.outcome}** (exit status {o.exit_status}){against}, judged {o.judged_at[:19]} UTC; rows: "
            f"{o.worse} WORSE, {o.inconclusive} INCONCLUSIVE.")
    if gated.of_a_set:
        ids = ", ".join(f"`{streamlit_markdown(r)}`" for r in gated.judged_with)
        text += (f" Judged as one set of {len(gated.judged_with)} repeats ({ids}): the set's median against the "
                 "history; the outcome is the set's.")
    (st.error if o.exit_status else st.success)(text)


def _chosen_run(url: str, runs: Sequence[RunChoice | RunListRow], version: tuple[Any, ...],
                fallback: str = "latest") -> str:
    """The run named by `?run=` (an id, a unique prefix or `latest`), with a sidebar picker that updates it."""
    ref = param("run", fallback)
    try:
        run_id = data.resolve(url, ref, version)
    except WarehouseError as exc:
        st.warning(f"{exc}. Showing the latest run instead.")
        run_id = data.resolve(url, fallback, version)
    labels = {r.run_id: run_label(r) for r in runs}
    if run_id not in labels:
        labels = {run_id: run_id, **labels}
    synced("_run", run_id)
    st.sidebar.selectbox("Run", list(labels), key="_run", format_func=labels.__getitem__,
                         on_change=to_url("_run", "run"))
    return run_id


def _run_caption(run: RunRecord) -> str:
    tool = " ".join(v for v in (run.tool, run.tool_version) if v)
    spec = "/".join(v for v in (run.spec_name, run.profile) if v)
    when = f"{run.started_at or '?'} → {run.ended_at or 'running'} UTC"
    parts = [run.name, tool, spec and f"spec {spec}", run.status, when, run.environment]
    return " · ".join(streamlit_markdown(p) for p in parts if p)  # names are the user's text, not Markdown


def _over_time(run_id: str, series: list[LatencyBucket], bucket_s: int, top: list[str]) -> None:
    st.subheader("Over time")
    steps = sorted({charts.step_label(r.journey, r.step) for r in series})
    step_col, pct_col = st.columns([3, 1])
    default = [s for s in top if s in steps] or steps
    help_text = f"The {len(default)} steps that cost the most time are shown first." if len(default) < len(steps) \
        else None
    shown = step_col.multiselect("Steps", steps, default=default, key=f"steps:{run_id}", help=help_text)
    percentiles = pct_col.pills("Percentiles", list(charts.PERCENTILES), selection_mode="multi",
                                default=list(charts.PERCENTILES), format_func=lambda p: p.removesuffix("_ms"),
                                key=f"percentiles:{run_id}")
    rows = [r for r in series if charts.step_label(r.journey, r.step) in shown]
    latency_col, rps_col = st.columns(2)
    latency_col.altair_chart(charts.latency_chart(rows, percentiles), width="stretch")
    rps_col.altair_chart(charts.rps_chart(rows), width="stretch")
    st.caption(f"{bucket_s} s buckets; times in UTC. Click a step in the latency legend to pick it out.")


def _infrastructure(run_id: str, detail: data.RunDetail, top: list[str]) -> None:
    st.subheader("Infrastructure")
    if not detail.infra:
        st.caption("No infrastructure samples: `perfhouse run --scrape URL` records a Prometheus endpoint's "
                   "(or `docker://CONTAINER`) samples during a run.")
        return
    frame = charts.infra_frame(detail.infra)
    series = list(dict.fromkeys(frame["series"]))
    shown = st.multiselect("Series", series, default=series[:3], key=f"infra:{run_id}",
                           help="The first one is drawn over the latency too. Counters (`*_total`) as rates.")
    if not shown:
        st.caption("Pick a series to draw.")
        return
    picked = frame[frame["series"].isin(shown)]
    picked = picked.assign(order=picked["series"].map(shown.index)).sort_values(["order", "t"], kind="stable")
    st.altair_chart(charts.infra_overlay_chart(detail.series, picked.drop(columns="order"), top), width="content")
    st.caption(f"{detail.bucket_s} s buckets, as above. Drag across either panel to pick a time window; "
               "double-click to clear it.")


def _files(url: str, run_id: str) -> None:
    files = rundir.run_files(data.runs_dir(), run_id)
    with st.expander("Report, scripts, logs and results", expanded=False):
        name_col, kind_col, get_col = st.columns([4, 1, 2])
        name_col.markdown(f"`{run_id}.html`")
        kind_col.caption("report")
        get_col.download_button("Download", lambda: data.html_report(url, run_id), file_name=f"{run_id}.html",
                                mime="text/html", key=f"report:{run_id}", on_click="ignore",
                                help="The self-contained HTML report, made when clicked")
        if files is None:
            st.caption(f"No run directory `{data.runs_dir() / run_id}` here (an imported run, or the dashboard "
                       "runs elsewhere; PERFHOUSE_RUNS_DIR names the runs directory).")
            return
        st.caption(f"In `{(data.runs_dir() / run_id).resolve()}`")
        for item in files:
            name_col, kind_col, get_col = st.columns([4, 1, 2])
            name_col.markdown(f"`{item.name}`")
            kind_col.caption(f"{item.kind}, {item.size:,} bytes")
            if item.downloadable:
                get_col.download_button("Download", item.path.read_bytes, file_name=item.name,  # read on click
                                        key=f"file:{run_id}:{item.name}", on_click="ignore")
            else:
                get_col.caption("too large to download here")


_VERDICT_COLOURS = {"WORSE": ("#fbd5d5", "#7f1d1d"), "BETTER": ("#d3f0d8", "#14532d"),
                    "SAME": ("#e5e7eb", "#374151"), "INCONCLUSIVE": ("#fef3c7", "#713f12"),
                    "NOT JUDGED": ("#e0e7ff", "#312e81")}


def _compare_style(verdict: Any) -> str:
    colours = _VERDICT_COLOURS.get(str(verdict))
    return f"background-color: {colours[0]}; color: {colours[1]}; font-weight: 600" if colours else ""


@page("compare", "Compare")
def compare_page(url: str) -> None:
    st.title("Compare")
    version = data.version(url)
    listed = data.run_choices(url, RUNS_LIMIT, version)
    if not listed:
        empty_warehouse(url)
        return
    groups = data.run_groups(url, version)
    modes = ["runs", "group"]
    synced("compare_mode", "group" if param("group") else "runs")
    mode = st.radio("Compare", modes, key="compare_mode", horizontal=True,
                    format_func={"runs": "two runs", "group": "the tools of one invocation (k6 against JMeter)"}.get)
    labels = {r.run_id: run_label(r) for r in listed}
    if mode == "group":
        if not groups:
            st.info("No invocation ran several tools yet: `perfhouse run SPEC --tool k6,jmeter` makes one.")
            return
        names = {g.group_id: f"{g.group_id} · {' / '.join(g.tools)} · {g.spec_name} {g.profile} · {g.last_started}"
                 for g in groups}
        wanted = param("group", next(iter(names)))
        synced("compare_group", wanted if wanted in names else next(iter(names)))
        group = st.selectbox("Group", list(names), key="compare_group", format_func=names.__getitem__,
                             on_change=to_url("compare_group", "group"))
        result = data.comparison(url, "", "", group, version)
    else:
        a_col, b_col = st.columns(2)
        with b_col:
            b = _pick_run(url, "run", "compare_b", "Run B (the candidate)", labels, version, "latest")
        base = data.baseline(url, b, version)
        a_default = base.run_id or next((r for r in labels if r != b), b)
        with a_col:
            a = _pick_run(url, "baseline", "compare_a", "Run A (the baseline)", labels, version, a_default)
        if base.run_id:
            st.caption(f"B's baseline as `compare` and `gate` take it: `{base.run_id}` ({base.how}).")
        else:
            st.caption(f"B has no baseline yet ({base.why}); pick run A.")
        if a == b:
            st.info("Pick two different runs.")
            return
        result = data.comparison(url, a, b, "", version)
        if a == base.run_id:
            result.how = base.how
    _comparison_view(url, result, version)


def _pick_run(url: str, name: str, key: str, label: str, labels: dict[str, str], version: tuple[Any, ...],
              default: str) -> str:
    ref = param(name, default)
    try:
        run_id = data.resolve(url, ref, version)
    except WarehouseError as exc:
        st.warning(f"{exc}. Showing {default} instead.")
        run_id = data.resolve(url, default, version)
    if run_id not in labels:
        labels = {run_id: run_id, **labels}
    synced(key, run_id)
    return str(st.selectbox(label, list(labels), key=key, format_func=labels.__getitem__,
                            on_change=to_url(key, name)))


def _comparison_view(url: str, result: Comparison, version: tuple[Any, ...]) -> None:
    a, b = result.a.run_id, result.b.run_id
    verdict_col, notes_col = st.columns([1, 2])
    verdict_col.metric("Verdict", str(result.verdict), border=True,
                       help="WORSE if any step is; else INCONCLUSIVE if any is; BETTER if any is; else SAME",
                       delta=f"A: {'group' if result.how == 'group' else result.how + ' baseline'}",
                       delta_arrow="off", delta_color="gray")
    notes_col.caption(f"B `{b}` ({result.b.tool}) against A `{a}` ({result.a.tool}).")
    for note in result.notes:
        notes_col.caption(f"Note: {note}")
    st.subheader("Latency distributions")
    steps = [s.label for s in result.steps]
    step_col, chart_col = st.columns([1, 4])
    where = step_col.selectbox("Step", ["overall", *steps], key="compare_step")
    step_col.caption("Each run's durations at 101 quantiles (1 % to 99 %, 99.5 %, 99.9 %; min and max), computed "
                     "in the warehouse. A curve to the right is slower.")
    journey, step = ("", "") if where == "overall" else where.split("/", 1)
    names = {a: f"A {a} ({result.a.tool})", b: f"B {b} ({result.b.tool})"}
    distributions = data.distributions(url, (a, b), journey, step, version)
    chart_col.altair_chart(charts.distribution_chart(charts.distribution_frame(distributions, names)).properties(
        height=260), width="stretch")
    st.subheader("Per step")
    frame = compare_frame(result)
    st.dataframe(frame.style.map(_compare_style, subset=["verdict"]), hide_index=True, key="compare_steps",
                 column_config={
                     "reason": st.column_config.TextColumn("why", width="large"),
                     **{c: st.column_config.NumberColumn(c.replace("_ms", "").replace("_", " ") + " ms", format="%.2f")
                        for c in frame.columns if c.endswith("_ms")},
                     **{c: st.column_config.NumberColumn(c.replace("_", " "), format="%.1f")
                        for c in frame.columns if c.startswith("rps")},
                     **{c: st.column_config.NumberColumn(c.replace("change_", "Δ ") + " %", format="%+.1f")
                        for c in frame.columns if c.startswith("change")},
                     **{c: st.column_config.NumberColumn(c.replace("_", " "), format="percent")
                        for c in frame.columns if c.startswith("errors")},
                 })


@page("trends", "Trends")
def trends_page(url: str) -> None:
    st.title("Trends")
    version = data.version(url)
    known = data.fingerprints(url, version)
    if not known:
        st.info("No finished run has a fingerprint yet: runs of `perfhouse run` (and imports given a spec) get one; "
                "each fingerprint is one history of comparable runs.")
        return
    names = {f.fingerprint: f"{f.spec_name or '?'} · {f.tool} · {f.profile or '–'} · {f.environment or '–'} · "
             f"{f.runs} runs · {f.fingerprint}" for f in known}
    wanted = param("fingerprint", next(iter(names)))
    synced("trends_fingerprint", wanted if wanted in names else next(iter(names)))
    fp_col, metric_col = st.columns([3, 1])
    fingerprint = fp_col.selectbox("History (fingerprint)", list(names), key="trends_fingerprint",
                                   format_func=names.__getitem__, on_change=to_url("trends_fingerprint", "fingerprint"))
    metrics = ["p95", "p99", "error_rate", "rps"]
    synced("trends_metric", param("metric", "p95") if param("metric", "p95") in metrics else "p95")
    metric = metric_col.selectbox("Metric", metrics, key="trends_metric", on_change=to_url("trends_metric", "metric"))
    found = data.trend(url, fingerprint, metric, version)
    if not found.series:
        st.info("No finished run of this history has requests yet.")
        return
    labels = [s.label for s in found.series]
    shown = st.multiselect("Steps", labels, default=labels[:8], key=f"trends_steps:{fingerprint}")
    series = [s for s in found.series if s.label in shown]
    newest = next(r for r in known if r.fingerprint == fingerprint).newest_run
    base = data.baseline(url, newest, version)
    marked = base.mark
    st.altair_chart(charts.trend_chart(charts.trend_frame(series), charts.change_frame(series), metric, marked),
                    width="stretch")
    runs = max((len(s.points) for s in found.series), default=0)
    where = (f"baseline of the newest run: `{base.run_id}` ({base.how}), the dashed rule"
             if marked else f"no baseline: {base.why}")
    st.caption(f"{runs} runs; change points by E-divisive means, drawn on the first run of the new level "
               f"(red worse, green better); {where}.")
    changes = charts.change_frame(series)
    st.subheader("Change points")
    if changes.empty:
        st.caption("None: no step changed level over this history.")
    else:
        st.dataframe(changes.drop(columns=["kind"]), hide_index=True, key="trends_changes", column_config={
            "run_id": st.column_config.TextColumn("first run of the new level"),
            "started_at": st.column_config.DatetimeColumn("run started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "before": st.column_config.NumberColumn(format="%.4g"), "after": st.column_config.NumberColumn(format="%.4g"),
            "change": st.column_config.NumberColumn(
                "change", format="percent",
                help="Relative for latency and throughput; for the error rate, the change of the rate itself"),
            "pvalue": st.column_config.NumberColumn("p", format="%.2g")})


@page("live", "Live")
def live_page(url: str) -> None:
    st.title("Live")
    version = data.version(url)
    running = data.run_list(url, RunFilter(status="running"), 50, version)
    ref = param("run", "")
    if not ref and not running:
        st.info("No run is in progress. Start one with `perfhouse run SPEC --profile NAME --live`: it shows "
                "here within seconds and grows as results are ingested.")
        _wait_for_a_run(url)
        return
    run_id = _chosen_run(url, running or data.run_choices(url, RUNS_LIMIT, version), version,
                         fallback=running[0].run_id if running else "latest")
    if not ref:  # stay on this run when it ends
        st.query_params["run"] = run_id
    _live_view(url, run_id)


@st.fragment(run_every=LIVE_REFRESH_S)
def _wait_for_a_run(url: str) -> None:
    """Reload the page when a run starts."""
    if data.run_list(url, RunFilter(status="running"), 1, data.version(url)):
        st.rerun()


@st.fragment(run_every=LIVE_REFRESH_S)
def _live_view(url: str, run_id: str) -> None:
    version = data.version(url)
    detail = data.run_detail(url, run_id, version)
    report = detail.report
    status = report.run.status
    st.subheader(f"Run {streamlit_markdown(run_id)}")
    st.caption(_run_caption(report.run))
    if status == "running":
        st.caption(f"Refreshing every {LIVE_REFRESH_S:g} s; last read {time.strftime('%H:%M:%S')}.")
    else:
        st.success(f"The run has ended ({status}). [Open its page](?page=run&run={run_id}) for the full report.")
    head = Headline.of(report.totals, report.slos, status)
    _headline(head, report.totals.check_failures)
    if not head.requests:
        st.info("No requests ingested yet: `--live` adds them every few seconds.")
        return
    top = charts.top_steps(report.steps)
    rows = [r for r in detail.series if charts.step_label(r.journey, r.step) in top]
    latency_col, rps_col = st.columns(2)
    latency_col.altair_chart(charts.latency_chart(rows, ("p95_ms",)), width="stretch")
    rps_col.altair_chart(charts.rps_chart(rows), width="stretch")
    st.caption(f"{detail.bucket_s} s buckets; the {len(top)} steps that cost the most time.")


_EXAMPLE_SQL = """SELECT journey, step, count() AS requests, countIf(ok = 0) AS errors,
       quantileExact(0.95)(duration_ms) AS p95_ms
FROM requests
WHERE run_id = (SELECT run_id FROM runs_current ORDER BY started_at DESC LIMIT 1)
GROUP BY journey, step
ORDER BY p95_ms DESC"""


@page("sql", "SQL")
def sql_page(url: str) -> None:
    st.title("SQL")
    st.caption("One read-only SELECT over perfhouse's tables (ClickHouse SQL). The warehouse runs it with "
               "`readonly = 1`, a row limit, a byte cap and a timeout; other tables and databases, table "
               "functions, functions beyond computing on the rows read, SETTINGS and several statements are "
               "refused.")
    if url.startswith(("clickhouse", "http")) and not data.sql_warehouse_url():
        st.caption("Queries run as the warehouse's own user: set `PERFHOUSE_SQL_WAREHOUSE` to a user granted "
                   "SELECT on perfhouse's database only (the compose stack's `perfhouse_reader`).")
    with st.expander("Tables and columns"):
        columns = pd.DataFrame([c.to_dict() for c in data.table_columns(url)], columns=["table", "name", "type"])
        for table, group in columns.groupby("table", sort=True):
            st.markdown(f"**{table}**: " + ", ".join(f"`{n}` {t}" for n, t in zip(group["name"], group["type"],
                                                                                strict=True)))
    text = st.text_area("Query", value=_EXAMPLE_SQL, height=170, key="sql_text")
    limit_col, timeout_col, run_col = st.columns([1, 1, 1], vertical_alignment="bottom")
    row_limit = int(limit_col.number_input("Row limit", 1, 100_000, DEFAULT_ROW_LIMIT, step=1000, key="sql_limit"))
    timeout_s = int(timeout_col.number_input("Timeout (s)", 1, 60, DEFAULT_TIMEOUT_S, key="sql_timeout"))
    if run_col.button("Run query", type="primary", key="sql_run"):
        started = time.perf_counter()
        try:
            result = data.read_only_sql(url, text, row_limit, timeout_s)
        except Refused as exc:
            st.session_state["sql_outcome"] = ("refused", str(exc))
        except WarehouseError as exc:
            st.session_state["sql_outcome"] = ("failed", str(exc))
        else:
            st.session_state["sql_outcome"] = ("ok", result, time.perf_counter() - started)
    outcome = st.session_state.get("sql_outcome")
    if outcome is None:
        return
    if outcome[0] == "refused":
        st.error(f"Refused: {outcome[1]}")
    elif outcome[0] == "failed":
        st.error(f"The warehouse could not run it: {outcome[1]}")
    else:
        result, seconds = outcome[1], outcome[2]
        frame = pd.DataFrame(result.rows, columns=result.columns or None)
        cut = f"; cut at the row limit of {result.row_limit:,}" if result.truncated else ""
        st.caption(f"{len(frame):,} rows in {seconds:.2f} s{cut}.")
        st.dataframe(frame, hide_index=True, key="sql_result")
        st.download_button("Download CSV", frame.to_csv(index=False).encode(), file_name="perfhouse-query.csv",
                           mime="text/csv", key="sql_csv", on_click="ignore")
        with st.expander("SQL that ran"):
            st.code(result.sql, language="sql")
