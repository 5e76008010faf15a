"""The Grafana dashboard's panel queries, and Grafana's macros and variables expanded as Grafana would for
one run, so the SQL can be checked by sqlglot and run on a warehouse."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.conftest import ROOT

DASHBOARD_JSON = ROOT / "deploy" / "grafana" / "dashboards" / "perfhouse.json"


def grafana_targets() -> list[tuple[str, dict[str, Any]]]:
    board = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    return [(panel["title"], target) for panel in board["panels"] for target in panel["targets"]]


_TIME_FILTER = re.compile(r"\$__timeFilter\((\w+)\)")


def expand(sql: str, run_id: str = "20260101-000000-k6-0000", days: int = 1, bucket_s: int = 5) -> str:
    """A panel's SQL as Grafana sends it for one run, the last `days` days and `bucket_s` buckets."""
    sql = sql.replace("${run}", run_id).replace("${bucket}", str(bucket_s))
    sql = _TIME_FILTER.sub(rf"\1 >= now() - INTERVAL {days} DAY AND \1 <= now()", sql)
    assert "$" not in sql, f"an unexpanded Grafana macro in {sql!r}"
    return sql
