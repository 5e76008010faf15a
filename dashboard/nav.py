"""Dashboard navigation: the page registry, the sidebar page picker and the URL query parameters.

A page is one function registered with `@page(key, title)`; the sidebar lists pages in registration
order and the URL carries the page and its selection (`?page=run&run=<id>`), so every view has a link.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import streamlit as st

Render = Callable[[str], None]  # a page draws itself from the warehouse at this URL


@dataclass(frozen=True)
class Page:
    key: str
    title: str
    render: Render


PAGES: dict[str, Page] = {}


def page(key: str, title: str) -> Callable[[Render], Render]:
    """Register a page function under `?page=<key>`, listed in the sidebar as `title`."""

    def register(render: Render) -> Render:
        known = PAGES.get(key)
        if known is not None and known.render.__qualname__ != render.__qualname__:  # a reload re-registers
            raise ValueError(f"dashboard page {key!r} is registered twice")
        PAGES[key] = Page(key, title, render)
        return render

    return register


def param(name: str, default: str = "") -> str:
    """A query parameter of the current URL."""
    value = st.query_params.get(name)
    return value if value else default


def go(page_key: str, **params: str) -> NoReturn:
    """Open another page (with its parameters) as if its link had been followed."""
    st.query_params.clear()
    st.query_params.update({"page": page_key, **params})
    st.rerun()


def synced(widget_key: str, value: Any) -> None:
    """Before a keyed widget is drawn: make its state follow the URL (changed by a link or by `go`)."""
    if st.session_state.get(widget_key) != value:
        st.session_state[widget_key] = value


def to_url(widget_key: str, param_name: str) -> Callable[[], None]:
    """An on_change callback writing a widget's new value into the URL before the page reruns."""

    def write() -> None:
        st.query_params[param_name] = str(st.session_state[widget_key])

    return write


def navigation() -> Page:
    """The sidebar page picker, kept in step with `?page=`; returns the page to draw."""
    keys = list(PAGES)
    wanted = param("page", keys[0])
    synced("_page", wanted if wanted in PAGES else keys[0])
    chosen = st.sidebar.radio("Page", keys, key="_page", format_func=lambda k: PAGES[k].title,
                              on_change=to_url("_page", "page"))
    return PAGES[chosen]
