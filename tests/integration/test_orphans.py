"""What a killed ingest leaves behind: a dashboard already open never shows the rows it attached before it died, and
the decompressed copy of its gzip is removed from the temporary directory at the next open (never one of a live
process)."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from warehouse.engine.owners import me, sweep_scratch
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

HEADER = "timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,bytes,grpThreads,allThreads,Latency"


def jtl(path: Path, months: int = 3, per_month: int = 50) -> Path:
    rows = [HEADER]
    for m in range(months):
        for i in range(per_month):
            rows.append(f"{1_704_067_200_000 + m * 2_678_400_000 + i},{10 + i},s{i % 3},200,OK,shop 1-1,text,true,1,1,1,1")
    path.write_text("\n".join(rows) + "\n")
    return path


def killed_ingest(url: str, path: Path, kill_at: str, tmpdir: Path | None = None) -> None:
    env = {**os.environ, "PERFHOUSE_TEST_KILL_AT": kill_at, "PERFHOUSE_TEST_KILL_SIGNAL": "KILL"}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", url, "ingest", str(path)],
                          capture_output=True, timeout=300, env=env)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def test_a_dashboard_already_open_never_shows_the_rows_of_an_ingest_killed_mid_attach(tmp_path: Path) -> None:
    from dashboard import data

    url = f"chdb://{tmp_path / 'wh'}"
    wh = data._warehouse(url)  # the dashboard is running: its warehouse was opened before the ingest
    try:
        getattr(wh.backend, "release", lambda: None)()
        killed_ingest(url, jtl(tmp_path / "months.jtl"), "partition-attached")
        data.version(url)  # what every page load asks first
        with wh.backend.session():
            rows = wh.backend.query("SELECT count() AS n FROM requests")[0]["n"]
            runs = wh.backend.query("SELECT count() AS n FROM runs_current")[0]["n"]
        assert (rows, runs) == (0, 0)
        assert data.run_list(url, data.RunFilter(), 100, data.version(url)) == []
    finally:
        data._warehouse.clear()
        getattr(wh.backend, "release", lambda: None)()


def test_the_decompressed_copy_of_a_killed_gzip_ingest_is_removed_at_the_next_open(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'wh'}"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    packed = tmp_path / "months.jtl.gz"
    packed.write_bytes(gzip.compress(jtl(tmp_path / "months.jtl").read_bytes()))
    killed_ingest(url, packed, "staged", scratch)
    left = [p for p in scratch.iterdir() if p.name.startswith("perfhouse-ingest.")]
    assert left and any((p / "data").exists() for p in left)
    live = scratch / f"perfhouse-ingest.{os.getpid()}.{me().start}.alive"  # a live process's: never removed
    live.mkdir()
    opened = subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", url, "runs"],
                            capture_output=True, timeout=300, env={**os.environ, "TMPDIR": str(scratch)})
    assert opened.returncode == 0, opened.stderr
    assert [p for p in scratch.iterdir() if p.name.startswith("perfhouse-")] == [live]
    assert sweep_scratch(scratch) == [] and live.exists()
    Warehouse.open(url)  # and the warehouse holds nothing of the killed batch
