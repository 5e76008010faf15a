"""JTL CSV in every column layout lands the same requests: JMeter 5.x's 17-column header, a tab or `;`
delimiter, custom saveservice columns (reordered, extras, variables), and 2.13's headerless 12 columns."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from warehouse.errors import WarehouseError
from warehouse.store import Warehouse
from warehouse.tools.jmeter import jtl_csv

pytestmark = pytest.mark.integration


@pytest.fixture(params=["strict", "checked"], autouse=True)
def jtl_pass(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test of this module passes through each of the two paths alone: the one strict pass a clean
    file takes (the checked path must not be needed), and the checked path a file with bad records takes."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        if request.param == "strict":
            raise AssertionError("the strict pass failed on a clean file")
        raise WarehouseError("forced onto the checked path")

    monkeypatch.setattr(jtl_csv, "_load_checked" if request.param == "strict" else "_load_strict", refuse)
    return str(request.param)

HEADER_5X = [
    "timeStamp",
    "elapsed",
    "label",
    "responseCode",
    "responseMessage",
    "threadName",
    "dataType",
    "success",
    "failureMessage",
    "bytes",
    "sentBytes",
    "grpThreads",
    "allThreads",
    "URL",
    "Latency",
    "IdleTime",
    "Connect",
]
# What JMeter 5.6 writes for a small shop run: a failing assertion (its message holds a comma), a server error
# with no assertion, a Transaction Controller's own sample (not a request), a thread group with spaces.
ROWS_5X = [
    [
        "1700000000000",
        "120",
        "list_products",
        "200",
        "OK",
        "browse 1-1",
        "text",
        "true",
        "",
        "837",
        "154",
        "2",
        "3",
        "http://127.0.0.1:8080/products?category=books",
        "118",
        "0",
        "3",
    ],
    [
        "1700000000050",
        "95",
        "login",
        "200",
        "OK",
        "checkout 2-1",
        "text",
        "true",
        "",
        "200",
        "210",
        "1",
        "3",
        "http://127.0.0.1:8080/login",
        "94",
        "0",
        "2",
    ],
    [
        "1700000000130",
        "15",
        "view_product",
        "200",
        "OK",
        "browse 1-1",
        "text",
        "true",
        "",
        "207",
        "140",
        "2",
        "3",
        "http://127.0.0.1:8080/products/1",
        "14",
        "0",
        "0",
    ],
    [
        "1700000000160",
        "7",
        "add_to_cart",
        "401",
        "Unauthorized",
        "checkout 2-1",
        "text",
        "false",
        "Test failed: code expected to equal /\n\n****** received  : 40[[[1]]]\n\n****** comparison: 20[[[1]]]\n\n/, "
        "and the body said no",
        "168",
        "230",
        "1",
        "3",
        "http://127.0.0.1:8080/cart",
        "7",
        "0",
        "0",
    ],
    [
        "1700000000045",
        "122",
        "checkout_flow",
        "200",
        "Number of samples in transaction : 2, number of failing samples : 1",
        "checkout 2-1",
        "",
        "false",
        "",
        "368",
        "440",
        "1",
        "3",
        "",
        "101",
        "15",
        "2",
    ],
    [
        "1700000000200",
        "30",
        "list_products",
        "500",
        "Internal Server Error",
        "Thread Group 1-12",
        "text",
        "false",
        "",
        "95",
        "154",
        "2",
        "3",
        "https://shop.example.com:8443/products?category=books&page=2",
        "29",
        "0",
        "11",
    ],
]
# The requests those rows are, as the warehouse must hold them (the transaction's own sample is not one).
EXPECTED = [
    (
        "browse",
        "list_products",
        "127.0.0.1",
        "http://127.0.0.1:8080/products?category=books",
        200,
        1,
        120.0,
        118.0,
        3.0,
        154,
        837,
        "",
        "browse 1-1",
    ),
    (
        "checkout",
        "login",
        "auth",
        "http://127.0.0.1:8080/login",
        200,
        1,
        95.0,
        94.0,
        2.0,
        210,
        200,
        "",
        "checkout 2-1",
    ),
    (
        "browse",
        "view_product",
        "127.0.0.1",
        "http://127.0.0.1:8080/products/1",
        200,
        1,
        15.0,
        14.0,
        0.0,
        140,
        207,
        "",
        "browse 1-1",
    ),
    (
        "checkout",
        "add_to_cart",
        "127.0.0.1",
        "http://127.0.0.1:8080/cart",
        401,
        0,
        7.0,
        7.0,
        0.0,
        230,
        168,
        "Unauthorized",  # the request error; the failed response code assertion is the failed check
        "checkout 2-1",
    ),
    (
        "Thread Group",
        "list_products",
        "shop.example.com",
        "https://shop.example.com:8443/products?category=books&page=2",
        500,
        0,
        30.0,
        29.0,
        11.0,
        154,
        95,
        "Internal Server Error",
        "Thread Group 1-12",
    ),
]
SERVICES = {("checkout", "login"): "auth"}
COLUMNS = (
    "journey, step, service, url, status, ok, duration_ms, waiting_ms, connect_ms, bytes_sent, "
    "bytes_received, error, vu"
)


def write_jtl(path: Path, header: list[str] | None, rows: list[list[str]], delimiter: str = ",") -> Path:
    """A JTL as JMeter's CSV writer makes it: quotes only around values holding the delimiter, a quote or a line."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def requests_of(wh: Warehouse, run_id: str) -> list[tuple[Any, ...]]:
    rows = wh.backend.query(
        f"SELECT {COLUMNS} FROM requests WHERE run_id = {{r:String}} ORDER BY ts, step", {"r": run_id}
    )
    return [tuple(row.values()) for row in rows]


def timestamps_of(wh: Warehouse, run_id: str) -> list[str]:
    rows = wh.backend.query(
        "SELECT toString(ts) AS ts FROM requests WHERE run_id = {r:String} ORDER BY ts", {"r": run_id}
    )
    return [r["ts"] for r in rows]


@pytest.mark.parametrize("delimiter", [",", "\t", ";"], ids=["comma", "tab", "semicolon"])
def test_jmeter_5x_header_lands_every_column(any_warehouse_url: str, tmp_path: Path, delimiter: str) -> None:
    wh = Warehouse.open(any_warehouse_url)
    jtl = write_jtl(tmp_path / "results.jtl", HEADER_5X, ROWS_5X, delimiter)
    result = wh.ingest(jtl, services=SERVICES)
    assert (result.format, result.rows, result.rejected) == ("jtl-csv", 5, 0)
    assert requests_of(wh, result.run_id) == EXPECTED
    assert timestamps_of(wh, result.run_id) == [
        "2023-11-14 22:13:20.000000",
        "2023-11-14 22:13:20.050000",
        "2023-11-14 22:13:20.130000",
        "2023-11-14 22:13:20.160000",
        "2023-11-14 22:13:20.200000",
    ]
    totals = wh.totals(result.run_id)
    assert (totals["count"], totals["errors"], totals["avg_ms"]) == (
        5,
        2,
        pytest.approx((120 + 95 + 15 + 7 + 30) / 5),
    )
    checks = wh.backend.query(
        "SELECT step, status, ok, checks, failed_checks, failed_check FROM requests WHERE run_id = {r:String} "
        "AND failed_checks > 0", {"r": result.run_id})
    # The 401's failed response code assertion: a request error and a failed check; the 500 without any
    # assertion: a request error only.
    assert [tuple(r.values()) for r in checks] == [("add_to_cart", 401, 0, 1, 1, ROWS_5X[3][8])]


def test_5x_default_file_without_header_uses_the_17_column_layout(
    any_warehouse_url: str, tmp_path: Path
) -> None:
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(write_jtl(tmp_path / "noheader.jtl", None, ROWS_5X), services=SERVICES)
    assert (result.rows, result.rejected) == (5, 0)
    assert requests_of(wh, result.run_id) == EXPECTED


def test_columns_the_warehouse_does_not_keep_reject_nothing(any_warehouse_url: str, tmp_path: Path) -> None:
    """grpThreads, allThreads and IdleTime are not read (as in an XML JTL): text, a negative count or a number past
    64 bits in them rejects no record, on either path, and every kept figure is as written."""
    damaged = ["-1", "99999999999999999999", "abc", "", "18446744073709551617", "1e3"]
    rows = [[*row] for row in ROWS_5X]
    for i, row in enumerate(rows):
        for name in ("grpThreads", "allThreads", "IdleTime"):
            row[HEADER_5X.index(name)] = damaged[(i + HEADER_5X.index(name)) % len(damaged)]
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(write_jtl(tmp_path / "results.jtl", HEADER_5X, rows), services=SERVICES)
    assert (result.rows, result.rejected) == (5, 0)
    assert requests_of(wh, result.run_id) == EXPECTED


def test_custom_saveservice_columns_reordered_with_extras(any_warehouse_url: str, tmp_path: Path) -> None:
    """A subset in another order, Hostname/SampleCount/ErrorCount, a sample_variables column, formatted time."""
    header = [
        "timeStamp",
        "label",
        "elapsed",
        "success",
        "responseCode",
        "threadName",
        "Hostname",
        "SampleCount",
        "ErrorCount",
        "Latency",
        "Connect",
        "URL",
        "bytes",
        "order_id",
    ]
    rows = []
    for source in (ROWS_5X[0], ROWS_5X[3], ROWS_5X[5]):
        by = dict(zip(HEADER_5X, source, strict=True))
        ms = int(by["timeStamp"]) - 1700000000000
        rows.append(
            [
                f"2023/11/14 22:13:20.{ms:03d}",
                by["label"],
                by["elapsed"],
                by["success"],
                by["responseCode"],
                by["threadName"],
                "loadgen-7",
                "1",
                str(int(by["success"] == "false")),
                by["Latency"],
                by["Connect"],
                by["URL"],
                by["bytes"],
                "ord-42",
            ]
        )
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(write_jtl(tmp_path / "custom.jtl", header, rows), services=SERVICES)
    assert (result.format, result.rows, result.rejected) == ("jtl-csv", 3, 0)
    # No sentBytes, failureMessage or responseMessage saved: 0 bytes sent, and a failure has no text to show.
    assert requests_of(wh, result.run_id) == [
        (
            "browse",
            "list_products",
            "127.0.0.1",
            "http://127.0.0.1:8080/products?category=books",
            200,
            1,
            120.0,
            118.0,
            3.0,
            0,
            837,
            "",
            "browse 1-1",
        ),
        (
            "checkout",
            "add_to_cart",
            "127.0.0.1",
            "http://127.0.0.1:8080/cart",
            401,
            0,
            7.0,
            7.0,
            0.0,
            0,
            168,
            "",
            "checkout 2-1",
        ),
        (
            "Thread Group",
            "list_products",
            "shop.example.com",
            "https://shop.example.com:8443/products?category=books&page=2",
            500,
            0,
            30.0,
            29.0,
            11.0,
            0,
            95,
            "",
            "Thread Group 1-12",
        ),
    ]
    assert timestamps_of(wh, result.run_id) == [
        "2023-11-14 22:13:20.000000",
        "2023-11-14 22:13:20.160000",
        "2023-11-14 22:13:20.200000",
    ]


def test_custom_header_with_a_tab_delimiter(any_warehouse_url: str, tmp_path: Path) -> None:
    # responseMessage stays: it is what marks a Transaction Controller's own sample in a CSV.
    header = [
        "timeStamp",
        "elapsed",
        "label",
        "responseCode",
        "responseMessage",
        "threadName",
        "success",
        "failureMessage",
        "URL",
    ]
    picked = [[r[0], r[1], r[2], r[3], r[4], r[5], r[7], r[8], r[13]] for r in ROWS_5X]
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(write_jtl(tmp_path / "tabs.jtl", header, picked, "\t"))
    assert (result.rows, result.rejected) == (5, 0)
    got = wh.backend.query(
        "SELECT journey, step, service, status, ok, duration_ms, error FROM requests WHERE run_id = {r:String} "
        "ORDER BY ts",
        {"r": result.run_id},
    )
    assert [tuple(r.values()) for r in got] == [
        ("browse", "list_products", "127.0.0.1", 200, 1, 120.0, ""),
        ("checkout", "login", "127.0.0.1", 200, 1, 95.0, ""),
        ("browse", "view_product", "127.0.0.1", 200, 1, 15.0, ""),
        ("checkout", "add_to_cart", "127.0.0.1", 401, 0, 7.0, "Unauthorized"),
        ("Thread Group", "list_products", "shop.example.com", 500, 0, 30.0, "Internal Server Error"),
    ]


def test_jmeter_213_headerless_12_columns_from_a_real_run(any_warehouse_url: str, jtl_output: Path) -> None:
    """JMeter 2.13's default JTL: no header, 12 columns, no URL (service from the spec's map)."""
    lines = list(csv.reader(jtl_output.read_text(encoding="utf-8").splitlines()))
    assert {len(line) for line in lines} == {12}
    steps = {
        "list_products": "browse",
        "view_product": "browse",
        "login": "checkout",
        "add_to_cart": "checkout",
    }
    services = {(journey, step): "api" for step, journey in steps.items()}
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(jtl_output, services=services)
    assert (result.format, result.rows, result.rejected) == ("jtl-csv", 12, 0)  # smoke: 2 VUs × 3 iterations
    stats = wh.step_stats(result.run_id)
    assert [(s.journey, s.step, s.service, s.count, s.errors) for s in stats] == [
        ("browse", "list_products", "api", 3, 0),
        ("browse", "view_product", "api", 3, 0),
        ("checkout", "add_to_cart", "api", 3, 0),
        ("checkout", "login", "api", 3, 0),
    ]
    got = wh.backend.query(
        "SELECT step, duration_ms, waiting_ms, bytes_received, status, url, vu, toUnixTimestamp64Milli(ts) AS ms "
        "FROM requests WHERE run_id = {r:String}",
        {"r": result.run_id},
    )
    # timeStamp, elapsed, label, responseCode, responseMessage, threadName, dataType, success, bytes, grpThreads,
    # allThreads, Latency: every request exactly as the file has it.
    expected = Counter(
        (f[2], float(f[1]), float(f[11]), int(f[8]), int(f[3]), "", f[5], int(f[0])) for f in lines
    )
    assert Counter(tuple(r.values()) for r in got) == expected
    for row in got:
        assert steps[row["step"]] == row["vu"].rsplit(" ", 1)[0]


def test_213_failed_samples_are_request_errors_or_failed_checks(any_warehouse_url: str, tmp_path: Path) -> None:
    """JMeter 2.13's default JTL has no failure message: a failed sample with a 2xx/3xx code was failed by an
    assertion (a failed check), any other a request error; with the spec's steps, the expected status decides."""
    from warehouse.ingest import StepFacts

    rows = [
        ["1700000000000", "10", "home", "200", "OK", "browse 1-1", "text", "false", "90", "1", "1", "9"],
        ["1700000000010", "10", "home", "503", "Service Unavailable", "browse 1-1", "text", "false", "90", "1", "1",
         "9"],
        ["1700000000020", "10", "gone", "404", "Not Found", "browse 1-1", "text", "true", "90", "1", "1", "9"],
        ["1700000000030", "10", "gone", "200", "OK", "browse 1-1", "text", "false", "90", "1", "1", "9"],
        ["1700000000040", "10", "home", "Non HTTP response code: java.net.ConnectException",
         "Non HTTP response message: Connection refused", "browse 1-1", "text", "false", "0", "1", "1", "0"],
    ]
    jtl = write_jtl(tmp_path / "213.jtl", None, rows)
    query = ("SELECT step, status, ok, checks, failed_checks, failed_check, error, method FROM requests "
             "WHERE run_id = {r:String} ORDER BY ts")
    wh = Warehouse.open(any_warehouse_url)
    imported = wh.ingest(jtl)
    assert [tuple(r.values()) for r in wh.backend.query(query, {"r": imported.run_id})] == [
        ("home", 200, 1, 1, 1, "an assertion failed", "", ""),
        ("home", 503, 0, 0, 0, "", "Service Unavailable", ""),
        ("gone", 404, 1, 0, 0, "", "", ""),
        ("gone", 200, 1, 1, 1, "an assertion failed", "", ""),  # misread without the spec: it expects 404
        ("home", 0, 0, 0, 0, "", "Non HTTP response message: Connection refused", ""),
    ]
    steps = {("browse", "home"): StepFacts("GET", 0, 1), ("browse", "gone"): StepFacts("DELETE", 404, 1)}
    # the same rows, with a header row (the same rows in the same file would be a duplicate)
    known = wh.ingest(write_jtl(tmp_path / "213-header.jtl", jtl_csv.LAYOUTS[12], rows), steps=steps)
    assert [tuple(r.values()) for r in wh.backend.query(query, {"r": known.run_id})] == [
        ("home", 200, 1, 1, 1, "an assertion failed", "", "GET"),
        ("home", 503, 0, 1, 0, "", "Service Unavailable", "GET"),
        ("gone", 404, 1, 1, 0, "", "", "DELETE"),
        ("gone", 200, 0, 1, 0, "", "OK", "DELETE"),  # the spec expects 404: a request error
        ("home", 0, 0, 1, 0, "", "Non HTTP response message: Connection refused", "GET"),
    ]
