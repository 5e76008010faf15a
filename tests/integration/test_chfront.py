"""The chdb-backed ClickHouse HTTP front (tests/support/chfront.py) serves the real clickhouse-connect."""

from __future__ import annotations

import math
import urllib.request
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from clickhouse_connect.driver.summary import QuerySummary

from tests.support.chfront import start_front_process, stop_front_process

pytestmark = pytest.mark.integration

NASTY = [
    "plain",
    'it\'s "quoted"',
    "line1\nline2\r\n",
    "tab\there\\back",
    "unicode: żółć 日本 🚀",
    "",
    "nul\x00byte",
]


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    proc, port = start_front_process(tmp_path_factory.mktemp("chfront") / "data")
    yield port
    assert stop_front_process(proc) == 0


@pytest.fixture
def client(port: int) -> Iterator[Client]:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, compress=False)
    yield client
    client.close()


@pytest.fixture
def table(client: Client, request: pytest.FixtureRequest) -> str:
    name = f"t_{request.node.name.split('[')[0]}_{abs(hash(request.node.name)) % 10_000}"
    client.command(f"DROP TABLE IF EXISTS {name}")
    return name


def test_ping_and_handshake(client: Client, port: int) -> None:
    assert client.ping()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping") as resp:
        assert resp.read() == b"Ok.\n"
    assert (client.server_version or "").startswith("26.")
    assert client.command("SELECT timezone()") == "Etc/UTC"


def test_command_ddl_and_results(client: Client, table: str) -> None:
    created = client.command(f"CREATE TABLE {table} (a String, n UInt32) ENGINE = MergeTree ORDER BY a")
    assert isinstance(created, QuerySummary)
    assert client.command(f"EXISTS TABLE {table}") == 1
    assert client.command("SELECT 1, 'two'") == ["1", "two"]
    assert client.command("SELECT 1 WHERE 0") == ""  # a result set with no rows, not a summary
    written = client.command(f"INSERT INTO {table} SELECT toString(number), number FROM numbers(5)")
    assert isinstance(written, QuerySummary) and written.written_rows == 5
    assert client.command(f"SELECT sum(n) FROM {table}") == 10


def test_insert_and_select_exact_values(client: Client, table: str) -> None:
    client.command(
        f"""CREATE TABLE {table} (
            id UInt32, s String, f Float64, ts DateTime64(3), ts_utc DateTime64(6, 'UTC'),
            m Map(String, String), lc LowCardinality(String), ns Nullable(String), ni Nullable(Int64)
        ) ENGINE = MergeTree ORDER BY id"""
    )
    rows: list[list[Any]] = [
        [
            i,
            s,
            [0.1, -1.5e308, math.inf, 5e-324, -0.0, 1 / 3, 42.0][i],
            datetime(2024, 2, 29, 23, 59, 59, 123000),
            datetime(1999, 12, 31, 12, 0, 0, 654321),
            {s: s, "k'ey": "v\nal"} if i % 2 else {},
            s or "empty",
            None if i % 3 == 0 else s,
            None if i % 2 else -(2**62) + i,
        ]
        for i, s in enumerate(NASTY)
    ]
    columns = ["id", "s", "f", "ts", "ts_utc", "m", "lc", "ns", "ni"]
    client.insert(table, rows, column_names=columns)
    back = client.query(f"SELECT {', '.join(columns)} FROM {table} ORDER BY id").result_rows
    assert [list(r) for r in back] == rows
    assert client.query(f"SELECT toTypeName(lc), count() FROM {table} GROUP BY 1").result_rows == [
        ("LowCardinality(String)", len(NASTY))
    ]


def test_parameters_server_and_client_side(client: Client) -> None:
    for value in [*NASTY[:-1], "o'k"]:
        assert client.query("SELECT {x:String}", parameters={"x": value}).result_rows == [(value,)]
        assert client.query("SELECT %(x)s", parameters={"x": value}).result_rows == [(value,)]
    assert client.command("SELECT {n:UInt8} + 1", parameters={"n": 41}) == 42
    # Over 4096 characters of parameters, clickhouse-connect switches to a multipart/form-data body.
    many = [f"value-{i}" for i in range(1000)]
    result = client.query(
        "SELECT length({xs:Array(String)}), {xs2:Array(String)}[1000]", parameters={"xs": many, "xs2": many}
    )
    assert result.result_rows == [(1000, "value-999")]


def test_query_df(client: Client) -> None:
    df = client.query_df("SELECT number AS n, toString(number) AS s, number / 2 AS h FROM numbers(4)")
    assert list(df.columns) == ["n", "s", "h"]
    assert df["n"].tolist() == [0, 1, 2, 3]
    assert df["s"].tolist() == ["0", "1", "2", "3"]
    assert df["h"].tolist() == [0.0, 0.5, 1.0, 1.5]


def test_raw_insert_text_formats(client: Client, table: str) -> None:
    client.command(f"CREATE TABLE {table} (a String, b Int32) ENGINE = MergeTree ORDER BY (b, a)")
    client.raw_insert(table, ["a", "b"], insert_block=b'x,1\n"q""uote,\nnl",2\n', fmt="CSV")
    client.raw_insert(table, ["a", "b"], insert_block='{"a": "json ü", "b": 3}\n', fmt="JSONEachRow")
    client.raw_insert(table, ["a"], insert_block=b"line one\nline\ttwo\n", fmt="LineAsString")
    assert client.query(f"SELECT a, b FROM {table} ORDER BY b, a").result_rows == [
        ("line\ttwo", 0),
        ("line one", 0),
        ("x", 1),
        ('q"uote,\nnl', 2),
        ("json ü", 3),
    ]
    raw = client.raw_query(f"SELECT b FROM {table} WHERE b > 0 ORDER BY b", fmt="CSV")
    assert raw == b"1\n2\n3\n"


# compress="deflate" is accepted by clickhouse-connect 1.12 but its insert path has no deflate compressor.
@pytest.mark.parametrize("compression", ["lz4", "zstd", "gzip"])
def test_compressed_insert_and_results(port: int, table: str, compression: str) -> None:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, compress=compression)
    client.command(f"CREATE TABLE {table} (s String, n UInt64) ENGINE = MergeTree ORDER BY n")
    rows = [[f"{NASTY[i % len(NASTY)]}-{i}", i] for i in range(20_000)]
    client.insert(table, rows, column_names=["s", "n"])
    assert [list(r) for r in client.query(f"SELECT s, n FROM {table} ORDER BY n").result_rows] == rows
    client.close()


def test_plain_http_deflate_body_and_get(port: int) -> None:
    body = zlib.compress("SELECT 'déflate', 2 + {n:UInt8}".encode())
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/?param_n=3", data=body, headers={"Content-Encoding": "deflate"}
    )
    with urllib.request.urlopen(request) as resp:
        assert resp.read() == "déflate\t5\n".encode()
        assert resp.headers["X-ClickHouse-Format"] == "TabSeparated"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/?query=SELECT%201%20FORMAT%20JSONEachRow") as resp:
        assert resp.read() == b'{"1":1}\n'
        assert "X-ClickHouse-Query-Id" in resp.headers and "read_rows" in resp.headers["X-ClickHouse-Summary"]


def test_settings_apply_per_request_and_database(port: int, client: Client) -> None:
    assert client.command("SELECT getSetting('max_threads')", settings={"max_threads": 3}) == 3
    assert client.command("SELECT getSetting('max_threads')") != 3
    client.command("CREATE DATABASE IF NOT EXISTS other")
    other = clickhouse_connect.get_client(host="127.0.0.1", port=port, database="other", compress=False)
    assert other.command("SELECT currentDatabase()") == "other"
    assert client.command("SELECT currentDatabase()") == "default"  # no database param: the default one
    client.command("USE other")  # like a session-less HTTP request: lasts for that request only
    assert client.command("SELECT currentDatabase()") == "default"
    other.close()


def test_errors_raise_database_error(client: Client) -> None:
    with pytest.raises(
        DatabaseError, match=r"Code: 60\. DB::Exception: .*no_such_table.*UNKNOWN_TABLE"
    ) as info:
        client.query("SELECT * FROM no_such_table")
    assert info.value.code == 60
    with pytest.raises(DatabaseError, match="SYNTAX_ERROR"):
        client.command("SELEC 1")
    assert client.command("SELECT 1") == 1  # the front keeps serving after errors


def test_process_exits_cleanly(tmp_path: Path) -> None:
    proc, port = start_front_process(tmp_path / "data")
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, compress=False)
    assert client.command("SELECT 40 + 2") == 42
    client.close()
    assert stop_front_process(proc) == 0

    proc, _ = start_front_process(tmp_path / "data")  # same directory again: the lock was released
    assert proc.stdin is not None
    proc.stdin.close()  # the parent going away (stdin EOF) also stops the front
    assert proc.wait(timeout=30) == 0
