"""The line count taken while decompressing equals a plain count, however the stream is cut into blocks."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from warehouse.ingest.files import _LineCounter


@given(st.lists(st.sampled_from([b"", b"a", b"bc", b"\r"]), max_size=30), st.booleans(),
       st.lists(st.integers(0, 100), max_size=6))
def test_counts_match_a_plain_count(lines: list[bytes], trailing: bool, cuts: list[int]) -> None:
    data = b"\n".join(lines) + (b"\n" if trailing and lines else b"")
    counter = _LineCounter()
    edges = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    for a, b in itertools.pairwise(edges):
        counter.feed(data[a:b])
    expected = data.split(b"\n")
    if expected[-1] == b"":
        expected.pop()
    assert counter.lines == len(expected)
