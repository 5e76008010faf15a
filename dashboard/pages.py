"""The dashboard's pages, one registered function each: the runs list and one run in detail.

Pages draw; they read only through `dashboard.data` (the Warehouse API) and shape rows with
`dashboard.tables` and `dashboard.charts`. A new page is one more `@page` function here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from dashboard import charts, data
from dashboard.nav import go, page, param, synced, to_url
from dashboard.tables import (
    ALL,
    Headline,
    choices,
    errors_table,
    filter_runs,
    ms,
    run_label,
    runs_frame,
    slo_frame,
    steps_frame,
)
from warehouse.errors import WarehouseError

RUNS_LIMIT = 500
_MS_COLUMNS = ("avg_ms", "min_ms", "max_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms")


def empty_warehouse(url: str) -> None:
    st.info(
        f"The warehouse `{url}` holds no runs yet.\n\n"
        f"Record some with `perfhouse --warehouse {url} demo`, or import a k6 or JMeter results file with "
        f"`perfhouse --warehouse {url} ingest FILE`; then press **Refresh** in the sidebar."
    )


@page("runs", "Runs")
def runs_page(url: str) -> None:
    st.title("Runs")
    everything = data.runs(url, RUNS_LIMIT)
    if not everything:
        empty_warehouse(url)
        return
    tool_col, spec_col, status_col = st.columns(3)
    tool = tool_col.selectbox("Tool", choices(everything, "tool"), key="runs_tool")
    spec = spec_col.selectbox("Spec", choices(everything, "spec_name"), key="runs_spec")
    status = status_col.selectbox("Status", choices(everything, "status"), key="runs_status")
    narrowed = tool != ALL or spec != ALL
    rows = data.runs(url, RUNS_LIMIT, tool=str(tool).replace(ALL, ""), spec=str(spec).replace(ALL, "")) \
        if narrowed else everything
    shown = filter_runs(rows, status=str(status))
    if not shown:
        st.info("No run matches these filters.")
        return
    st.caption(f"{len(shown)} of the newest {len(everything)} runs, newest first. Select a row to open the run.")
    frame = runs_frame(shown)
    event = st.dataframe(
        frame, key="runs_table", hide_index=True, on_select="rerun", selection_mode="single-row",
        column_config={
            "run_id": st.column_config.TextColumn("run", width="medium"),
            "started_at": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "duration_s": st.column_config.NumberColumn("duration (s)", format="%.1f"),
            "requests": st.column_config.NumberColumn("requests", format="%d"),
            "spec_name": "spec",
        },
    )
    selected = event["selection"]["rows"]
    if selected:
        go("run", run=str(frame.iloc[selected[0]]["run_id"]))


@page("run", "Run detail")
def run_page(url: str) -> None:
    everything = data.runs(url, RUNS_LIMIT)
    if not everything:
        st.title("Run detail")
        empty_warehouse(url)
        return
    run_id = _chosen_run(url, everything)
    detail = data.run_detail(url, run_id)
    report = detail.report
    st.title(f"Run {run_id}")
    st.caption(_run_caption(report.run))

    head = Headline.of(report.totals, report.slos, str(report.run.get("status") or ""))
    cells = st.columns(5)
    cells[0].metric("Requests", f"{head.requests:,}", border=True)
    cells[1].metric("Throughput (req/s)", "–" if head.rps is None else f"{head.rps:,.1f}", border=True)
    cells[2].metric("Errors", f"{head.errors:,}", border=True, delta_arrow="off",
                    delta=None if head.error_rate is None else f"{head.error_rate:.2%} of requests",
                    delta_color="red" if head.errors else "gray")
    cells[3].metric("p95 latency (ms)", ms(head.p95_ms), border=True)
    cells[4].metric("SLOs", head.slo_status, help=head.slo_detail, border=True, delta_arrow="off",
                    delta=head.slo_summary or None,
                    delta_color="green" if head.slo_status == "PASSED" else "gray" if head.slo_status == "NO SLOS" else "red")

    if not head.requests:
        st.info("This run holds no requests yet: a run that is starting, or an import that found none.")
    else:
        _over_time(run_id, detail.series, detail.bucket_s)

    st.subheader("SLOs")
    if report.slos:
        st.dataframe(slo_frame(report.slos), hide_index=True,
                     column_config={"threshold": st.column_config.NumberColumn(format="%g"),
                                    "observed": st.column_config.NumberColumn(format="%.4g")})
    else:
        st.caption(head.slo_detail)

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

    with st.expander("Run record"):
        st.json({k: v for k, v in report.run.items() if v not in ("", None, {})})


def _chosen_run(url: str, runs: list[dict[str, Any]]) -> str:
    """The run named by `?run=` (an id, a unique prefix or `latest`), with a sidebar picker that updates it."""
    ref = param("run", "latest")
    try:
        run_id = data.resolve(url, ref)
    except WarehouseError as exc:
        st.warning(f"{exc}. Showing the latest run instead.")
        run_id = data.resolve(url, "latest")
    labels = {r["run_id"]: run_label(r) for r in runs}
    if run_id not in labels:
        labels = {run_id: run_id, **labels}
    synced("_run", run_id)
    st.sidebar.selectbox("Run", list(labels), key="_run", format_func=labels.__getitem__,
                         on_change=to_url("_run", "run"))
    return run_id


def _run_caption(run: Mapping[str, Any]) -> str:
    tool = " ".join(str(run[k]) for k in ("tool", "tool_version") if run.get(k))
    spec = "/".join(str(run[k]) for k in ("spec_name", "profile") if run.get(k))
    when = f"{run.get('started_at') or '?'} → {run.get('ended_at') or 'running'} UTC"
    parts = [run.get("name"), tool, spec and f"spec {spec}", run.get("status"), when, run.get("environment")]
    return " · ".join(str(p) for p in parts if p)


def _over_time(run_id: str, series: list[dict[str, Any]], bucket_s: int) -> None:
    st.subheader("Over time")
    steps = sorted({charts.step_label(r["journey"], r["step"]) for r in series})
    step_col, pct_col = st.columns([3, 1])
    shown = step_col.multiselect("Steps", steps, default=steps, key=f"steps:{run_id}")
    percentiles = pct_col.pills("Percentiles", list(charts.PERCENTILES), selection_mode="multi",
                                default=list(charts.PERCENTILES), format_func=lambda p: p.removesuffix("_ms"),
                                key=f"percentiles:{run_id}")
    rows = [r for r in series if charts.step_label(r["journey"], r["step"]) in shown]
    latency_col, rps_col = st.columns(2)
    latency_col.altair_chart(charts.latency_chart(rows, percentiles), width="stretch")
    rps_col.altair_chart(charts.rps_chart(rows), width="stretch")
    st.caption(f"{bucket_s} s buckets; times in UTC. Click a step in the latency legend to pick it out.")
