"""Import of history: which files under a directory to ingest, and each one's run metadata.

Metadata comes from four places, the first that says something wins (labels merge key by key the same way):

1. flags (`--run-name`, `--env`, `--label KEY=VALUE`, `--profile`, `--started-at`);
2. a sidecar beside the file: for `x.jtl`, `x.jtl.meta.yaml` or `x.meta.yaml` (for `x.json.gz` also
   `x.json.meta.yaml`);
3. `perfhouse-runs.yaml` in the file's directory or any directory above it up to the imported one (the
   nearest wins), holding defaults for the files below it;
4. the file name, when it follows `<name>_<YYYYmmdd-HHMMSS>.<ext>` (UTC): the run name and start time.

Sidecar and directory files are YAML mappings of the keys in META_KEYS. Pure logic over files: no warehouse.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from warehouse.errors import IngestError

DIRECTORY_FILE = "perfhouse-runs.yaml"
SIDECAR_SUFFIX = ".meta.yaml"
# The keys a sidecar or directory file may hold (`env` is short for `environment`).
META_KEYS = ("name", "environment", "labels", "profile", "started_at", "tool_version", "spec_name",
             "git_sha", "branch", "notes")
_ALIASES = {"env": "environment", "run_name": "name"}
# <name>_<YYYYmmdd-HHMMSS> then the extensions: shop-checkout_20240131-220501.jtl, api_20240131-220501.json.gz
FILE_NAME = re.compile(r"^(?P<name>.+?)_(?P<stamp>\d{8}-\d{6})(?:\.[A-Za-z0-9]+)*$")
# A k6 end-of-test summary (--summary-export or handleSummary JSON) rather than a results file.
SUMMARY_NAME = re.compile(r"summary", re.IGNORECASE)
MAX_SUMMARY_BYTES = 64 << 20


@dataclass(frozen=True)
class RunMeta:
    """What the user knows about an imported run; None (or an empty dict) means "not said here"."""

    name: str | None = None
    environment: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    profile: str | None = None
    started_at: str | None = None
    tool_version: str | None = None
    spec_name: str | None = None
    git_sha: str | None = None
    branch: str | None = None
    notes: str | None = None

    def over(self, lower: RunMeta) -> RunMeta:
        """This metadata with `lower` filling what it does not say."""
        merged: dict[str, Any] = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(lower, f.name)
            merged[f.name] = {**theirs, **mine} if f.name == "labels" else (mine if mine is not None else theirs)
        return RunMeta(**merged)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in out.items() if v not in (None, {})}


def parse_time(value: Any, where: str) -> str:
    """A start time as ClickHouse text in UTC; naive times are UTC. Accepts ISO 8601 and YAML timestamps."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        if re.fullmatch(r"\d{8}-\d{6}", text):
            moment = dt.datetime.strptime(text, "%Y%m%d-%H%M%S")
        else:
            try:
                moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise IngestError(
                    f"{where}: started_at: expected a time like 2024-01-31T22:05:01Z, found {text!r}"
                ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def parse_labels(values: tuple[str, ...] | list[str], where: str = "--label") -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise IngestError(f"{where}: expected KEY=VALUE, found {value!r}")
        out[key.strip()] = text
    return out


def meta_from_mapping(doc: Any, where: str) -> RunMeta:
    """The metadata of a sidecar or directory file's mapping; unknown keys are errors that suggest a key."""
    if doc is None:
        return RunMeta()
    if not isinstance(doc, dict):
        raise IngestError(f"{where}: expected a mapping of {', '.join(META_KEYS)}, found {type(doc).__name__}")
    values: dict[str, Any] = {}
    for raw_key, value in doc.items():
        key = _ALIASES.get(str(raw_key), str(raw_key))
        if key not in META_KEYS:
            near = difflib.get_close_matches(key, [*META_KEYS, *_ALIASES], n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; known keys: {', '.join(META_KEYS)}"
            raise IngestError(f"{where}: {raw_key}: unknown key{hint}")
        if key == "labels":
            if not isinstance(value, dict):
                raise IngestError(f"{where}: labels: expected a mapping of names to values")
            values[key] = {str(k): "" if v is None else str(v) for k, v in value.items()}
        elif key == "started_at":
            values[key] = parse_time(value, where)
        elif value is not None:
            values[key] = str(value)
    return RunMeta(**values)


def _load_yaml(path: Path) -> RunMeta:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise IngestError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except OSError as exc:
        raise IngestError(f"{path}: cannot read: {exc}") from None
    return meta_from_mapping(doc, str(path))


def meta_from_file_name(path: Path) -> RunMeta:
    m = FILE_NAME.match(path.name)
    if not m:
        return RunMeta()
    return RunMeta(name=m["name"], started_at=parse_time(m["stamp"], str(path)))


def sidecars(path: Path) -> list[Path]:
    """Candidate sidecar files, most specific first: x.jtl.meta.yaml, then x.meta.yaml."""
    out, name = [], path.name
    while True:
        out.append(path.with_name(name + SIDECAR_SUFFIX))
        stem, dot, _ = name.rpartition(".")
        if not dot or not stem:
            return out
        name = stem


def meta_from_sidecar(path: Path) -> RunMeta:
    for candidate in sidecars(path):
        if candidate.is_file():
            return _load_yaml(candidate)
    return RunMeta()


def meta_from_directories(path: Path, root: Path | None) -> RunMeta:
    """perfhouse-runs.yaml files from the file's directory up to `root`, the nearest winning."""
    meta, directory = RunMeta(), path.parent.resolve()
    top = (root or path.parent).resolve()
    while True:
        candidate = directory / DIRECTORY_FILE
        if candidate.is_file():
            meta = meta.over(_load_yaml(candidate))
        if directory == top or directory.parent == directory or top not in directory.parents:
            return meta
        directory = directory.parent


def resolve_meta(path: Path, flags: RunMeta, root: Path | None = None) -> RunMeta:
    """Flags over sidecar over directory file over file name."""
    return flags.over(meta_from_sidecar(path)).over(meta_from_directories(path, root)).over(
        meta_from_file_name(path)
    )


def is_metadata_file(path: Path) -> bool:
    return path.name == DIRECTORY_FILE or path.name.endswith(SIDECAR_SUFFIX)


def read_summary(path: Path) -> dict[str, Any]:
    """A k6 end-of-test summary (--summary-export or handleSummary's data as JSON), or IngestError."""
    if path.stat().st_size > MAX_SUMMARY_BYTES:
        raise IngestError(f"{path}: too large for a k6 summary ({path.stat().st_size} bytes)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise IngestError(f"{path}: not a k6 summary: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("metrics"), dict):
        raise IngestError(f"{path}: not a k6 summary (--summary-export or handleSummary JSON): no metrics object")
    return doc


def looks_like_summary(path: Path) -> bool:
    """A `*summary*.json` file holding one JSON object with a metrics object (not JSON lines)."""
    if not SUMMARY_NAME.search(path.name) or not path.name.endswith(".json"):
        return False
    try:
        read_summary(path)
    except (IngestError, OSError):
        return False
    return True


def summary_beside(results: Path, first: Iterable[Path] = ()) -> Path | None:
    """The tool's own summary a run directory keeps beside a results file: one of the tool's names for it
    (`first`: k6.json → k6-summary.json), else <stem>-summary.json or <stem>.summary.json."""
    name = results.name.removesuffix(".gz").removesuffix(".json")
    candidates = [*first, results.with_name(f"{name}-summary.json"), results.with_name(f"{name}.summary.json")]
    return next((c for c in candidates if c.is_file() and looks_like_summary(c)), None)


@dataclass(frozen=True)
class Found:
    """A file under the imported directory: results to ingest, or a summary to attach to its partner."""

    path: Path
    kind: str  # "results" | "summary"


def discover(root: Path, recursive: bool) -> Iterator[Found]:
    """Files under `root` in a stable order (sorted by path), metadata files left out."""
    paths = sorted(p for p in (root.rglob("*") if recursive else root.iterdir()) if p.is_file())
    for path in paths:
        if is_metadata_file(path) or any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        yield Found(path, "summary" if looks_like_summary(path) else "results")
