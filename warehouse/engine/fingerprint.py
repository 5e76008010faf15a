"""Comparable runs: the fingerprint that decides which runs form one history, and group ids.

Two runs are comparable when they ran the same journeys (steps, methods, paths: not thresholds, checks
or comments) of the same spec, with the same profile, tool, environment and chosen labels. Pure logic.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Labels that change how the load is produced, and so what is measured; more with PERFHOUSE_FINGERPRINT_LABELS.
DEFAULT_LABEL_KEYS = ("runner", "generators")
LABELS_ENV = "PERFHOUSE_FINGERPRINT_LABELS"


@dataclass(frozen=True)
class StepShape:
    """What of a step decides what is measured: where it goes and how."""

    journey: str
    step: str
    method: str = ""
    path: str = ""
    service: str = ""


def structure_hash(steps: Iterable[StepShape]) -> str:
    """A hash of the journeys' structure, in their order; names, methods, paths and services only."""
    shape = [[s.journey, s.step, s.method.upper(), s.path, s.service] for s in steps]
    return _digest(shape)


def label_keys(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The label keys that enter a fingerprint: the defaults and those named in PERFHOUSE_FINGERPRINT_LABELS."""
    extra = (environ if environ is not None else os.environ).get(LABELS_ENV, "")
    return tuple(sorted({*DEFAULT_LABEL_KEYS, *(k.strip() for k in extra.split(",") if k.strip())}))


def fingerprint(
    spec_name: str,
    structure: str,
    profile: str,
    tool: str,
    environment: str,
    labels: Mapping[str, str],
    keys: Iterable[str] | None = None,
) -> str:
    """The fingerprint of a run: 16 hex digits; equal for runs whose results may be compared."""
    chosen = sorted((k, str(labels[k])) for k in (label_keys() if keys is None else keys) if k in labels)
    return _digest([spec_name, structure, profile, tool, environment, chosen])[:16]


def new_group_id() -> str:
    """An id shared by the runs one `perfhouse run` starts (one per tool)."""
    return "g-" + secrets.token_hex(6)


def _digest(value: object) -> str:
    # ASCII JSON: text holding lone surrogates (bytes of a file name or argument that are not UTF-8) hashes too
    return hashlib.sha256(json.dumps(value, separators=(",", ":")).encode()).hexdigest()
