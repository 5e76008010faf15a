"""The versions of the tools on this host, asked of each program once and kept in the user's cache directory.

Asking a tool its version starts it (a tenth of a second for k6, seconds for JMeter's JVM), and every local run
needs the version before the tool can start. So the answer is kept, keyed by the program's real path, inode, size
and modification time: a program replaced or upgraded in place is asked again. A wrapper script (a `#!` file, as
`jmeter` often is) is keyed by the files it names by absolute path too (the jar it starts), since upgrading the
tool may leave the script itself as it was.

The cache is one small JSON file, written whole to a temporary file beside it and renamed over it (readers see
the old or the new file, never a part of one), readable by its owner only. Anything unexpected in it (not a
regular file of this user, not JSON of the expected shape, a version that is not a short printable word) is
ignored and the program asked again: the cache can make a run faster, never wrong. PERFHOUSE_NO_VERSION_CACHE=1
turns it off.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

CACHE_FILE = "tool-versions.json"
MAX_ENTRIES = 64  # programs remembered; the oldest entries give way
_VERSION = re.compile(r"\d+(?:\.\d+)+[\w.+~-]{0,48}")  # a parsed version; "unknown" or an error is never kept
_NAMED_PATH = re.compile(rb"(/[\w./+-]+)")
_lock = threading.Lock()


def cache_path() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "perfhouse" / CACHE_FILE


def program_key(tool: str, binary: str) -> str | None:
    """What identifies this program's build: None when it cannot be looked at (then it is asked every time)."""
    try:
        real = os.path.realpath(binary)
        st = os.stat(real)
        parts = [tool, real, f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"]
        with open(real, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    if head.startswith(b"#!"):  # a wrapper: the files it starts are part of what it is
        for named in sorted(set(_NAMED_PATH.findall(head))):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                nst = os.stat(named.decode())
                if stat.S_ISREG(nst.st_mode):
                    parts.append(f"{named.decode()}={nst.st_ino}:{nst.st_size}:{nst.st_mtime_ns}")
    return "\n".join(parts)


def _read(path: Path) -> dict[str, str]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return {}
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_size > 1 << 20:
            return {}
        with os.fdopen(fd, "rb", closefd=False) as fh:
            doc = json.loads(fh.read())
    except (OSError, ValueError):
        return {}
    finally:
        os.close(fd)
    entries = doc.get("versions") if isinstance(doc, dict) and doc.get("format") == 1 else None
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, str) and _VERSION.fullmatch(v)}


def _write(path: Path, entries: dict[str, str]) -> None:
    """The whole file anew, atomically; a cache that cannot be written is simply not kept."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{CACHE_FILE}.", dir=path.parent)  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"format": 1, "versions": entries}, fh)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def cached_version(tool: str, binary: str, ask: Callable[[str], str]) -> str:
    """The version of `binary` (tool `tool`): the kept answer while the program is the same, else `ask(binary)`,
    kept for next time when it looks like a version."""
    key = program_key(tool, binary) if os.environ.get("PERFHOUSE_NO_VERSION_CACHE", "") in ("", "0") else None
    if key is None:
        return ask(binary)
    path = cache_path()
    known = _read(path).get(key)
    if known is not None:
        return known
    version = ask(binary)
    if _VERSION.fullmatch(version):
        with _lock:  # this process's threads; other processes may race, and the last rename wins whole
            entries = _read(path)
            entries.pop(key, None)
            entries[key] = version
            _write(path, dict(list(entries.items())[-MAX_ENTRIES:]))
    return version
