"""Environment values a spec reads (${env:NAME}): checked before a run, handed to the tools, kept
out of scripts, run directories and the warehouse."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import SpecError

ENV_FILE = ".perfhouse-env.properties"


def require_env(names: list[str], environ: Mapping[str, str], spec_file: str) -> dict[str, str]:
    """The values of `names`; one clear error naming every missing variable."""
    missing = [n for n in names if n not in environ]
    if missing:
        raise SpecError(f"the spec reads ${{env:{missing[0]}}}, but {', '.join(missing)} "
                        f"{'is' if len(missing) == 1 else 'are'} not set in the environment", spec_file)
    return {n: environ[n] for n in names}


@dataclass(frozen=True)
class SecretFile:
    """The file a tool reads its secrets from: a private file in the run directory, or a file that exists only
    in memory (memfd) and reaches the tool as an inherited descriptor, read through /dev/fd/N."""

    path: Path  # what the tool is given
    fd: int | None = None  # the in-memory file's descriptor, which the tool's process must inherit

    @property
    def on_disk(self) -> bool:
        return self.fd is None

    def __str__(self) -> str:
        return str(self.path)


@contextmanager
def secret_file(directory: Path, content: bytes | None, in_memory: bool = False) -> Iterator[SecretFile | None]:
    """A tool's secrets file with `content` (see Tool.secret_file), gone when the block ends; None without content.

    `in_memory` (for a tool started on this host): the file never has a name on any disk, so nothing of it
    can outlive perfhouse, even a kill -9; else a private (0600) file in `directory`, removed at the end.
    """
    if not content:
        yield None
        return
    if in_memory and hasattr(os, "memfd_create"):
        fd = os.memfd_create("perfhouse-env")
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            yield SecretFile(Path(f"/dev/fd/{fd}"), fd)
        finally:
            os.close(fd)
        return
    path = directory / ENV_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        yield SecretFile(path)
    finally:
        path.unlink(missing_ok=True)
