"""Result files as ClickHouse reads them: the head a format sniffs, standard input and pipes made files, plain
copies (gzip decompressed up to any damage, a byte order mark left out, lone CR line breaks read as LF), and
the hashes that know a file by its content."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warehouse.engine.owners import scratch_dir
from warehouse.errors import IngestError

BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"


def read_head(path: Path, size: int = 65536) -> bytes:
    """The first bytes of a file's content as the loaders see it: gzip decompressed, a UTF-8 byte order mark
    left out, and line breaks that are CR alone read as LF (see `plain_content`)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(size)
            if head.startswith(GZIP_MAGIC):  # what decompresses, up to a break in the data (see _plain)
                fh.seek(0)
                decomp, head = zlib.decompressobj(wbits=47), b""
                while len(head) < size and not decomp.eof and (block := fh.read(1 << 14)):
                    saved = decomp.copy()
                    try:
                        head += decomp.decompress(block, size - len(head))
                    except zlib.error:
                        head += until_damage(saved, block)
                        break
                head = head[:size]
    except OSError as exc:
        raise IngestError(f"{path}: cannot read: {exc}") from None
    head = head.removeprefix(BOM)
    return head.replace(b"\r", b"\n") if cr_only(head) else head


def until_damage(decomp: Any, block: bytes) -> bytes:
    """What `decomp` gives of `block` before the byte where the data is damaged: fed a byte at a time, so
    everything before the damage comes out, as zcat keeps it (a whole block at once gives nothing on an error)."""
    out = []
    for i in range(len(block)):
        try:
            out.append(decomp.decompress(block[i : i + 1]))
        except zlib.error:
            break
    return b"".join(out)


def cr_only(head: bytes) -> bool:
    """Lines ending in CR alone (classic Mac OS): CRs and not a single LF."""
    return b"\r" in head and b"\n" not in head


STDIN = "-"


@contextlib.contextmanager
def readable(path: Path) -> Iterator[Path]:
    """A regular file to read: the file itself, or for `-` (standard input), a FIFO or another pipe, what it
    gives copied into a temporary file first (read once, streamed), since a file is read more than once."""
    stdin = str(path) == STDIN
    if not stdin:
        if path.is_dir():
            raise IngestError(f"{path}: a directory, not a results file")
        if not path.exists():
            raise IngestError(f"{path}: no such file")
        if path.is_file():
            yield path
            return
    if stdin and sys.stdin.isatty():
        raise IngestError("-: standard input is a terminal; pipe a results file into it (perfhouse ingest - < FILE)")
    with scratch_dir("pipe") as tmp:
        copy = Path(tmp) / ("stdin" if stdin else path.name or "pipe")
        try:
            with open(copy, "wb") as out:
                if stdin:
                    shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
                else:
                    with open(path, "rb") as fh:
                        shutil.copyfileobj(fh, out, 1 << 20)
        except OSError as exc:
            raise IngestError(f"{path}: cannot read: {exc}") from None
        yield copy


def nothing_read(path: Path) -> str:
    """Why a file gave no content: empty, or gzip damaged before its first line."""
    with open(path, "rb") as fh:
        packed = fh.read(2) == GZIP_MAGIC
    return "the gzip data is damaged before its first line (nothing decompresses)" if packed else "the file is empty"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def count_lines(path: Path) -> int:
    """Lines in a file; a last line without a line break counts."""
    counter = _LineCounter()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            counter.feed(block)
    return counter.lines


class _LineCounter:
    """Counts lines over a stream of blocks; a last line without a line break counts."""

    def __init__(self) -> None:
        self.breaks, self.last = 0, b"\n"

    def feed(self, block: bytes) -> None:
        if block:
            self.breaks += block.count(b"\n")
            self.last = block[-1:]

    @property
    def lines(self) -> int:
        return self.breaks + (self.last != b"\n")


def quick_fingerprint(path: Path, edge: int = 1 << 20) -> str:
    """Size and a hash of the first and last MiB: equal for identical files, cheap for large ones."""
    size, digest = path.stat().st_size, hashlib.sha256()
    with open(path, "rb") as fh:
        digest.update(fh.read(edge))
        if size > edge:
            fh.seek(max(edge, size - edge))
            digest.update(fh.read(edge))
    return f"{size}:{digest.hexdigest()}"


@dataclass
class Plain:
    """A file's content ready for ClickHouse: the file itself, or a plain copy of it (see `plain_content`)."""

    path: Path
    sha: str = ""  # sha256 of the content, when the copy computed it (else hashed from `path`)
    cut: tuple[int, str] | None = None  # (line after the last complete one, why the rest is lost)
    notes: list[str] = field(default_factory=list)
    also_known_as: tuple[str, ...] = ()  # hashes the same file was recorded under before (its gzip container)


def plain_content(path: Path, tmp: Path, shown: Path | None = None) -> Plain:
    """The file itself when ClickHouse can read it as it is, or a link to it in `tmp` when only its name is in
    the way (see `_plain_name`); otherwise (gzip, a UTF-8 byte order mark, line breaks of a lone CR as classic
    Mac OS wrote them) its content copied into `tmp` in one streamed pass (bounded memory) that decompresses
    gzip, leaves the byte order mark out and turns lone CRs into LF. The copy's sha256 is of the content as
    decompressed.

    ClickHouse fails a whole read on a damaged gzip, so Python decompresses: everything up to the damage is
    kept, in pieces small enough that the data before a corrupt block is not lost with it, and the break
    comes back as (line after the last complete one, reason) to count as rejected.
    """
    shown = shown or path
    with open(path, "rb") as fh:
        head = fh.read(65536)
    packed = head.startswith(GZIP_MAGIC)
    if not packed and not head.startswith(BOM) and not cr_only(head):
        if _plain_name(path):
            return Plain(path)
        link = tmp / "data"  # ClickHouse's file() reads `*?{}` in a name as a glob, and names as UTF-8
        link.symlink_to(os.path.abspath(path))
        return Plain(link)
    out_path = tmp / "data"
    digest, counter, problem = hashlib.sha256(), _LineCounter(), ""
    pending, first, translate = b"", True, False

    def emit(data: bytes, final: bool = False) -> None:
        nonlocal pending, first, translate
        digest.update(data)
        if first:  # decide on the first 64 KiB of content: BOM and line breaks
            pending += data
            if len(pending) < 65536 and not final:
                return
            data, pending, first = pending.removeprefix(BOM), b"", False
            translate = cr_only(data)
        if translate:
            data = data.replace(b"\r", b"\n")
        out.write(data)
        counter.feed(data)

    with open(path, "rb") as fh, open(out_path, "wb") as out:
        if not packed:
            while block := fh.read(1 << 20):
                emit(block)
        else:
            decomp, begun, offset = zlib.decompressobj(wbits=47), False, 0  # begun: a member not yet ended
            while not problem and (block := fh.read(1 << 16)):
                while block:
                    saved = decomp.copy()
                    try:
                        data = decomp.decompress(block)
                    except zlib.error as exc:
                        emit(until_damage(saved, block))  # the block's lines before the damage are kept
                        problem = (f"the gzip data is corrupt near byte {offset} of the compressed file ({exc}); "
                                   f"the rest of the file is lost")
                        break
                    emit(data)
                    used = len(block) - len(decomp.unused_data)
                    offset, begun, block = offset + used, not decomp.eof, b""
                    if decomp.eof:  # concatenated gzip members: the next one follows
                        block, decomp = decomp.unused_data, zlib.decompressobj(wbits=47)
            if begun and not problem:
                problem = "the gzip stream is cut short; what followed the cut is lost"
        emit(b"", final=True)
    plain = Plain(out_path, digest.hexdigest(), (counter.breaks + 1, problem) if problem else None)
    if packed:
        plain.also_known_as = (file_sha256(path),)
    if translate:
        plain.notes.append("line breaks were CR alone (classic Mac OS); read as line feeds")
    if problem:
        plain.notes.append(f"{shown}: {problem}; the valid records of the {counter.breaks} lines before it are kept")
    return plain


def _plain_name(path: Path) -> bool:
    """Can ClickHouse's file() open this path as it is written: UTF-8, and no glob characters?"""
    name = os.path.abspath(path)
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return not any(c in name for c in "*?{}")
