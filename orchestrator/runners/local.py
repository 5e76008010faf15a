"""The local runner: the tool as a child process in its own process group, logs to a file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from types import FrameType
from typing import ClassVar

from orchestrator.runners.base import Execution, register

GRACE_S = 15.0


@register
class LocalRunner:
    name: ClassVar[str] = "local"

    def execute(self, argv: list[str], cwd: Path, log: Path, timeout_s: float | None) -> Execution:
        started = time.monotonic()
        interrupted = False

        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

            def stop(signum: int, frame: FrameType | None) -> None:
                nonlocal interrupted
                interrupted = True
                _signal_group(proc, signal.SIGINT)  # both tools end gracefully and flush on SIGINT

            previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
            timed_out = False
            try:
                deadline = None if timeout_s is None else started + timeout_s
                while proc.poll() is None:
                    if deadline is not None and time.monotonic() > deadline and not timed_out:
                        timed_out = True
                        _signal_group(proc, signal.SIGINT)
                    if (interrupted or timed_out) and _waited(proc, GRACE_S):
                        break
                    time.sleep(0.1)
            finally:
                if proc.poll() is None:
                    _signal_group(proc, signal.SIGKILL)
                    proc.wait()
                for s, handler in previous.items():
                    signal.signal(s, handler)
        return Execution(proc.returncode, interrupted, timed_out, log, time.monotonic() - started)


def _waited(proc: subprocess.Popen[bytes], grace_s: float) -> bool:
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
    return True


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
