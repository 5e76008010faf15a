"""The record layouts of Gatling's text simulation.log, by version, and its RUN record: pure logic, no I/O.

Gatling writes one record a line, fields separated by tabs (its writer turns tabs and line breaks inside a field
into spaces), lines ended by the JVM's line separator. The record type and the columns changed between versions
(read from Gatling's own writer, FileDataWriter in 2.0–2.1 and LogFileDataWriter after it):

- 2.0–2.1: the type is the third field, after the scenario and the user id. A request keeps four times (first
  byte sent, last byte sent, first byte received, last byte received); Gatling's response time is the last byte
  received less the first byte sent, its latency the first byte received less the last byte sent. Fields past
  the message are the request's extra info. 2.1 writes its assertions first, one line each, starting ASSERTION.
- 2.2–2.3: the type comes first. RUN carries the user's and the default simulation id; REQUEST has scenario,
  user id, groups, name, start, end, status, message (and extra info). An error is written as a GROUP record of
  three fields (message, time).
- 3.0–3.3: the scenario column is gone from REQUEST and GROUP; a request names its user, whose USER START record
  names the scenario. ERROR records appear; the extra info is gone. RUN ends with Gatling's version.
- 3.4–3.12: the user id is gone from REQUEST, GROUP and USER: a request's scenario is no longer recorded.
- 3.13 on: a binary file (see `binary`).

Times are Unix milliseconds. A request's status is OK or KO; a KO's message says why (an OK's is usually " ").
Groups are a comma-separated path (Gatling turns commas in a group's name into spaces).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

KINDS = ("RUN", "USER", "REQUEST", "GROUP", "ERROR", "ASSERTION")
# The separator of a step's group path and request name, as Gatling's reports show a request inside groups.
PATH_SEPARATOR = " / "


@dataclass(frozen=True)
class Layout:
    """Where a version's records keep their fields (1-based, as ClickHouse indexes arrays; 0: not written)."""

    versions: str
    kind: int  # the field holding the record type
    fields: dict[str, tuple[int, ...]]  # record type -> the numbers of fields it has
    scenario: int  # REQUEST: the scenario
    user: int  # REQUEST: the virtual user's id
    groups: int
    name: int
    start: int
    end: int
    status: int
    message: int
    extra: bool = False  # REQUEST may have fields past the message (its extra info)
    waiting: tuple[int, int] | None = None  # REQUEST: (last byte sent, first byte received)
    user_scenario: tuple[int, int] | None = None  # USER: (user id, scenario) when requests name their user
    user_event: int = 0  # USER: START or END
    scenario_in_user: int = 0  # USER: the scenario
    group_errors: bool = False  # an error is written as a GROUP record of three fields
    group_separator: str = ","  # between the groups of a path

    @property
    def timestamps(self) -> tuple[int, ...]:
        """The REQUEST fields that hold times."""
        return (self.start, self.end, *(self.waiting or ()))


LAYOUTS: dict[str, Layout] = {
    "2.0": Layout(
        "2.0–2.1", kind=3, fields={"RUN": (6,), "USER": (6,), "REQUEST": (11,), "GROUP": (10,)},
        scenario=1, user=2, groups=4, name=5, start=6, end=9, status=10, message=11, extra=True, waiting=(7, 8),
        user_event=4, scenario_in_user=1,
    ),
    "2.2": Layout(
        "2.2–2.3", kind=1, fields={"RUN": (7,), "USER": (6,), "REQUEST": (9,), "GROUP": (8, 3)},
        scenario=2, user=3, groups=4, name=5, start=6, end=7, status=8, message=9, extra=True,
        user_event=4, scenario_in_user=2, group_errors=True,
    ),
    "3.0": Layout(
        "3.0–3.3", kind=1, fields={"RUN": (6,), "USER": (6,), "REQUEST": (8,), "GROUP": (7,), "ERROR": (3,)},
        scenario=0, user=2, groups=3, name=4, start=5, end=6, status=7, message=8,
        user_scenario=(3, 2), user_event=4, scenario_in_user=2,
    ),
    "3.4": Layout(
        "3.4–3.12", kind=1, fields={"RUN": (6,), "USER": (4,), "REQUEST": (7,), "GROUP": (6,), "ERROR": (3,)},
        scenario=0, user=0, groups=2, name=3, start=4, end=5, status=6, message=7,
        user_event=3, scenario_in_user=2,
    ),
    # The binary file of 3.13 on, as `binary` writes it out as text: 3.4's columns, groups apart by a character
    # that no name holds (names are sanitized), since a group's name may hold a comma there.
    "3.13": Layout(
        "3.13 on", kind=1, fields={"RUN": (6,), "USER": (4,), "REQUEST": (7,), "GROUP": (6,), "ERROR": (3,)},
        scenario=0, user=0, groups=2, name=3, start=4, end=5, status=6, message=7,
        user_event=3, scenario_in_user=2, group_separator="\x1f",
    ),
}
KNOWN_VERSIONS = "Gatling's text simulation.log of 2.0 to 3.12 and its binary one of 3.13 on"


@dataclass(frozen=True)
class RunRecord:
    """A file's RUN record: its line, layout and what it says of the run."""

    line: int
    layout: Layout
    simulation: str  # the simulation's class
    simulation_id: str
    start_ms: int
    description: str
    version: str  # Gatling's version (3.x); 2.x writes "2.0", its log format's version

    @property
    def started_at(self) -> str:
        """The run's start as ClickHouse text in UTC."""
        moment = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=self.start_ms)
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


class UnknownLayout(ValueError):
    """A file that looks like a simulation.log whose RUN record no known version writes."""


def split_line(line: bytes) -> list[str]:
    return line.rstrip(b"\r").decode(errors="replace").split("\t")


def looks_like_text_log(head: bytes) -> bool:
    """Does the file start as a text simulation.log does: a RUN record or an ASSERTION? The type comes first, or
    third in 2.0–2.1's RUN record of six fields ending "2.0" (a headerless tab-separated JTL whose first label
    is RUN has it third too, in more fields)."""
    first = split_line(head.split(b"\n", 1)[0])
    return first[0] in ("RUN", "ASSERTION") or (len(first) == 6 and first[2] == "RUN" and first[5] == "2.0")


_VERSION = re.compile(r"(\d+)\.(\d+)(?:[.\-][0-9A-Za-z.\-]*)?")
_MILLIS = re.compile(r"[0-9]{1,15}")


def run_record(head: bytes) -> RunRecord:
    """The RUN record of a text simulation.log (its first line after any ASSERTION lines) and the layout it implies.
    Raises UnknownLayout, saying what was found, when no known version writes it."""
    lines = head.split(b"\n")
    complete = [split_line(raw) for raw in (lines[:-1] if len(lines) > 1 else lines)]
    for number, f in enumerate(complete, 1):
        if f[0] != "ASSERTION":
            return _run_of(f, number, complete[number:])
    raise UnknownLayout(f"{len(complete)}: no RUN record after the ASSERTION lines (a simulation.log starts with one)")


def _run_of(f: list[str], line: int, after: list[list[str]]) -> RunRecord:
    def start(value: str) -> int:
        if not _MILLIS.fullmatch(value):
            raise UnknownLayout(f"{line}: RUN record: the start time {value[:40]!r} is not Unix milliseconds")
        return int(value)

    if len(f) == 6 and f[2] == "RUN" and f[5] == "2.0":
        return RunRecord(line, LAYOUTS["2.0"], f[0], f[1], start(f[3]), f[4].strip(), f[5])
    if f[0] != "RUN":
        raise UnknownLayout(f"{line}: not a RUN record: {chr(9).join(f)[:80]!r}")
    if len(f) == 7 and f[6] == "2.0":
        return RunRecord(line, LAYOUTS["2.2"], f[1], f[2] or f[3], start(f[4]), f[5].strip(), f[6])
    if len(f) == 6:
        version = _VERSION.fullmatch(f[5].strip())
        known = version is not None and (f[5] == "2.0" or (int(version[1]) == 3 and int(version[2]) <= 12))
        if not known:
            raise UnknownLayout(f"{line}: a simulation.log of Gatling {f[5][:40]!r}, a version whose layout "
                                f"perfhouse does not know; it reads {KNOWN_VERSIONS}")
        layout = _layout_3x(after, version)
        return RunRecord(line, layout, f[1], f[2], start(f[3]), f[4].strip(), f[5].strip())
    raise UnknownLayout(f"{line}: a RUN record of {len(f)} fields, which no Gatling version writes; perfhouse reads "
                        f"{KNOWN_VERSIONS}")


def _layout_3x(after: list[list[str]], version: re.Match[str] | None) -> Layout:
    """3.0–3.3 or 3.4–3.12, by the first USER or REQUEST record that tells them apart (their field counts differ),
    else by the version the RUN record names. By structure first: files written by hand, Gatling's own test files
    among them, keep a RUN record of version "2.0" in the 3.x layouts."""
    for f in after:
        for key in ("3.0", "3.4"):
            if f[0] in ("USER", "REQUEST") and len(f) in LAYOUTS[key].fields[f[0]]:
                return LAYOUTS[key]
    if version is not None and version[1] == "3" and int(version[2]) <= 3:
        return LAYOUTS["3.0"]
    return LAYOUTS["3.4"]
