"""Synthetic request samples for the analysis tests: seeded latency draws loaded into a warehouse as runs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.store import RunInfo, Warehouse

COLUMNS = ["run_id", "ts", "journey", "step", "ok", "duration_ms"]
TYPES = ["String", "DateTime64(6, 'UTC')", "String", "String", "UInt8", "Float64"]


def lognormal(rng: np.random.Generator, size: int | tuple[int, ...], scale: float = 1.0,
              median_ms: float = 50.0, sigma: float = 0.3) -> np.ndarray:
    """Latencies in ms: log-normal around `median_ms` times `scale`."""
    return median_ms * scale * np.exp(sigma * rng.standard_normal(size))


def load_samples(warehouse: Warehouse, path: Path,
                 rows: Iterable[tuple[str, str, str, np.ndarray, np.ndarray | None]],
                 start: str = "2026-01-01 00:00:00") -> None:
    """Insert (run_id, journey, step, durations, ok flags or None for all ok) as requests through a Parquet
    file, a millisecond apart (1,000 samples of a step take a second), so a run's span is known."""
    base = int(pd.Timestamp(start, tz="UTC").value // 1000)  # microseconds
    parts: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for run_id, journey, step, durations, ok in rows:
        n = len(durations)
        parts["run_id"].append(np.full(n, run_id, dtype=object))
        parts["ts"].append(base + np.arange(n, dtype=np.int64) * 1000)
        parts["journey"].append(np.full(n, journey, dtype=object))
        parts["step"].append(np.full(n, step, dtype=object))
        parts["ok"].append(np.ones(n, dtype=np.uint8) if ok is None else ok.astype(np.uint8))
        parts["duration_ms"].append(np.asarray(durations, dtype=float))
    table = pa.table({
        "run_id": pa.array(np.concatenate(parts["run_id"]), pa.string()),
        "ts": pa.array(np.concatenate(parts["ts"]), pa.timestamp("us", tz="UTC")),
        "journey": pa.array(np.concatenate(parts["journey"]), pa.string()),
        "step": pa.array(np.concatenate(parts["step"]), pa.string()),
        "ok": pa.array(np.concatenate(parts["ok"]), pa.uint8()),
        "duration_ms": pa.array(np.concatenate(parts["duration_ms"]), pa.float64()),
    })
    pq.write_table(table, path)
    warehouse.backend.load_file("requests", COLUMNS, path, "Parquet", types=TYPES)


def save_run(warehouse: Warehouse, run_id: str, started_at: str, fingerprint: str = "fp-test",
             status: str = "completed", tool: str = "k6", group_id: str = "") -> RunInfo:
    info = RunInfo(run_id, tool, status=status, name=run_id, spec_name="synthetic", profile="ci",
                   fingerprint=fingerprint, group_id=group_id, started_at=started_at, ended_at=started_at)
    warehouse.save_run(info)
    return info
