"""`perfhouse dashboard` takes its Streamlit server with it however it is stopped: SIGTERM, SIGINT, kill -9."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.test_dashboard_screenshot import free_port


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state == "Z"  # exited, only waiting for its parent to read its status


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_stopping_the_dashboard_stops_its_streamlit_server(sig: signal.Signals, tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "orchestrator", "--warehouse", f"chdb://{tmp_path / 'wh'}", "dashboard",
            "--port", str(port)]
    log = tmp_path / "dashboard.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"})
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    break
            assert time.monotonic() < deadline, f"the dashboard did not answer:\n{log.read_text()}"
            time.sleep(0.2)
        (server,) = children(proc.pid)

        os.kill(proc.pid, sig)  # perfhouse alone, not its process group
        code = proc.wait(timeout=60)
        if sig != signal.SIGKILL:
            assert code == 0, log.read_text()
        deadline = time.monotonic() + 30
        while not gone(server) or listening(port):
            assert time.monotonic() < deadline, f"streamlit (pid {server}) outlived perfhouse:\n{log.read_text()}"
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
