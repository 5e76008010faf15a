"""Warehouse fixtures: one chfront ClickHouse server per session, and a fresh warehouse per test on each backend."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest

from tests.support.chfront import start_front_process, stop_front_process

BACKENDS = ["chdb", "server"]


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ClickHouse HTTP interface (chfront over chdb, in a child process): `clickhouse://default:@HOST:PORT/default`."""
    proc, port = start_front_process(tmp_path_factory.mktemp("chfront") / "data")
    yield f"clickhouse://default:@127.0.0.1:{port}/default"
    assert stop_front_process(proc) == 0


def server_database(server_url: str, name: str) -> str:
    """Create a fresh database on the server and return the warehouse URL that points at it."""
    database = "t_" + re.sub(r"[^A-Za-z0-9_]", "_", name)[-60:]
    port = int(server_url.rsplit(":", 1)[1].split("/", 1)[0])
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, compress=False)
    try:
        client.command(f"DROP DATABASE IF EXISTS {database}")
        client.command(f"CREATE DATABASE {database}")
    finally:
        client.close()
    return server_url.rsplit("/", 1)[0] + "/" + database


def make_warehouse_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "chdb":
        return f"chdb://{tmp_path / 'warehouse'}"
    server = request.getfixturevalue("clickhouse_server")
    return server_database(server, request.node.name)


@pytest.fixture(params=BACKENDS)
def any_warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty warehouse on each backend in turn: embedded chdb, then the ClickHouse server."""
    return make_warehouse_url(request.param, tmp_path, request)
