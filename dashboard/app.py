"""Streamlit entry point of `perfhouse dashboard`: page setup, the sidebar, and the chosen page drawn."""

from __future__ import annotations

import streamlit as st

import dashboard.pages  # noqa: F401  (registers the pages)
from dashboard import data
from dashboard.nav import navigation
from warehouse.engine.backends import redacted
from warehouse.errors import WarehouseError


def main() -> None:
    st.set_page_config(page_title="perfhouse", page_icon="📈", layout="wide")
    url = data.warehouse_url()
    current = navigation()
    st.sidebar.divider()
    st.sidebar.caption(f"Warehouse `{redacted(url)}`")
    if st.sidebar.button("Refresh", help="Read everything again now; pages notice new runs and results by themselves at the next load."):
        data.refresh()
    try:
        current.render(url)
    except WarehouseError as exc:
        st.error(f"The warehouse could not answer: {exc}")


if __name__ == "__main__":
    main()
