"""The watchdog records, as aborted, a run whose perfhouse died before writing the run's row itself."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from orchestrator.watchdog import watch
from warehouse.engine.owners import OWNER_LABEL
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

FIELDS = {"run_id": "20260101-000000-k6-beef", "tool": "k6", "name": "shop/ci", "profile": "ci",
          "labels": {OWNER_LABEL: "host:1:2", "team": "checkout"}, "started_at": "2026-01-01 00:00:00.000000"}


def commands(*ops: tuple[str, object]) -> io.BytesIO:
    return io.BytesIO(b"".join(json.dumps({"op": op, "value": value}).encode() + b"\n" for op, value in ops))


def test_a_run_perfhouse_did_not_record_lands_aborted(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'wh'}"
    log = tmp_path / "watchdog.log"
    assert watch(commands(("run", {"warehouse": url, "fields": FIELDS})), log) == 0  # the pipe ends: perfhouse died
    wh = Warehouse.open(url)
    assert [r.run_id for r in wh.runs()] == [FIELDS["run_id"]]
    run = wh.run(FIELDS["run_id"])
    assert (run.status, run.profile) == ("aborted", "ci")
    assert "perfhouse died while the run went, before it recorded the run" in run.notes
    assert run.labels == {"team": "checkout"}  # no owner left on a finished run
    assert f"recorded run {FIELDS['run_id']} as aborted" in log.read_text()


def test_a_run_perfhouse_recorded_is_left_to_it(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'wh'}"
    watch(commands(("run", {"warehouse": url, "fields": FIELDS}), ("forget-run", None)), tmp_path / "watchdog.log")
    assert not (tmp_path / "wh").exists()  # nothing to write: perfhouse wrote the row (and marks it itself)
