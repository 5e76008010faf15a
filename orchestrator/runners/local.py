"""The local runner: each part of a job as a child process in its own process group, logs to files.

The tools die with perfhouse: each is started with the parent-death signal set (setpriv --pdeathsig, when
util-linux has it), and the job's watchdog kills each part's whole process group (a shell wrapper such as
JMeter's and the JVM it starts) if perfhouse dies without stopping them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from contextlib import ExitStack
from typing import ClassVar

from orchestrator.runners.base import Execution, Job, RunnerOptions, StopRequest, Target, register, supervise
from orchestrator.tool_versions import cached_version
from orchestrator.tools import Tool, require
from orchestrator.watchdog import dies_with_parent

POLL_S = 0.02  # how often the processes are looked at: a run ends this soon after its tool does


@register
class LocalRunner:
    name: ClassVar[str] = "local"
    on_this_host: ClassVar[bool] = True
    inherits_fds: ClassVar[bool] = True

    def __init__(self) -> None:
        self._versions: dict[str, str] = {}  # binary -> version; JMeter takes seconds to say it

    def target(self, tool: Tool, options: RunnerOptions) -> Target:
        _, binary = require(tool.name)
        if binary not in self._versions:  # asked of the program once for as long as it stays the same
            self._versions[binary] = cached_version(tool.name, binary, tool.version)
        return Target(binary, self._versions[binary])

    def execute(self, job: Job) -> Execution:
        started = time.monotonic()
        procs: list[subprocess.Popen[bytes]] = []
        with ExitStack() as stack, StopRequest().on_signals() as stop_request:
            try:
                for part in job.parts:
                    out = stack.enter_context(open(part.log, "ab"))
                    procs.append(
                        subprocess.Popen(
                            [*dies_with_parent(), *part.argv],
                            cwd=job.directory,
                            stdout=out,
                            stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                            env={**os.environ, **job.env},
                            start_new_session=True,
                            pass_fds=job.fds,
                        )
                    )
                    if job.watchdog is not None:
                        job.watchdog.guard_group(procs[-1].pid)  # its own session: the group id is its pid
                interrupted, timed_out = supervise(
                    job,
                    alive=lambda: any(p.poll() is None for p in procs),
                    stop=lambda: _signal_all(procs, job.tool.stop_signal),
                    kill=lambda: _signal_all(procs, signal.SIGKILL),
                    stop_request=stop_request,
                    started=started,
                    clock=time.monotonic,
                    sleep=lambda _: time.sleep(POLL_S),
                )
            finally:
                _signal_all(procs, signal.SIGKILL)
                for p in procs:
                    p.wait()
                    if job.watchdog is not None:
                        job.watchdog.forget_group(p.pid)
        codes = tuple(p.returncode for p in procs)
        return Execution(codes, interrupted, timed_out, tuple(p.log for p in job.parts), time.monotonic() - started)


def _signal_all(procs: list[subprocess.Popen[bytes]], sig: int) -> None:
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
