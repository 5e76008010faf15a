"""Text from results and specs as reports and the dashboard show it: control characters made visible, long text
cut, Markdown made inert. A label may hold anything a tool wrote (a NUL byte, ten megabytes, `*x*`, `<script>`);
charts and tables show it safely and briefly, and the JSON report keeps it whole."""

from __future__ import annotations

import re

# Characters of a label shown in a chart or a table cell; the rest is cut (with an ellipsis).
LABEL_MAX = 200

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Markdown that would act: emphasis, code, links and images, HTML, headings, tables, strikethrough, math (Streamlit),
# entities, and the backslash itself; `_` only where it may open or close emphasis (not inside a word).
_MARKDOWN = re.compile(r"[\\`*\[\]<>#|~$]|&(?=#?\w+;)|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
# Streamlit also reads :emoji: and :material/icon: short codes.
_STREAMLIT = re.compile(r"[\\`*\[\]<>#|~$:]|&(?=#?\w+;)|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def visible(text: object) -> str:
    """Control characters (NUL, line breaks, escapes, C1, Unicode line separators) written as \\n, \\x00, \\u2028."""
    return _CONTROL.sub(lambda m: _NAMED.get(m[0]) or (f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100
                                                         else f"\\u{ord(m[0]):04x}"), str(text))


def shorten(text: object, limit: int = LABEL_MAX) -> str:
    """`visible` text of at most `limit` characters; a longer one is cut, ending in an ellipsis."""
    raw = str(text)
    if len(raw) > 4 * limit:  # never scan megabytes to show a few hundred characters
        raw = raw[: 4 * limit]
        return visible(raw)[: limit - 1] + "…"
    shown = visible(raw)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def markdown(text: object, limit: int = LABEL_MAX) -> str:
    """Text for a Markdown document: shortened, every character that Markdown or HTML would act on escaped."""
    return _MARKDOWN.sub(lambda m: "\\" + m[0], shorten(text, limit))


def streamlit_markdown(text: object, limit: int = LABEL_MAX) -> str:
    """As `markdown`, for Streamlit's Markdown, which also reads `:short codes:` and `$math$`."""
    return _STREAMLIT.sub(lambda m: "\\" + m[0], shorten(text, limit))
