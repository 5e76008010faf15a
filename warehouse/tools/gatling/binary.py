"""Gatling's binary simulation.log (3.13 on), written out as text records for the SQL that reads the text format.

Read from Gatling's own LogFileDataWriter (3.13 to today): big-endian numbers; a record is a type byte (RUN 0,
REQUEST 1, USER 2, GROUP 3, ERROR 4) and its fields:

- RUN: Gatling's version, the simulation's class, its start (long, Unix ms), the description, the scenarios
  (int count, strings) and the assertions (int count, each an int length and that many bytes);
- USER: the scenario's index (int), START (bool), its time (int, ms since the run's start);
- REQUEST: the groups (int count, cached strings), the name (cached), start and end (ints, ms since the run's
  start), OK (bool), the message (cached, empty for none);
- GROUP: the groups, start, end, cumulated response time (ints), OK (bool);
- ERROR: the message (cached), its time (int).

A string is an int length and, when not empty, that many bytes and the JVM's coder byte (0: Latin-1, 1: UTF-16
in the JVM's byte order, little-endian on the machines Gatling runs on). A cached string is an int: positive, the
index under which the string that follows is kept; negative, the string kept under its opposite. Gatling's reader
replaces tabs and line breaks in names with spaces, and so does this.

Decoding streams (bounded memory). A record cut short or of an unknown type ends the decoding: every record
before it is kept and the damage counted as one rejected record, as a damaged gzip is.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from warehouse.ingest.formats import Rejected
from warehouse.tools.gatling.layouts import KNOWN_VERSIONS, LAYOUTS, RunRecord

RUN, REQUEST, USER, GROUP, ERROR = range(5)
MAX_STRING = 16 << 20  # a longer string is damage: Gatling's names and messages are short
_VERSION = re.compile(rb"\d+\.\d+[0-9A-Za-z.\-]*")
_INT, _LONG = struct.Struct(">i"), struct.Struct(">q")


class Unreadable(ValueError):
    """A binary simulation.log whose RUN record cannot be read."""


class _Cut(Exception):
    """The data ends inside a record, or holds what no Gatling writes there."""


def looks_binary(head: bytes) -> bool:
    """A RUN type byte, then Gatling's version as a string (length, digits, coder byte)."""
    if len(head) < 6 or head[0] != RUN:
        return False
    size = _INT.unpack_from(head, 1)[0]
    return 3 <= size <= 64 and _VERSION.fullmatch(head[5 : 5 + size]) is not None


class _Reader:
    """Big-endian numbers and strings from a stream, read in blocks of a MiB (bounded memory)."""

    BLOCK = 1 << 20

    def __init__(self, fh: BinaryIO) -> None:
        self.fh, self.buffer, self.at, self.consumed = fh, b"", 0, 0  # consumed: bytes of the file before buffer
        self.cache: dict[int, str] = {}

    @property
    def offset(self) -> int:
        return self.consumed + self.at

    def take(self, n: int) -> bytes:
        end = self.at + n
        if end > len(self.buffer):
            self.consumed += self.at
            self.buffer = self.buffer[self.at :] + self.fh.read(max(n, self.BLOCK))
            self.at, end = 0, n
            if end > len(self.buffer):
                raise _Cut(f"the file ends inside a record (byte {self.consumed + len(self.buffer)})")
        data, self.at = self.buffer[self.at : end], end
        return data

    def at_end(self) -> bool:
        if self.at < len(self.buffer):
            return False
        self.consumed += self.at
        self.buffer, self.at = self.fh.read(self.BLOCK), 0
        return not self.buffer

    def byte(self) -> int:
        return self.take(1)[0]

    def int32(self) -> int:
        return int(_INT.unpack(self.take(4))[0])

    def long(self) -> int:
        return int(_LONG.unpack(self.take(8))[0])

    def string(self) -> str:
        size = self.int32()
        if size == 0:
            return ""
        if not 0 < size <= MAX_STRING:
            raise _Cut(f"a string of {size} bytes at byte {self.offset - 4}")
        value, coder = self.take(size), self.byte()
        if coder == 0:
            return value.decode("latin-1")
        if coder == 1:
            return value.decode("utf-16-le", errors="replace")
        raise _Cut(f"a string coder {coder} at byte {self.offset - 1} (0 or 1 expected)")

    def cached(self) -> str:
        index = self.int32()
        if index > 0:
            self.cache[index] = text = _clean(self.string())
            return text
        if -index not in self.cache:
            raise _Cut(f"a reference to string {-index}, never written, at byte {self.offset - 4}")
        return self.cache[-index]

    def groups(self) -> str:
        count = self.int32()
        if not 0 <= count <= 1024:
            raise _Cut(f"a group path of {count} groups at byte {self.offset - 4}")
        return "\x1f".join(self.cached() for _ in range(count))


def _clean(text: str) -> str:
    """A name as a text field: tabs, line breaks (Gatling's reader does so) and the group separator as spaces."""
    return text.translate({9: " ", 10: " ", 13: " ", 0x1F: " "})


@dataclass
class Decoded:
    run: RunRecord
    records: int = 0
    damage: Rejected | None = None


def _read_run(reader: _Reader) -> tuple[RunRecord, list[str]]:
    """The RUN record and the run's scenarios, by index."""
    if reader.byte() != RUN:
        raise _Cut("the file does not start with a RUN record")
    version, simulation, start = reader.string(), reader.string(), reader.long()
    description = reader.string()
    scenarios = [_clean(reader.string()) for _ in range(_count(reader, "scenarios"))]
    for _ in range(_count(reader, "assertions")):
        size = reader.int32()
        if not 0 <= size <= MAX_STRING:
            raise _Cut(f"an assertion of {size} bytes")
        reader.take(size)
    return RunRecord(1, LAYOUTS["3.13"], _clean(simulation), "", start, _clean(description).strip(), version), scenarios


def _count(reader: _Reader, what: str) -> int:
    count = reader.int32()
    if not 0 <= count <= 1 << 20:
        raise _Cut(f"{count} {what} in the RUN record")
    return count


def _check_version(version: str) -> None:
    match = re.fullmatch(r"(\d+)\.(\d+).*", version)
    # Gatling's own sample of the format names 3.12.1, the development version that introduced it before 3.13
    if not match or int(match[1]) != 3 or int(match[2]) < 12:
        raise Unreadable(f"1: a binary simulation.log of Gatling {version[:40]!r}, a version whose layout perfhouse "
                         f"does not know; it reads {KNOWN_VERSIONS}")


def run_record(head: bytes) -> RunRecord:
    """The RUN record at the start of a binary simulation.log."""
    import io

    try:
        run = _read_run(_Reader(io.BytesIO(head)))[0]
    except _Cut as exc:
        raise Unreadable(f"1: the RUN record cannot be read: {exc}") from None
    _check_version(run.version)
    return run


def to_text(path: Path, out: Path) -> Decoded:
    """Write the records of binary simulation.log `path` to `out` as text lines of the 3.13 layout, record n on line
    n; what the decoding met that ended it comes back as `damage`."""
    with open(path, "rb", buffering=1 << 20) as fh, open(out, "w", encoding="utf-8", newline="\n") as text:
        reader = _Reader(fh)
        try:
            run, scenarios = _read_run(reader)
        except _Cut as exc:
            raise Unreadable(f"1: the RUN record cannot be read: {exc}") from None
        _check_version(run.version)
        text.write(f"RUN\t{run.simulation}\t\t{run.start_ms}\t{run.description or ' '}\t{_clean(run.version)}\n")
        decoded = Decoded(run, 1)
        start = run.start_ms
        while not reader.at_end():
            kind = reader.byte()
            try:
                text.write(_record(reader, kind, start, scenarios))
            except _Cut as exc:
                decoded.damage = Rejected(decoded.records + 1, f"binary record {decoded.records + 1}: {exc}; the "
                                          "rest of the file is lost", "")
                break
            decoded.records += 1
    return decoded


def _status(ok: int) -> str:
    return "OK" if ok else "KO"


def _record(r: _Reader, kind: int, start: int, scenarios: list[str]) -> str:
    if kind == REQUEST:
        groups, name = r.groups(), r.cached()
        begin, end, ok, message = r.int32(), r.int32(), r.byte(), r.cached()
        return f"REQUEST\t{groups}\t{name}\t{start + begin}\t{start + end}\t{_status(ok)}\t{message or ' '}\n"
    if kind == USER:
        index, begins, at = r.int32(), r.byte(), r.int32()
        if not 0 <= index < len(scenarios):
            raise _Cut(f"scenario {index} of a run with {len(scenarios)} at byte {r.offset - 9}")
        return f"USER\t{scenarios[index]}\t{'START' if begins else 'END'}\t{start + at}\n"
    if kind == GROUP:
        groups, begin, end, cumulated, ok = r.groups(), r.int32(), r.int32(), r.int32(), r.byte()
        return f"GROUP\t{groups}\t{start + begin}\t{start + end}\t{cumulated}\t{_status(ok)}\n"
    if kind == ERROR:
        message, at = r.cached(), r.int32()
        return f"ERROR\t{message}\t{start + at}\n"
    raise _Cut(f"a record of unknown type {kind} at byte {r.offset - 1}")
