"""Which process owns a running run, whether it is still alive, and aborting the runs whose owner died.

A run in progress carries the label `perfhouse.owner` = `host:pid:start` (the start time of the process in
clock ticks since boot, so a pid reused by another program is not taken for the owner). A run still
`running` whose owner on this host is gone (kill -9, out of memory, power) is marked aborted when a
warehouse opens. Runs owned by another host are left alone: their owner cannot be checked from here.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warehouse.engine.backends import Backend

OWNER_LABEL = "perfhouse.owner"

# A running run whose owner died becomes aborted; every other column (whatever migrations add) is kept.
# Columns are named through the table (r.status): a bare name would be the replacing alias, in WHERE too.
ABORT_RUN = """
INSERT INTO runs
SELECT * REPLACE ('aborted' AS status, now64(3) AS ended_at, now64(6) AS updated_at,
                  concat(r.notes, if(r.notes = '', '', '; '), {note:String}) AS notes,
                  mapFilter((k, v) -> k != {label:String}, r.labels) AS labels)
FROM runs AS r FINAL
WHERE r.run_id = {run:String} AND r.status = 'running'
"""


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    start: str  # the process's start time in clock ticks since boot ("" when unknown)

    @property
    def token(self) -> str:
        return f"{self.host}:{self.pid}:{self.start}"

    @classmethod
    def parse(cls, token: str) -> Owner | None:
        host, _, rest = token.rpartition(":")
        host, _, pid = host.rpartition(":")
        if not host or not pid.isdigit():
            return None
        return cls(host, int(pid), rest)

    def alive(self) -> bool | None:
        """Is the owner still running? None when it lives on another host (cannot be told from here)."""
        if self.host != socket.gethostname():
            return None
        start = process_start(self.pid)
        return start is not None and (not self.start or start == self.start)

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def process_start(pid: int) -> str | None:
    """The start time of a process (clock ticks since boot, from /proc), or None when there is no such process."""
    try:
        stat = open(f"/proc/{pid}/stat", encoding="ascii", errors="replace").read()  # noqa: SIM115
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return ""
        return ""
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def me() -> Owner:
    return Owner(socket.gethostname(), os.getpid(), process_start(os.getpid()) or "")


# A scratch directory of a process: perfhouse-KIND.PID.START.RANDOM in the temporary directory.
_SCRATCH = re.compile(r"perfhouse-[a-z0-9]+\.(\d+)\.(\d*)\..+")


def scratch_dir(kind: str) -> tempfile.TemporaryDirectory[str]:
    """A temporary directory named for this process (`perfhouse-KIND.PID.START.*`), removed when the work is done;
    one left by a process that was killed (a decompressed copy of a gzip, say) is removed by `sweep_scratch`."""
    owner = me()
    return tempfile.TemporaryDirectory(prefix=f"perfhouse-{kind}.{owner.pid}.{owner.start}.")


def sweep_scratch(root: Path | None = None) -> list[Path]:
    """Remove the scratch directories whose process is dead (never one of a live process); returns them."""
    root = root or Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _SCRATCH.fullmatch(entry.name)
        if m is None or not entry.is_dir() or entry.is_symlink():
            continue
        if Owner(socket.gethostname(), int(m[1]), m[2]).alive() is False:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def abort_orphaned_runs(backend: Backend) -> list[str]:
    """Mark aborted every running run whose owner on this host is gone; returns their ids."""
    from warehouse.read import queries  # SQL loads with the warehouse, not with every user of the owner label

    aborted = []
    for row in backend.query(queries.OWNED_RUNNING_RUNS, {"label": OWNER_LABEL}):
        owner = Owner.parse(str(row["owner"]))
        if owner is None or owner.alive() is not False:
            continue
        note = f"aborted: its perfhouse ({owner.describe()}) died while the run went"
        backend.command(ABORT_RUN, {"run": row["run_id"], "note": note, "label": OWNER_LABEL})
        aborted.append(str(row["run_id"]))
    return aborted
