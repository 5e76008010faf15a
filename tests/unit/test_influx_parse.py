"""Line protocol as k6 writes it (a quoted url field beside value) parses the same on every path of the parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warehouse.tools.influx.influx_line import LineError, Point, parse_line

NAME = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
TAG_VALUE = st.text("abcdefghijklmnopqrstuvwxyz0123456789./:-?&", min_size=1, max_size=20)
TEXT = st.text("abcxyz019 ,=/:?&.-", max_size=30)  # commas, equals and spaces inside quotes


@given(NAME, st.dictionaries(NAME, TAG_VALUE, max_size=5), TEXT,
       st.floats(allow_nan=False, allow_infinity=False, width=64), st.integers(10**18, 2 * 10**18))
def test_a_k6_line_with_a_quoted_field_parses_to_its_parts(
        measurement: str, tags: dict[str, str], url: str, value: float, ns: int) -> None:
    head = ",".join([measurement, *(f"{k}={v}" for k, v in tags.items())])
    line = f'{head} url="{url}",value={value!r} {ns}'
    assert parse_line(line) == Point(measurement, tags, {"url": url, "value": value}, ns)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('m url="x",value=oops 1', "not a number"),
        ('m,t= url="x",value=1 1', "empty value"),
        ('m url="x",value=1', "no timestamp"),
        ('m url="never closed,value=1 1', "no closing quote"),
    ],
)
def test_bad_quoted_lines_say_what_is_wrong(line: str, reason: str) -> None:
    with pytest.raises(LineError, match=reason):
        parse_line(line)
