"""The watchdog: a process of its own that undoes what a run started when perfhouse dies without ending it.

perfhouse starts it (`Watchdog`) with a pipe as its standard input, in a session of its own so a signal to
perfhouse's process group does not reach it, and tells it line by line what a dead perfhouse would leave
behind: tool process groups, files holding secrets, containers. When perfhouse ends the run it says `done`
and the watchdog exits. When the pipe reaches its end without `done`, perfhouse is gone (kill -9, out of
memory): the watchdog kills the process groups (a JMeter shell wrapper and its JVM alike), removes the files
and force-removes the containers (with the secrets in their environment), then exits. What it did goes to
the log file it was given (`watchdog.log` in the run directory).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

STOP_S = 10.0  # how long perfhouse waits for its watchdog to exit after `done`


def dies_with_parent(signal_name: str = "KILL") -> list[str]:
    """An argv prefix that sends the program a signal when perfhouse dies (Linux's parent-death signal,
    through util-linux's setpriv; nothing where setpriv is missing). It is set for the program itself: a
    process it starts in turn is the watchdog's to stop (by process group)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", signal_name, "--"] if setpriv else []


class Watchdog:
    """perfhouse's side: start the watchdog process, tell it what to undo, and release it at the end."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.watchdog", str(log)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd="/",
        )

    def _say(self, op: str, value: Any = None) -> None:
        stdin = self._proc.stdin
        if stdin is None or stdin.closed:
            return
        with contextlib.suppress(BrokenPipeError, ValueError):
            stdin.write(json.dumps({"op": op, "value": value}).encode() + b"\n")
            stdin.flush()

    def guard_group(self, pgid: int) -> None:
        self._say("group", pgid)

    def forget_group(self, pgid: int) -> None:
        """The group's leader was waited for: its id may be reused, never kill it later."""
        self._say("forget-group", pgid)

    def guard_file(self, path: Path) -> None:
        self._say("file", str(path))

    def forget_file(self, path: Path) -> None:
        self._say("forget-file", str(path))

    def guard_container(self, container_id: str) -> None:
        self._say("container", container_id)

    def forget_container(self, container_id: str) -> None:
        self._say("forget-container", container_id)

    def guard_run(self, warehouse: str, fields: dict[str, Any]) -> None:
        """The run's row (warehouse.store.RunInfo fields), for the watchdog to record as aborted if perfhouse dies
        before it writes the row itself."""
        self._say("run", {"warehouse": warehouse, "fields": fields})

    def forget_run(self) -> None:
        self._say("forget-run")

    def close(self) -> None:
        """The run ended in order: the watchdog undoes nothing and exits. It is reaped in a thread, so that
        perfhouse goes on storing the run meanwhile (the watchdog's exit takes a few hundredths of a second)."""
        self._say("done")
        if self._proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
        threading.Thread(target=self._reap, name="perfhouse-watchdog-reap", daemon=True).start()

    def _reap(self) -> None:
        try:
            self._proc.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> Watchdog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def watch(commands: IO[bytes], log: Path) -> int:
    """The watchdog's side: collect what to undo until `done` (exit) or the end of the pipe (undo it all)."""
    groups: set[int] = set()
    files: set[str] = set()
    containers: set[str] = set()
    run: dict[str, Any] | None = None
    for line in commands:
        try:
            message = json.loads(line)
            op, value = message["op"], message.get("value")
        except (ValueError, KeyError, TypeError):
            continue
        if op == "done":
            return 0
        if op == "group":
            groups.add(int(value))
        elif op == "forget-group":
            groups.discard(int(value))
        elif op == "file":
            files.add(str(value))
        elif op == "forget-file":
            files.discard(str(value))
        elif op == "container":
            containers.add(str(value))
        elif op == "forget-container":
            containers.discard(str(value))
        elif op == "run":
            run = dict(value)
        elif op == "forget-run":
            run = None
    undone = undo(groups, files, containers)
    if run is not None:
        undone.append(record_aborted(run))
    if undone:
        with contextlib.suppress(OSError), open(log, "a", encoding="utf-8") as out:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            out.write(f"{stamp} perfhouse died while the run went: " + "; ".join(undone) + "\n")
    return 0


def undo(groups: set[int], files: set[str], containers: set[str]) -> list[str]:
    """Kill, remove and remove: what a dead perfhouse left running or on disk. Returns what was done."""
    done = []
    for pgid in sorted(groups):
        try:
            os.killpg(pgid, signal.SIGKILL)
            done.append(f"killed process group {pgid}")
        except ProcessLookupError:
            pass
        except PermissionError as exc:
            done.append(f"could not kill process group {pgid}: {exc}")
    for path in sorted(files):
        try:
            os.unlink(path)
            done.append(f"removed {path}")
        except FileNotFoundError:
            pass
        except OSError as exc:
            done.append(f"could not remove {path}: {exc}")
    if containers:
        done.extend(_remove_containers(sorted(containers)))
    return done


def record_aborted(run: dict[str, Any]) -> str:
    """Write the row of a run whose perfhouse died before it could, as aborted."""
    try:
        from warehouse.engine.owners import OWNER_LABEL
        from warehouse.store import RunInfo, Warehouse

        info = RunInfo(**run["fields"])
        info.labels.pop(OWNER_LABEL, None)
        Warehouse.open(run["warehouse"]).finish_run(
            info, "aborted", "aborted: its perfhouse died while the run went, before it recorded the run")
        return f"recorded run {info.run_id} as aborted"
    except Exception as exc:  # the warehouse unreachable or busy: the run directory is what is left
        return f"could not record the run as aborted: {exc}"


def _remove_containers(ids: list[str]) -> list[str]:
    try:
        import docker
        import docker.errors

        client = docker.from_env(timeout=60)
    except Exception as exc:  # no SDK, no engine: `perfhouse cleanup` is the way left
        return [f"could not reach the Docker engine to remove {', '.join(ids)}: {exc}"]
    done = []
    for container_id in ids:
        try:
            client.containers.get(container_id).remove(force=True)
            done.append(f"removed container {container_id[:12]}")
        except docker.errors.NotFound:
            pass
        except docker.errors.DockerException as exc:
            done.append(f"could not remove container {container_id[:12]}: {exc}")
    return done


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for perfhouse does not end the watch
    sys.exit(watch(sys.stdin.buffer, Path(sys.argv[1])))
