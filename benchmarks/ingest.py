"""Ingest benchmark (a command, not a test): perfhouse vs ClickHouse's own insert vs a Python loop.

    python benchmarks/ingest.py [--lines 7000000] [--jtl-rows 32000000] [--work DIR]

Builds a k6 JSON file by replicating real k6 output (timestamps shifted so every copy is distinct) and a
JTL CSV from a real-shaped JMeter 2.13 row set, then prints from ONE run: lines/s of perfhouse ingest
(measured in a child process, with its peak RSS), of ClickHouse inserting the same file straight from
file() into a table, and of a plain json.loads loop, with the ratios against the targets.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = """
import json, sys, time
from warehouse.store import Warehouse
wh = Warehouse.open(sys.argv[1])
t = time.perf_counter()
r = wh.ingest(sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - t, "rows": r.rows, "points": r.points, "rejected": r.rejected}))
"""


def real_k6_output(work: Path) -> Path:
    from orchestrator.demo_api import DemoAPI
    from tests.conftest import run_k6

    with DemoAPI() as api:
        return run_k6(work, api, seconds="3s")


def build_k6(seed: Path, out: Path, lines: int) -> int:
    """Copies of the seed one after the other in time, like one long run, until `lines` lines.

    Copy N has every data.time shifted by N times the seed's span (whole seconds), so every request
    stays distinct and the file reads like a single long test, as a real 2 GB k6 output is.
    """
    seed_lines = seed.read_text().splitlines()
    stamp = re.compile(r'"time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)')
    seconds = [dt.datetime.fromisoformat(m[1]) for line in seed_lines if (m := stamp.search(line))]
    span = dt.timedelta(seconds=int((max(seconds) - min(seconds)).total_seconds()) + 1)
    written, copy = 0, 0
    with open(out, "w") as fh:
        while written < lines:
            shifted: dict[str, str] = {}

            def later(m: re.Match[str], offset: dt.timedelta = span * copy, memo: dict[str, str] = shifted) -> str:
                second = m[1]
                if second not in memo:
                    memo[second] = (dt.datetime.fromisoformat(second) + offset).isoformat()
                return f'"time":"{memo[second]}'

            chunk = seed_lines[: lines - written]
            fh.write("\n".join(stamp.sub(later, line, count=1) for line in chunk) + "\n")
            written += len(chunk)
            copy += 1
    return written


def build_jtl(out: Path, rows: int) -> int:
    base = 1_700_000_000_000
    with open(out, "w") as fh:
        for i in range(rows):
            fh.write(f"{base + i},{20 + i % 50},step_{i % 4},200,OK,browse 1-{i % 8 + 1},text,true,"
                     f"{500 + i % 7},8,8,{10 + i % 9}\n")
    return rows


def perfhouse_ingest(path: Path, work: Path) -> tuple[float, dict[str, float], int, int]:
    """Ingest in a child process: (seconds, its counts, peak RSS in KB, peak anonymous RSS in KB).

    The peak RSS includes the pages of chdb's 500 MB engine library that the process touched (about
    200 MB, file-backed and shared); the anonymous peak, sampled every 10 ms, is the memory the ingest
    itself allocated.
    """
    url = f"chdb://{work / 'wh'}"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, url, str(path)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    anon_kb, peak_kb = 0, 0
    while True:
        pid, code, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode, peak_kb = os.waitstatus_to_exitcode(code), usage.ru_maxrss
            break
        status = Path(f"/proc/{proc.pid}/status").read_text()
        found = re.search(r"RssAnon:\s+(\d+)", status)
        anon_kb = max(anon_kb, int(found[1]) if found else 0)
        time.sleep(0.01)
    assert proc.stdout is not None
    if proc.returncode:
        raise SystemExit(f"perfhouse ingest of {path} failed with exit status {proc.returncode}")
    out = json.loads(proc.stdout.read().strip().splitlines()[-1])
    return float(out["seconds"]), out, peak_kb, anon_kb


def clickhouse_insert(path: Path, fmt: str, structure: str, work: Path) -> float:
    """ClickHouse (chdb, default settings) inserting the file from file() into a table of String columns."""
    from chdb import session

    s = session.Session(str(work / "raw"))
    try:
        s.query(f"CREATE TABLE IF NOT EXISTS raw ({structure}) ENGINE = MergeTree ORDER BY tuple()")
        t = time.perf_counter()
        s.query(f"INSERT INTO raw SELECT * FROM file('{path}', {fmt}, '{structure}')")
        return time.perf_counter() - t
    finally:
        s.close()


# ClickHouse's own way to read k6's lines into k6_points' columns: its JSONEachRow input format.
REF_STRUCTURE = ("type LowCardinality(String), metric LowCardinality(String), "
                 "data Tuple(time String, value Float64, tags LowCardinality(String))")
REF_INSERT = """
INSERT INTO k6_points (run_id, batch, ts, ts_ns, metric, value, tags, generator)
SELECT 'ref', 'ref', toDateTime64(time, 6, 'UTC'), toUInt16(toUnixTimestamp64Nano(time) % 1000), metric, data.value,
       data.tags, ''
FROM (SELECT type, metric, data, parseDateTime64BestEffortOrNull(data.time, 9, 'UTC') AS time
      FROM file({path:String}, JSONEachRow, {structure:String}))
WHERE type = 'Point' AND time IS NOT NULL
SETTINGS input_format_json_read_objects_as_strings = 1, input_format_skip_unknown_fields = 1
"""


def clickhouse_k6_points(path: Path, work: Path) -> tuple[float, int]:
    """ClickHouse (chdb, default settings) inserting the k6 file from file() into a table of k6_points' shape.

    The table is k6_points itself, made by the warehouse's migrations (same columns, types, codecs,
    partitioning and sorting key), in a warehouse of its own; the statement parses each line once into
    those columns with the JSONEachRow input format: the engine's own way of storing the raw points
    perfhouse stores.
    """
    from warehouse.store import Warehouse

    Warehouse.open(f"chdb://{work / 'ref'}")  # migrations; the session closes again
    from chdb import session

    s = session.Session(str(work / "ref"))
    try:
        t = time.perf_counter()
        s.query(REF_INSERT, params={"path": str(path), "structure": REF_STRUCTURE})
        seconds = time.perf_counter() - t
        rows = int(str(s.query("SELECT count() FROM k6_points", "CSV")).strip())
        return seconds, rows
    finally:
        s.close()


def cpu_load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} on {os.cpu_count()} cores"


def python_loop(path: Path) -> float:
    t = time.perf_counter()
    n = 0
    with open(path) as fh:
        for line in fh:
            n += len(json.loads(line))
    return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The defaults make inputs of about 2 GB each, the size the memory target is set for.
    parser.add_argument("--lines", type=int, default=7_000_000)
    parser.add_argument("--jtl-rows", type=int, default=32_000_000)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="perfhouse-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    big = work / "k6-big.json"
    n = build_k6(real_k6_output(work), big, args.lines)
    print(f"k6 JSON: {n} lines, {big.stat().st_size / 1e6:.0f} MB")
    print(f"  before: {cpu_load()}")
    ours, info, peak_kb, anon_kb = perfhouse_ingest(big, work / "k6")
    shaped, ref_points = clickhouse_k6_points(big, work / "k6")
    theirs = clickhouse_insert(big, "JSONEachRow", "type String, metric String, data String", work / "k6")
    loop = python_loop(big)
    print(f"  perfhouse ingest   {n / ours:12,.0f} lines/s  ({info['points']:.0f} points, {info['rows']:.0f} requests,"
          f" {info['rejected']:.0f} rejected; hash, parse, points, requests, checks)")
    print(f"    peak RSS {peak_kb / 1024:.0f} MB, of which allocated (anonymous) {anon_kb / 1024:.0f} MB "
          f"(target < 300 MB for a 2 GB input; the rest is file-backed pages: chdb's engine library, mapped files)")
    print(f"  ClickHouse insert  {n / shaped:12,.0f} lines/s  (the reference: file() JSONEachRow into a table of "
          f"k6_points' shape, {ref_points} points)")
    print(f"  ClickHouse insert  {n / theirs:12,.0f} lines/s  (for information: file() JSONEachRow into 3 String "
          f"columns, no parsing of data)")
    print(f"  Python json.loads  {n / loop:12,.0f} lines/s")
    print(f"  ratios: perfhouse/ClickHouse {shaped / ours:.2f} (target >= 0.8; against the String table "
          f"{theirs / ours:.2f}), perfhouse/Python {loop / ours:.2f} (target >= 3)")
    print(f"  after: {cpu_load()} (other work on the machine makes every figure noisy)")
    jtl = work / "big.jtl"
    rows = build_jtl(jtl, args.jtl_rows)
    ours, info, peak_kb, anon_kb = perfhouse_ingest(jtl, work / "jtl")
    theirs = clickhouse_insert(jtl, "CSV", ", ".join(f"c{i} String" for i in range(12)), work / "jtl")
    print(f"JTL CSV: {rows} rows, {jtl.stat().st_size / 1e6:.0f} MB")
    print(f"  perfhouse ingest   {rows / ours:12,.0f} rows/s  (target >= 1,000,000; {info['rows']:.0f} requests, "
          f"{info['rejected']:.0f} rejected)")
    print(f"    peak RSS {peak_kb / 1024:.0f} MB, of which allocated (anonymous) {anon_kb / 1024:.0f} MB "
          f"(target < 300 MB for a 2 GB input; the rest is file-backed pages: chdb's engine library, mapped files)")
    print(f"  ClickHouse insert  {rows / theirs:12,.0f} rows/s   ratio {theirs / ours:.2f} (target >= 0.8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
