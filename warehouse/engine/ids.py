"""Run ids: readable, sorted by start time, unique enough (a light module, so a run gets its id before the
warehouse's engine and SQL are loaded)."""

from __future__ import annotations

import datetime as dt
import secrets


def new_run_id(tool: str) -> str:
    now = dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%d-%H%M%S}-{tool}-{secrets.token_hex(2)}"
