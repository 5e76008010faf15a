"""The files `perfhouse run` keeps in a run's directory (generated scripts, the effective spec, the tools'
logs, raw results), listed for the run page: what each is, how large, and whether it is small enough to
offer as a download."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DOWNLOAD_LIMIT_BYTES = 100 * 2**20  # raw results can be gigabytes: those are named, not offered

_KINDS = (
    ("script", (".js", ".jmx")),
    ("log", (".log",)),
    ("results", (".json", ".json.gz", ".jtl", ".csv", ".csv.gz", ".xml")),
    ("spec", (".yaml", ".yml")),
)


@dataclass(frozen=True)
class RunFile:
    path: Path
    kind: str  # script, log, results, spec, run (effective.json) or other
    size: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def downloadable(self) -> bool:
        return self.size <= DOWNLOAD_LIMIT_BYTES


def kind_of(name: str) -> str:
    if name == "effective.json":
        return "run"
    if name.endswith("-console.log") or name.endswith(".log"):
        return "log"
    return next((kind for kind, suffixes in _KINDS if name.endswith(suffixes)), "other")


_ORDER = {"script": 0, "spec": 1, "run": 2, "log": 3, "results": 4, "other": 5}


def run_files(runs_dir: Path, run_id: str) -> list[RunFile] | None:
    """The files directly in `runs_dir/run_id`, scripts first; None when there is no such directory (an
    imported run, or a dashboard started elsewhere)."""
    if not run_id or "/" in run_id or run_id.startswith("."):
        return None
    directory = runs_dir / run_id
    if not directory.is_dir():
        return None
    files = [RunFile(p, kind_of(p.name), p.stat().st_size) for p in directory.iterdir() if p.is_file()]
    return sorted(files, key=lambda f: (_ORDER[f.kind], f.name))
