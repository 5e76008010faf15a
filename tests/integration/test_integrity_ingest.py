"""An ingest killed at any moment leaves its whole run with all its rows, or nothing of it, and the file can be
ingested again; files whose rows once outlived their run are repaired when the warehouse opens."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import make_warehouse_url
from warehouse.engine import schema
from warehouse.ingest.batch import DIRECT_MAX_BYTES
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

ROWS = 2_000_000  # long enough a load that each fraction of an uninterrupted ingest falls inside it
STAGED_ROWS = 200_000  # the commit's steps need only a file that takes the staging tables (over 4 MiB) in two months
# The named steps of an ingest's commit (warehouse.ingest.batch.checkpoint), in the order they happen.
STEPS = ["staging-recorded", "staged", "claimed", "attaching-recorded", "partition-attached", "attached-k6_points",
         "attached-aggregates", "attached-requests", "summaries-written", "run-recorded", "done-recorded",
         "stages-dropped"]
# Moments of the load itself, as fractions of an uninterrupted ingest's duration from the process start.
FRACTIONS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.97]


def write_jtl(path: Path, rows: int, start: int = 1706741400000) -> None:
    """A JMeter 2.13 JTL (12 columns, no header) of `rows` samples, a sample every 5 ms from `start` (epoch ms; by
    default 2024-01-31 22:50 UTC, from where 840,000 samples reach February: two monthly partitions)."""
    labels = ["home", "search", "product", "cart", "checkout"]
    with open(path, "w") as out:
        for base in range(0, rows, 50_000):
            out.write("".join(
                f"{start + i * 5},{20 + i % 97},{labels[i % 5]},{200 if i % 50 else 500},OK,Users 1-{i % 8 + 1},"
                f"text,{'true' if i % 50 else 'false'},{100 + i % 13},1,8,{5 + i % 7}\n"
                for i in range(base, min(rows, base + 50_000))))


# The steps of a small file's commit: its rows go straight into the warehouse tables (no staging tables).
DIRECT_STEPS = ["attaching-recorded", "claimed", "loaded", "summaries-written", "run-recorded", "done-recorded"]
K6_REQUESTS = 300


def write_k6_json(path: Path, requests: int, garbled_at: int | None = None) -> None:
    """k6 `--out json` lines of `requests` requests (the points of each, 20 ms apart, over a month's end, so the
    rows lie in two monthly partitions); `garbled_at`: that request's first line cut short."""
    start = dt.datetime(2024, 1, 31, 23, 59, 59, 500_000, tzinfo=dt.UTC)
    lines = ['{"type":"Metric","data":{"name":"http_reqs","type":"counter"},"metric":"http_reqs"}']
    for i in range(requests):
        time_text = (start + dt.timedelta(milliseconds=20 * i)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
        tags = {"journey": "shop", "step": ["home", "cart", "pay"][i % 3], "method": "GET", "status": "200",
                "expected_response": "true", "url": "http://127.0.0.1/x", "name": "http://127.0.0.1/x"}
        points = [("http_reqs", 1), ("http_req_duration", 10 + i % 17), ("http_req_waiting", 8 + i % 13),
                  ("http_req_connecting", 0), ("http_req_failed", 0)]
        for n, (metric, value) in enumerate(points):
            line = json.dumps({"metric": metric, "type": "Point",
                               "data": {"time": time_text, "value": value, "tags": tags}})
            lines.append(line[: len(line) // 2] if i == garbled_at and n == 0 else line)
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session")
def big_jtl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.jtl"
    write_jtl(path, ROWS)
    return path


@pytest.fixture(scope="session")
def staged_jtl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file the ingest stages (larger than a direct load takes), from a minute before February to after it."""
    path = tmp_path_factory.mktemp("staged") / "staged.jtl"
    write_jtl(path, STAGED_ROWS, start=1706745540000)  # 2024-01-31 23:59 UTC: 12,000 samples in January
    assert path.stat().st_size > DIRECT_MAX_BYTES
    return path


def ingest_process(url: str, path: Path, kill_at: str = "", signal_name: str = "KILL") -> subprocess.Popen[bytes]:
    env = {**os.environ, "PERFHOUSE_TEST_KILL_AT": kill_at, "PERFHOUSE_TEST_KILL_SIGNAL": signal_name}
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "--warehouse", url, "ingest", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def release(wh: Warehouse) -> None:
    """Close an embedded warehouse's session now, so that the next process can open it at once."""
    getattr(wh.backend, "release", lambda: None)()


def check_whole_or_absent(url: str, path: Path, rows: int) -> str:
    """Open the warehouse (recovery runs) and check the file's run is whole or absent and no row lacks a run;
    then ingest the file again, which must succeed (or find it already ingested when the run is whole)."""
    wh = Warehouse.open(url)
    orphans = wh.backend.query(
        "SELECT (SELECT count() FROM requests WHERE run_id NOT IN (SELECT run_id FROM runs)) "
        "+ (SELECT count() FROM k6_points WHERE run_id NOT IN (SELECT run_id FROM runs)) "
        "+ (SELECT count() FROM aggregates WHERE run_id NOT IN (SELECT run_id FROM runs)) AS n")[0]["n"]
    assert orphans == 0, "rows without a run"
    runs = wh.runs()
    done = wh.backend.query("SELECT run_id FROM ingested_files FINAL WHERE state = 'done'")
    stages = wh.backend.query("SELECT name FROM system.tables WHERE database = currentDatabase() "
                              "AND startsWith(name, 'stage_')")
    assert stages == []
    if runs:
        assert len(runs) == 1 and runs[0].requests == rows, runs
        assert [d["run_id"] for d in done] == [runs[0].run_id]
        assert wh.totals(runs[0].run_id)["count"] == rows
        again = wh.ingest(path)
        assert again.duplicate and again.run_id == runs[0].run_id
        outcome = "whole"
    else:
        assert done == [] and wh.backend.query("SELECT count() AS n FROM requests")[0]["n"] == 0
        fresh = wh.ingest(path)
        assert not fresh.duplicate and fresh.rows == rows and wh.totals(fresh.run_id)["count"] == rows
        outcome = "absent"
    release(wh)
    return outcome


def killed_ingest(template: Path, tmp_path: Path, number: int, path: Path, rows: int, kill_at: str = "",
                  after_s: float = 0.0) -> tuple[str, float]:
    """Ingest `path` (`rows` samples) into a copy of the empty warehouse `template`, killed at the commit's step
    `kill_at` or `after_s` seconds after the process started; whether its run is then whole or absent
    (check_whole_or_absent), and how long the process lived."""
    warehouse = tmp_path / f"wh{number}"
    shutil.copytree(template, warehouse, symlinks=True)  # chdb links metadata to its store relatively
    url = f"chdb://{warehouse}"
    started = time.monotonic()
    proc = ingest_process(url, path, kill_at=kill_at)
    if kill_at:
        proc.wait(600)
        assert proc.returncode == -signal.SIGKILL, f"{kill_at}: not reached: {proc.stderr.read()!r}"  # type: ignore[union-attr]
    else:
        time.sleep(after_s)
        proc.send_signal(signal.SIGKILL)
        proc.wait(600)
    lived = time.monotonic() - started
    outcome = check_whole_or_absent(url, path, rows)
    shutil.rmtree(warehouse)
    return outcome, lived


def empty_warehouse(tmp_path: Path) -> Path:
    template = tmp_path / "template"
    release(Warehouse.open(f"chdb://{template}"))
    return template


def test_an_ingest_killed_at_each_step_of_its_commit_leaves_its_run_whole_or_absent(staged_jtl: Path,
                                                                                     tmp_path: Path) -> None:
    """The commit is the done record: every step before it takes the run back, every step after keeps it."""
    template = empty_warehouse(tmp_path)
    outcomes = [killed_ingest(template, tmp_path, number, staged_jtl, STAGED_ROWS, kill_at=step)[0]
                for number, step in enumerate(STEPS)]
    assert outcomes == ["absent"] * 10 + ["whole"] * 2


def test_an_ingest_killed_at_any_moment_of_its_load_leaves_its_run_whole_or_absent(big_jtl: Path,
                                                                                   tmp_path: Path) -> None:
    template = empty_warehouse(tmp_path)
    # an uninterrupted ingest's duration: the process killed at its last step (its run is whole)
    outcome, full_s = killed_ingest(template, tmp_path, 0, big_jtl, ROWS, kill_at=STEPS[-1])
    assert outcome == "whole"
    outcomes = {f"{at:.0%} of the ingest": killed_ingest(template, tmp_path, number, big_jtl, ROWS,
                                                                   after_s=at * full_s)[0]
                for number, at in enumerate(FRACTIONS, start=1)}
    assert len(outcomes) == len(FRACTIONS) >= 10, outcomes


@pytest.mark.parametrize("step", ["attaching-recorded", "partition-attached", "run-recorded", "done-recorded"])
def test_a_killed_ingest_on_a_server_is_taken_back_or_kept(step: str, tmp_path: Path,
                                                          request: pytest.FixtureRequest) -> None:
    """The same commit on a ClickHouse server: the next open finds the killed process's batch dead."""
    url = make_warehouse_url("server", tmp_path, request)
    Warehouse.open(url)
    path = tmp_path / "r.jtl"
    write_jtl(path, 50_000)
    proc = ingest_process(url, path, kill_at=step)
    proc.wait(300)
    assert proc.returncode == -signal.SIGKILL
    assert check_whole_or_absent(url, path, 50_000) == ("whole" if step == "done-recorded" else "absent")


@pytest.mark.parametrize("step", ["attached-requests", "run-recorded"])
def test_ctrl_c_before_the_commit_takes_the_run_back_at_once(step: str, any_warehouse_url: str,
                                                             tmp_path: Path) -> None:
    """Interrupted (SIGINT, as Ctrl-C) before its commit, the ingest undoes itself before it exits."""
    path = tmp_path / "r.jtl"
    write_jtl(path, 50_000)
    release(Warehouse.open(any_warehouse_url))
    proc = ingest_process(any_warehouse_url, path, kill_at=step, signal_name="INT")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and b"Traceback" not in err, err
    wh = Warehouse.open(any_warehouse_url)
    assert wh.runs() == [] and wh.backend.query("SELECT count() AS n FROM requests") == [{"n": 0}]
    assert wh.backend.query("SELECT state FROM ingested_files FINAL") == [{"state": "failed"}]
    release(wh)
    assert check_whole_or_absent(any_warehouse_url, path, 50_000) == "absent"


def test_a_run_name_the_engine_refuses_leaves_nothing(any_warehouse_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose record cannot be written takes its rows back with it, and the file can be ingested again."""
    from warehouse.errors import WarehouseError

    wh = Warehouse.open(any_warehouse_url)
    path = tmp_path / "r.jtl"
    write_jtl(path, 1000)
    save = wh.save_run

    def refusing(info: object) -> None:
        raise WarehouseError("the run's record was refused")

    monkeypatch.setattr(wh, "save_run", refusing)
    with pytest.raises(WarehouseError, match="refused"):
        wh.ingest(path)
    monkeypatch.setattr(wh, "save_run", save)
    assert wh.backend.query("SELECT count() AS n FROM requests")[0]["n"] == 0 and wh.runs() == []
    result = wh.ingest(path)
    assert not result.duplicate and wh.totals(result.run_id)["count"] == 1000


def test_rows_an_earlier_version_left_without_a_run_are_rolled_back(any_warehouse_url: str, tmp_path: Path) -> None:
    """Before migration 8 a kill between the done record and the run's record left rows no run owned while
    the file counted as ingested: opening the warehouse rolls such a batch back and the file ingests again.
    The state is made by taking a run's record away; then migration 8 runs as on a warehouse of version 7."""
    wh = Warehouse.open(any_warehouse_url)
    path = tmp_path / "r.jtl"
    write_jtl(path, 1000)
    lost = wh.ingest(path)
    wh.backend.command("DELETE FROM runs WHERE run_id = {r:String}", {"r": lost.run_id})
    assert wh.ingest(path).duplicate  # "already ingested as run X", and X does not exist
    (eight,) = [statements for version, _, statements in schema.MIGRATIONS if version == 8]
    for statement in eight:
        assert callable(statement)
        statement(wh.backend)
    assert wh.backend.query("SELECT count() AS n FROM requests")[0]["n"] == 0
    result = wh.ingest(path)
    assert not result.duplicate and wh.run(result.run_id).run_id == result.run_id
    assert wh.totals(result.run_id)["count"] == 1000


def stopped(proc: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    """Wait until `proc` has stopped itself (SIGSTOP at a checkpoint)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return
        assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
        time.sleep(0.05)
    raise AssertionError("the first ingest never reached its claim")


def claimed_and_waiting(
    tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """A server warehouse, a first ingest of a 20,000-line JTL stopped right after its claim, and a second ingest
    of the same file waiting on that claim: (url, first, second)."""
    url = make_warehouse_url("server", tmp_path, request)
    Warehouse.open(url)
    path = tmp_path / "r.jtl"
    write_jtl(path, 20_000)
    first = ingest_process(url, path, kill_at="claimed", signal_name="STOP")
    stopped(first)
    second = subprocess.Popen([sys.executable, "-m", "orchestrator", "--warehouse", url, "ingest", str(path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(3)  # loading 20,000 lines takes well under this; then the second waits on the first's claim
    assert second.poll() is None, second.communicate()
    return url, first, second


def test_two_ingests_of_one_file_at_once_commit_it_once(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Two processes ingest one file into a server at once: the second finds the content claimed by the
    first, waits for it, and ends as a duplicate of its run; the rows are there once."""
    url, first, second = claimed_and_waiting(tmp_path, request)
    first.send_signal(signal.SIGCONT)
    assert first.wait(120) == 0, first.stderr.read()  # type: ignore[union-attr]
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    wh = Warehouse.open(url)
    (run,) = wh.runs()
    assert run.requests == 20_000 and wh.totals(run.run_id)["count"] == 20_000
    assert run.run_id.encode() in out and b"already" in out, out
    assert len(wh.backend.query("SELECT batch FROM ingested_files FINAL WHERE state = 'done'")) == 1


def test_an_ingest_waiting_on_a_claim_whose_process_died_commits_the_file(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The claimant is killed while the second ingest waits: the second takes its batch back and commits."""
    url, first, second = claimed_and_waiting(tmp_path, request)
    first.send_signal(signal.SIGKILL)
    first.wait(60)  # reaped: a zombie's pid would still look alive
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0 and b"already" not in out, (out, err)
    wh = Warehouse.open(url)
    (run,) = wh.runs()
    assert wh.totals(run.run_id)["count"] == 20_000
    states = sorted(r["state"] for r in wh.backend.query("SELECT state FROM ingested_files FINAL"))
    assert states == ["done", "failed"]


@pytest.mark.parametrize("step", DIRECT_STEPS)
def test_a_small_file_killed_as_it_loads_directly_leaves_its_run_whole_or_absent(step: str, any_warehouse_url: str,
                                                                                 tmp_path: Path) -> None:
    """A small file skips the staging tables under the same commit: killed at any step before its done record,
    the next open takes its run and rows back; after it, the run is whole. ("loaded" is a step of this path
    only: the process reaching it shows the file loaded directly.)"""
    path = tmp_path / "k6.json"
    write_k6_json(path, K6_REQUESTS)
    release(Warehouse.open(any_warehouse_url))
    proc = ingest_process(any_warehouse_url, path, kill_at=step)
    proc.wait(300)
    assert proc.returncode == -signal.SIGKILL, f"{step}: not reached: {proc.stderr.read()!r}"  # type: ignore[union-attr]
    assert check_whole_or_absent(any_warehouse_url, path, K6_REQUESTS) == (
        "whole" if step == "done-recorded" else "absent")


def test_a_small_file_with_a_bad_line_is_staged_and_counts_it(any_warehouse_url: str, tmp_path: Path) -> None:
    """A small file whose strict read fails is undone and staged instead: the valid lines are kept, the bad one
    counted, as for a large file; the direct attempt leaves no row behind."""
    path = tmp_path / "k6.json"
    write_k6_json(path, K6_REQUESTS, garbled_at=7)
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(path)
    assert result.rejected == 1 and result.samples[0].line == 1 + 7 * 5 + 1
    assert result.rows == K6_REQUESTS - 1 and wh.totals(result.run_id)["count"] == K6_REQUESTS - 1
    points = wh.backend.query("SELECT uniqExact(batch) AS batches, count() AS n FROM k6_points")[0]
    assert points == {"batches": 1, "n": K6_REQUESTS * 5 - 1}
    states = wh.backend.query("SELECT state, new_run FROM ingested_files FINAL ORDER BY state")
    assert states == [{"state": "done", "new_run": 1}, {"state": "failed", "new_run": 1}]
    assert [r.run_id for r in wh.runs()] == [result.run_id]
    release(wh)
