"""The dashboard's reads: Warehouse API calls behind short-lived Streamlit caches, keyed by warehouse and run.

Nothing here holds the warehouse open between calls: each Warehouse method takes the embedded
backend's lock, queries and closes, so a live run or a CLI ingest can write in between page loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import streamlit as st

from dashboard.charts import bucket_seconds
from warehouse.backends import DEFAULT_URL
from warehouse.reports import Report, build_report
from warehouse.store import Warehouse

RUNS_TTL_S = 5
DETAIL_TTL_S = 15


def warehouse_url() -> str:
    """The warehouse `perfhouse dashboard` was started on (it sets PERFHOUSE_WAREHOUSE)."""
    return os.environ.get("PERFHOUSE_WAREHOUSE") or DEFAULT_URL


@st.cache_resource(show_spinner=False)
def _warehouse(url: str) -> Warehouse:
    return Warehouse.open(url)


@st.cache_data(ttl=RUNS_TTL_S, show_spinner=False)
def runs(url: str, limit: int = 200, tool: str = "", spec: str = "") -> list[dict[str, Any]]:
    return _warehouse(url).runs(limit=limit, tool=tool, spec=spec)


@st.cache_data(ttl=RUNS_TTL_S, show_spinner=False)
def resolve(url: str, ref: str) -> str:
    """A run id from an id, a unique prefix or `latest`; WarehouseError when there is none."""
    return _warehouse(url).resolve(ref)


@dataclass(frozen=True)
class RunDetail:
    """Everything the run page shows: the report (run, totals, steps, SLOs, errors) and its time series."""

    report: Report
    series: list[dict[str, Any]]
    bucket_s: int


@st.cache_data(ttl=DETAIL_TTL_S, show_spinner="Reading the run from the warehouse…")
def run_detail(url: str, run_id: str) -> RunDetail:
    wh = _warehouse(url)
    with wh.backend.session():  # one unit of work: a consistent view of the run, one lock round-trip
        report = build_report(wh, run_id)
        bucket = bucket_seconds(report.totals.get("span_s"))
        series = wh.latency_over_time(run_id, bucket) if report.totals.get("count") else []
    return RunDetail(report, series, bucket)


def refresh() -> None:
    """Forget cached reads so the next page load sees what was written since."""
    runs.clear()
    resolve.clear()
    run_detail.clear()
