"""Change points in a series of runs (a step's p95 run after run) by E-divisive means, placed precisely.

apache-otava (E-divisive means over sliding windows, then a merge by Student's t) decides which change points
are significant. Its placement is coarse: each location is then refined to the best split of the segment
between its neighbouring change points, the split that minimises the squared deviations from the two
segments' means (one pass of cumulative sums). Near a series' ends otava's windows can miss a change that
a best split of the segment finds with a Bonferroni-corrected t-test, so such splits are added. Detection runs on ln(value), so a shift is relative, as
run-to-run noise of latency is. Pure numpy: no I/O.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from otava.analysis import TTestSignificanceTester, compute_change_points

MAX_PVALUE = 3e-5  # significance a change point must reach (otava's merge step)
WINDOW = 50  # otava's sliding window, in runs
MIN_SERIES = 6  # shorter series have no change points
COMPLETION_STRICTER = 10  # a completing split must reach max_pvalue / this: it was the best of many splits
MIN_SIDE = 3  # runs on each side of a change point that the completing best split asks for


@dataclass(frozen=True)
class ChangePoint:
    """The series changes from position `index` on (the first run of the new level)."""

    index: int
    before: float  # mean of the segment before (in the series' unit)
    after: float  # mean of the segment after
    pvalue: float  # Student's t between the two segments (on ln values)

    @property
    def change(self) -> float:
        """Relative change of the level: +0.15 is 15 % higher."""
        return self.after / self.before - 1 if self.before else math.inf

    @property
    def direction(self) -> str:
        return "up" if self.after > self.before else "down"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "change": self.change, "direction": self.direction}


def detect(values: Sequence[float], max_pvalue: float = MAX_PVALUE, relative: bool = True) -> list[ChangePoint]:
    """The significant change points of a series, oldest first: of ln(value) when `relative` (latency,
    throughput: positive values), else of the values themselves (an error rate, which may be zero)."""
    raw = np.asarray(values, dtype=float)
    if len(raw) < MIN_SERIES or not np.all(np.isfinite(raw)) or (relative and np.any(raw <= 0)):
        return []
    logs = np.log(raw) if relative else raw
    indices = locate(logs, max_pvalue)
    tester = TTestSignificanceTester(max_pvalue)
    bounds = [0, *indices, len(raw)]
    out = []
    for i, index in enumerate(indices):
        left, right = slice(bounds[i], index), slice(index, bounds[i + 2])
        stats = tester.compare(logs[left], logs[right])
        out.append(ChangePoint(index, float(raw[left].mean()), float(raw[right].mean()), float(stats.pvalue)))
    return out


def locate(logs: npt.NDArray[np.float64], max_pvalue: float = MAX_PVALUE) -> list[int]:
    """Where a series (of ln values) changes level: otava's significant change points, refined."""
    if len(logs) < MIN_SERIES:
        return []
    found, _ = compute_change_points(logs.tolist(), window_len=WINDOW, max_pvalue=max_pvalue)
    placed = refine(logs, sorted({int(cp.index) for cp in found}))
    return complete(logs, prune(logs, placed, max_pvalue), max_pvalue)


def prune(logs: npt.NDArray[np.float64], indices: list[int], max_pvalue: float = MAX_PVALUE) -> list[int]:
    """Drop, weakest first, the change points that no longer separate their neighbouring segments at
    `max_pvalue` once placed where they fit best."""
    tester = TTestSignificanceTester(max_pvalue)
    kept = list(indices)
    while kept:
        cuts = [0, *kept, len(logs)]
        pvalues = [tester.compare(logs[cuts[i]:cuts[i + 1]], logs[cuts[i + 1]:cuts[i + 2]]).pvalue
                   for i in range(len(kept))]
        weakest = int(np.argmax(pvalues))
        if pvalues[weakest] < max_pvalue:
            break
        del kept[weakest]
    return kept


def complete(logs: npt.NDArray[np.float64], indices: list[int], max_pvalue: float = MAX_PVALUE) -> list[int]:
    """Add the change points otava's windows miss near a series' ends: split any segment at its best split
    while the two parts differ at a tenth of `max_pvalue` (the best of many splits needs a stricter test),
    so that a series without change gains none."""
    tester = TTestSignificanceTester(max_pvalue)
    cuts = [0, *indices, len(logs)]
    changed = True
    while changed:
        changed = False
        for lo, hi in itertools.pairwise(cuts):
            if hi - lo < 2 * MIN_SIDE:
                continue
            k = lo + best_split(logs[lo:hi])
            if min(k - lo, hi - k) < MIN_SIDE:
                continue
            if tester.compare(logs[lo:k], logs[k:hi]).pvalue < max_pvalue / COMPLETION_STRICTER:
                cuts = sorted({*cuts, k})
                changed = True
                break
    return cuts[1:-1]


def refine(logs: npt.NDArray[np.float64], indices: list[int]) -> list[int]:
    """Move each change point to the best split of the segment between its neighbours (left to right, each
    with the already refined one before it), keeping at least one value on each side."""
    refined: list[int] = []
    for i, index in enumerate(indices):
        lo = refined[-1] if refined else 0
        hi = indices[i + 1] if i + 1 < len(indices) else len(logs)
        best = best_split(logs[lo:hi])
        refined.append(lo + best if best else index)
    return sorted(set(refined))


def best_split(segment: npt.NDArray[np.float64]) -> int:
    """The split k (1 <= k < n) that minimises the two parts' squared deviations from their means; 0 if
    the segment is too short to split."""
    return int(best_splits(segment[np.newaxis, :])[0])


def best_splits(series: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """`best_split` of every row of a 2-D array at once (cumulative sums: O(rows x n))."""
    n = series.shape[1]
    if n < 2:
        return np.zeros(series.shape[0], dtype=int)
    total = series.sum(axis=1, keepdims=True)
    k = np.arange(1, n)
    left = np.cumsum(series, axis=1)[:, :-1]
    # the sum of squares within both parts is constant minus this: maximise it
    gain = left**2 / k + (total - left) ** 2 / (n - k)
    return np.argmax(gain, axis=1) + 1


def segments_of(logs: Sequence[float], max_pvalue: float = MAX_PVALUE) -> list[list[float]]:
    """A series of ln values cut at its change points."""
    cuts = [0, *locate(np.asarray(logs, dtype=float), max_pvalue), len(logs)]
    return [list(logs[a:b]) for a, b in itertools.pairwise(cuts) if b > a]
