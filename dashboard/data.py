"""The dashboard's reads: Warehouse API calls behind Streamlit caches keyed by warehouse, arguments and the
warehouse's data version, so a run added, a file or a live chunk ingested or SLOs judged show at once.

Nothing here holds the warehouse open between calls: each Warehouse method takes the embedded
backend's lock, queries and closes, so a live run or a CLI ingest can write in between page loads.
The data version is one cheap query per page load (counts from part metadata, the newest run update);
every other read is answered from the cache until it changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard.charts import BaselineMark, bucket_seconds
from warehouse.analysis.baseline import optional_baseline
from warehouse.analysis.compare import Comparison, compare
from warehouse.analysis.gate import RunGate, run_gate
from warehouse.analysis.trends import Trends, trends
from warehouse.engine.backends import DEFAULT_URL, Backend, open_backend
from warehouse.read.records import (
    FingerprintHistory,
    InfraBucket,
    LatencyBucket,
    LatencyDistribution,
    RunChoice,
    RunFacets,
    RunGroup,
    RunListRow,
    TableColumn,
)
from warehouse.report.reports import Report, build_report
from warehouse.store import RunFilter, SqlResult, Warehouse
from warehouse.store import read_only_sql as store_read_only_sql

VERSION_TTL_S = 1  # page loads within a second share one version read
CACHE_TTL_S = 600  # the version decides freshness; the TTL only bounds memory
DEFAULT_RUNS_DIR = ".perfhouse/runs"


def warehouse_url() -> str:
    """The warehouse `perfhouse dashboard` was started on (it sets PERFHOUSE_WAREHOUSE)."""
    return os.environ.get("PERFHOUSE_WAREHOUSE") or DEFAULT_URL


def runs_dir() -> Path:
    """Where `perfhouse run` keeps each run's directory (scripts, logs, raw results): PERFHOUSE_RUNS_DIR
    or `.perfhouse/runs` under the directory the dashboard was started in."""
    return Path(os.environ.get("PERFHOUSE_RUNS_DIR") or DEFAULT_RUNS_DIR)


@st.cache_resource(show_spinner=False)
def _warehouse(url: str) -> Warehouse:
    return Warehouse.open(url)


@st.cache_data(ttl=VERSION_TTL_S, show_spinner=False)
def version(url: str) -> tuple[Any, ...]:
    """Changes whenever anything is written to the warehouse; every cached read below is keyed by it. An ingest
    killed while its rows were being attached is undone first (as the next CLI command would), so no page shows
    rows of a batch that never committed."""
    wh = _warehouse(url)
    with wh.backend.session():
        wh.recover()
        return wh.data_version()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=64)
def run_list(url: str, filters: RunFilter, limit: int, data_version: tuple[Any, ...] = ()) -> list[RunListRow]:
    return _warehouse(url).run_list(filters, limit)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=16)
def run_choices(url: str, limit: int, data_version: tuple[Any, ...] = ()) -> list[RunChoice]:
    return _warehouse(url).run_choices(limit)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=16)
def facets(url: str, data_version: tuple[Any, ...] = ()) -> RunFacets:
    return _warehouse(url).run_facets()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=64)
def resolve(url: str, ref: str, data_version: tuple[Any, ...] = ()) -> str:
    """A run id from an id, a unique prefix or `latest`; WarehouseError when there is none."""
    return _warehouse(url).resolve(ref)


@dataclass(frozen=True)
class RunDetail:
    """Everything the run page shows: the report (run, totals, steps, SLOs, errors), its time series and the
    infrastructure samples on the same buckets."""

    report: Report
    series: list[LatencyBucket]
    bucket_s: int
    infra: list[InfraBucket] = field(default_factory=list)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner="Reading the run from the warehouse…", max_entries=32)
def run_detail(url: str, run_id: str, data_version: tuple[Any, ...] = ()) -> RunDetail:
    wh = _warehouse(url)
    with wh.backend.session():  # one unit of work: a consistent view of the run, one lock round-trip
        report = build_report(wh, run_id)
        bucket = bucket_seconds(report.totals.span_s)
        series = wh.latency_over_time(run_id, bucket) if report.totals.count else []
        infra = wh.infra_over_time(run_id, bucket)
    return RunDetail(report, series, bucket, infra)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner="Comparing the runs in the warehouse…", max_entries=32)
def comparison(url: str, a: str, b: str, group: str = "", data_version: tuple[Any, ...] = ()) -> Comparison:
    """What `perfhouse compare A B` (or `compare --group GROUP`) decides."""
    if group:
        return compare(_warehouse(url), group=group)
    return compare(_warehouse(url), a, b)


@dataclass(frozen=True)
class RunBaseline:
    """The baseline `compare` and `gate` take for a run: its id, how it was chosen and when it started; without
    one, run_id is empty and `why` says why."""

    run_id: str = ""
    how: str = ""
    started_at: str = ""
    why: str = ""

    @property
    def mark(self) -> BaselineMark | None:
        """The baseline as a trend chart marks it, None without one."""
        return BaselineMark(self.run_id, self.how, self.started_at) if self.run_id else None


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=64)
def baseline(url: str, run_id: str, data_version: tuple[Any, ...] = ()) -> RunBaseline:
    """The baseline `compare` and `gate` take for a run (pinned, else automatic)."""
    wh = _warehouse(url)
    with wh.backend.session():
        chosen, why = optional_baseline(wh, run_id)
        if chosen is None:
            return RunBaseline(why=why)
        return RunBaseline(chosen.run_id, chosen.how, wh.run(chosen.run_id).started_at)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=64)
def gate(url: str, run_id: str, data_version: tuple[Any, ...] = ()) -> RunGate | None:
    """The run's latest gate outcome and the runs judged with it (a set of repeats), None before it is gated."""
    return run_gate(_warehouse(url), run_id)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=64)
def distributions(url: str, run_ids: tuple[str, ...], journey: str = "", step: str = "",
                  data_version: tuple[Any, ...] = ()) -> list[LatencyDistribution]:
    return _warehouse(url).latency_distribution(list(run_ids), journey, step)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=16)
def run_groups(url: str, data_version: tuple[Any, ...] = ()) -> list[RunGroup]:
    return _warehouse(url).run_groups()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=16)
def fingerprints(url: str, data_version: tuple[Any, ...] = ()) -> list[FingerprintHistory]:
    return _warehouse(url).fingerprints()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner="Reading the history…", max_entries=32)
def trend(url: str, fingerprint: str, metric: str, data_version: tuple[Any, ...] = ()) -> Trends:
    """What `perfhouse trends --fingerprint F --metric M` finds: each step's series and its change points."""
    return trends(_warehouse(url).backend, metric, fingerprint=fingerprint)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=4)
def table_columns(url: str) -> list[TableColumn]:
    return _warehouse(url).table_columns()


def html_report(url: str, run_id: str) -> bytes:
    """The run's self-contained HTML report (what `perfhouse report RUN --format html` writes)."""
    from warehouse.report.report_formats import report

    return report(_warehouse(url), [run_id], "html").text.encode()


def sql_warehouse_url() -> str:
    """Where the SQL page runs its queries: PERFHOUSE_SQL_WAREHOUSE (on a ClickHouse server, a user granted
    SELECT on perfhouse's database only, as the compose stack's `perfhouse_reader`), '' for the dashboard's
    own warehouse."""
    return os.environ.get("PERFHOUSE_SQL_WAREHOUSE", "").strip()


@st.cache_resource(show_spinner=False)
def _sql_backend(url: str) -> Backend:
    return open_backend(url)  # no migrations, no recovery: a read-only user could not run them


def read_only_sql(url: str, sql: str, row_limit: int, timeout_s: int) -> SqlResult:
    """An ad-hoc query through the SQL gate, as PERFHOUSE_SQL_WAREHOUSE's user when it is set; never cached
    (the user asked for it now)."""
    if sql_url := sql_warehouse_url():
        return store_read_only_sql(_sql_backend(sql_url), sql, row_limit, timeout_s)
    return _warehouse(url).read_only_sql(sql, row_limit, timeout_s)


def refresh() -> None:
    """Forget cached reads so the next page load reads the warehouse again."""
    for cached in (version, run_list, run_choices, facets, resolve, run_detail, table_columns, comparison, baseline,
                   distributions, run_groups, fingerprints, trend):
        cached.clear()
