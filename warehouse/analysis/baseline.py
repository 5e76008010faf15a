"""Baselines: which earlier run a run is compared with (named, pinned in the warehouse, or automatic)."""

from __future__ import annotations

from dataclasses import dataclass

from warehouse.errors import DataError
from warehouse.read import queries
from warehouse.read.records import GateOutcome, Row
from warehouse.store import Warehouse

AUTO, PINNED = "auto", "pinned"
# A baseline is a run that finished and whose SLOs (if any) held: imported history counts as finished.
USABLE_STATUSES = ("completed", "imported")


@dataclass(frozen=True)
class Baseline(Row):
    run_id: str
    how: str  # named | pinned | auto
    fingerprint: str = ""
    note: str = ""
    why: str = ""  # why this run: how it was chosen, in words


@dataclass(frozen=True)
class Pin(Row):
    fingerprint: str
    run_id: str
    note: str
    pinned_at: str


def pin(warehouse: Warehouse, run_id: str, note: str = "") -> Pin:
    """Pin a run as the baseline of its fingerprint (replacing the one pinned before)."""
    run = warehouse.run(run_id)
    if not run.fingerprint:
        raise DataError(f"run {run_id} has no fingerprint (recorded before fingerprints existed); pin a newer run")
    _write(warehouse, run.fingerprint, run_id, 1, note)
    return pinned(warehouse, run.fingerprint)[0]


def unpin(warehouse: Warehouse, ref: str) -> Pin:
    """Unpin the baseline of a fingerprint, named by the fingerprint or by a run of it."""
    fingerprint = _fingerprint_of(warehouse, ref)
    have = pinned(warehouse, fingerprint)
    if not have:
        raise DataError(f"no baseline is pinned for fingerprint {fingerprint}")
    _write(warehouse, fingerprint, have[0].run_id, 0, "")
    return have[0]


def pinned(warehouse: Warehouse, fingerprint: str = "") -> list[Pin]:
    rows = warehouse.backend.query(queries.BASELINES, {"fingerprint": fingerprint})
    return [Pin(str(r["fingerprint"]), str(r["run_id"]), str(r["note"]), str(r["pinned_at"])) for r in rows]


def resolve_baseline(warehouse: Warehouse, run_id: str, choice: str | None = None) -> Baseline:
    """The baseline of `run_id`: a named run (`choice` a run id or prefix), `pinned`, `auto` or, when `choice`
    is None, the pinned one if there is one, else the automatic one.

    Automatic: the latest run of its fingerprint before it that passed its gate, i.e. complete (completed or
    imported), its SLOs held, and no gate judged it WORSE; a run never gated qualifies by the first two. A
    regressed run never becomes the reference, so two regressions in a row are both caught (no creep)."""
    run = warehouse.run(run_id)
    fingerprint = run.fingerprint
    if choice not in (None, AUTO, PINNED):
        named = warehouse.resolve(str(choice))
        if named == run_id:
            raise DataError(f"run {run_id} cannot be its own baseline")
        return Baseline(named, "named", fingerprint, why="named with --baseline")
    if not fingerprint:
        raise DataError(f"run {run_id} has no fingerprint, so it has no history: name a baseline with --baseline RUN")
    if choice in (None, PINNED):
        pins = pinned(warehouse, fingerprint)
        if pins and pins[0].run_id != run_id:
            return Baseline(pins[0].run_id, PINNED, fingerprint, pins[0].note,
                            f"pinned for the fingerprint{': ' + pins[0].note if pins[0].note else ''}")
        if choice == PINNED:
            raise DataError(f"no baseline is pinned for fingerprint {fingerprint} (`perfhouse baseline pin RUN`)")
    rows = warehouse.backend.query(
        queries.FINGERPRINT_RUNS,
        {"fingerprint": fingerprint, "exclude": run_id, "before": run.started_at, "limit": 1000},
    )
    gated = {o.run_id: o for o in map(GateOutcome.of, warehouse.backend.query(queries.GATE_OUTCOMES,
                                                                              {"fingerprint": fingerprint}))}
    skipped = 0
    for r in rows:
        if r["status"] not in USABLE_STATUSES or int(r["slos_failed"]):
            continue
        outcome = gated.get(str(r["run_id"]))
        if outcome is not None and outcome.worse:
            skipped += 1
            continue
        passed = "passed its gate" if outcome is not None else "completed with its SLOs held (never gated)"
        also = f"; {skipped} later run{'s' if skipped > 1 else ''} judged WORSE passed over" if skipped else ""
        return Baseline(str(r["run_id"]), AUTO, fingerprint,
                        why=f"the latest comparable run that {passed}{also}")
    raise DataError(
        f"no earlier completed run of fingerprint {fingerprint} passed its SLOs and gate: run {run_id} has no "
        "baseline yet"
    )


def optional_baseline(warehouse: Warehouse, run_id: str, choice: str | None = None) -> tuple[Baseline | None, str]:
    """The baseline as resolve_baseline finds it, or (None, why) when `choice` is None or `auto` and the run has
    none yet; a named or pinned baseline that cannot be found is an error."""
    try:
        return resolve_baseline(warehouse, run_id, choice), ""
    except DataError as exc:
        if choice not in (None, AUTO):
            raise
        return None, str(exc)


def _fingerprint_of(warehouse: Warehouse, ref: str) -> str:
    if pinned(warehouse, ref):
        return ref
    return warehouse.run(warehouse.resolve(ref)).fingerprint or ref


def _write(warehouse: Warehouse, fingerprint: str, run_id: str, pinned_flag: int, note: str) -> None:
    warehouse.backend.command(
        "INSERT INTO baselines (fingerprint, run_id, pinned, note, updated_at) "
        "VALUES ({fingerprint:String}, {run:String}, {pinned:UInt8}, {note:String}, now64(6))",
        {"fingerprint": fingerprint, "run": run_id, "pinned": pinned_flag, "note": note},
    )
