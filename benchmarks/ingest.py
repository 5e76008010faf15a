"""Ingest benchmark (a command, not a test): perfhouse vs ClickHouse's own insert vs a Python loop.

    python benchmarks/ingest.py [--lines 7000000] [--jtl-rows 32000000] [--rounds 2] [--work DIR] [--tiny]

Builds a k6 JSON file by replicating real k6 output (timestamps shifted so every copy is distinct) and a
JTL CSV from a real-shaped JMeter 2.13 row set, then prints, for each of --rounds rounds (the two in turn,
perfhouse first in odd rounds and ClickHouse first in even ones, so a drift of the machine's speed weighs on
both): lines/s of perfhouse ingest (measured in a child process, with its peak RSS), of ClickHouse inserting
the same file straight from file() into a table (the reference, in a child process too, with its peak RSS), and
of a plain json.loads loop, with the ratios against the targets: perfhouse at least 0.9 of ClickHouse's pace, peak
RSS at most 500 MB.

The reference is what a ClickHouse user would write to load the file into a table of the shape perfhouse stores
it in, with default settings: for k6 JSON, its JSONEachRow reader into k6_points (typed columns, k6_points'
sorting key); for a JTL, its CSV reader with the JTL's columns typed (timeStamp and the integers as integers,
success as Bool) into the warehouse's requests table (its types, partitions and sorting key), the journey taken
from the thread name. Both tables are made by the warehouse's own migrations, in a warehouse of their own. Each
part also prints, for information, the reference in perfhouse's insert blocks (65,536 rows, the size of perfhouse's
parts) and the same file read into a table of String columns with no sorting key: no parsing and no sort, so no
fair pace for a load that parses and sorts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import add_tiny, find_tool, ratio, tiny_sizes  # noqa: E402

PACE_TARGET = 0.9  # perfhouse's time against ClickHouse's own insert of the same file
RSS_TARGET_MB = 500.0

CHILD = """
import json, sys, time
from warehouse.store import Warehouse
wh = Warehouse.open(sys.argv[1])
t = time.perf_counter()
r = wh.ingest(sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - t, "rows": r.rows, "points": r.points, "rejected": r.rejected}))
"""


def real_k6_output(work: Path) -> Path:
    """A real k6 JSON output: two VUs on the bundled demo API for three seconds."""
    from orchestrator.demo_api import DemoAPI

    k6 = find_tool("k6", "benchmarks/ingest.py")
    with DemoAPI() as api:
        script = work / "probe.js"
        script.write_text(
            'import http from "k6/http";\n'
            'export const options = { vus: 2, duration: "3s" };\n'
            f'export default function () {{ http.get("{api.url}/products?category=books"); '
            f'http.get("{api.url}/nope"); }}\n',
            encoding="utf-8",
        )
        out = work / "probe.json"
        subprocess.run([k6, "run", "--quiet", "--out", f"json={out}", str(script)], check=True,
                       capture_output=True, timeout=120)
        return out


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


def _sampled(argv: list[str], what: str) -> tuple[dict[str, Any], int, int]:
    """Run `argv` (a Python child printing a JSON object as its last line) and sample its memory: (that object, peak
    RSS in KB, peak anonymous RSS in KB).

    The peak RSS is the kernel's high-water mark of the child's own memory since it started (VmHWM, read every
    10 ms; not the rusage of the child, which keeps this process's size at the fork). It includes the pages of
    chdb's 500 MB engine library that the process touched (about 200 MB, file-backed and shared); the anonymous
    peak, sampled as often, is the memory the child itself allocated.
    """
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    anon_kb, peak_kb = 0, 0
    while True:
        pid, code, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(code)
            break
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:  # exited between the two calls: reaped at the next
            continue
        found = re.search(r"RssAnon:\s+(\d+)", status)
        anon_kb = max(anon_kb, int(found[1]) if found else 0)
        found = re.search(r"VmHWM:\s+(\d+)", status)
        peak_kb = max(peak_kb, int(found[1]) if found else 0)
        time.sleep(0.01)
    assert proc.stdout is not None
    if proc.returncode:
        raise SystemExit(f"{what} failed with exit status {proc.returncode}")
    return json.loads(proc.stdout.read().strip().splitlines()[-1]), peak_kb, anon_kb


def perfhouse_ingest(path: Path, work: Path) -> tuple[float, dict[str, float], int, int]:
    """Ingest in a child process: (seconds, its counts, peak RSS in KB, peak anonymous RSS in KB)."""
    out, peak_kb, anon_kb = _sampled([sys.executable, "-c", CHILD, f"chdb://{work / 'wh'}", str(path)],
                                     f"perfhouse ingest of {path}")
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


def clickhouse_reference(path: Path, home: Path, insert: str, structure: str, table: str) -> tuple[float, int, int]:
    """ClickHouse (chdb, default settings) running the reference `insert` of the file from file() into `table`, in
    a child process as perfhouse's ingest is: (seconds, rows in the table, the child's peak RSS in KB).

    The table is the warehouse's own (k6_points for k6, requests for the JTL), made by the warehouse's migrations
    (same columns, types, codecs, partitioning and sorting key), in a warehouse of its own; the statement parses
    each record once into those columns with ClickHouse's own input format: the engine's own way of storing what
    perfhouse stores. With default settings ClickHouse forms insert blocks of a million rows: its peak memory is
    printed beside its pace, for information (it has no bound to keep).
    """
    out, peak_kb, _ = _sampled([sys.executable, "-c", REF_CHILD, str(path), str(home), insert, structure,
                                table], f"ClickHouse's insert of {path}")
    return float(out["seconds"]), int(out["rows"]), peak_kb


# The reference at perfhouse's part size, for information: the same statement in insert blocks of the rows
# perfhouse's statements use (warehouse.ingest.sql.BOUNDED: 65,536 rows, the size its 500 MB bound allows), so that
# parts of the same size are written on both sides. ClickHouse's default insert block is a million rows. Its other
# defaults (parsing threads and chunks) still take well over 500 MB: its peak is printed beside it.
BLOCK_ROWS = 65536


def bounded(insert: str) -> str:
    """`insert` in insert blocks of BLOCK_ROWS rows (its other settings kept)."""
    blocks = (f"max_insert_block_size = {BLOCK_ROWS}, min_insert_block_size_rows = {BLOCK_ROWS}, "
              f"max_block_size = {BLOCK_ROWS}")
    body = insert.rstrip()
    return f"{body}, {blocks}" if "\nSETTINGS " in body else f"{body}\nSETTINGS {blocks}"


@dataclass(frozen=True)
class References:
    """ClickHouse's reference insert of a file (`seconds`, the `rows` it stored, `peak_kb`), and the same in
    perfhouse's insert blocks (`blocks_seconds`, `blocks_peak_kb`)."""

    seconds: float
    rows: int
    peak_kb: int
    blocks_seconds: float
    blocks_peak_kb: int

    def report(self, count: int, unit: str, ours: float, shape: str) -> None:
        """Print both inserts' pace over `count` `unit` (perfhouse took `ours` seconds) and their peak RSS."""
        print(f"  ClickHouse insert  {count / self.seconds:12,.0f} {unit}/s  (the reference: {shape})")
        print(f"    peak RSS {self.peak_kb / 1024:.0f} MB")
        print(f"  ClickHouse insert  {count / self.blocks_seconds:12,.0f} {unit}/s  (for information: the reference in "
              f"{BLOCK_ROWS}-row insert blocks, perfhouse's part size; perfhouse's pace against it "
              f"{self.blocks_seconds / ours:.2f})")
        print(f"    peak RSS {self.blocks_peak_kb / 1024:.0f} MB")


def clickhouse_references(path: Path, work: Path, insert: str, structure: str, table: str) -> References:
    """The reference `insert` of the file into `table`, at ClickHouse's defaults and in perfhouse's insert blocks,
    each in a warehouse of its own under `work`."""
    seconds, rows, peak_kb = clickhouse_reference(path, work / "ref", insert, structure, table)
    blocks_seconds, _, blocks_peak_kb = clickhouse_reference(path, work / "ref-blocks", bounded(insert), structure,
                                                             table)
    return References(seconds, rows, peak_kb, blocks_seconds, blocks_peak_kb)


REF_CHILD = """
import json, sys, time
from chdb import session
from warehouse.store import Warehouse
path, home, insert, structure, table = sys.argv[1:]
Warehouse.open(f"chdb://{home}").backend.release()  # migrations; the session closes at once
s = session.Session(home)
t = time.perf_counter()
s.query(insert, params={"path": path, "structure": structure})
seconds = time.perf_counter() - t
rows = int(str(s.query(f"SELECT count() FROM {table}", "CSV")).strip())
s.close()
print(json.dumps({"seconds": seconds, "rows": rows}))
"""


# ClickHouse's own way to load a JMeter 2.13 JTL (12 columns, no header) into the requests table: its CSV reader
# with the columns typed, each mapped to its requests column, the journey being the thread group's name (the
# thread name without JMeter's "G-T" numbers).
JTL_STRUCTURE = ("timeStamp Int64, elapsed UInt32, label String, responseCode String, responseMessage String, "
                 "threadName String, dataType String, success Bool, bytes UInt64, grpThreads UInt32, "
                 "allThreads UInt32, Latency UInt32")
JTL_REF_INSERT = r"""
INSERT INTO requests (run_id, batch, ts, tool, journey, step, status, ok, duration_ms, waiting_ms, bytes_received,
                      error, vu)
SELECT 'ref', 'ref', fromUnixTimestamp64Milli(timeStamp, 'UTC'), 'jmeter',
       replaceRegexpOne(threadName, '\\s+[0-9]+-[0-9]+$', ''), label, toUInt16OrZero(responseCode), success,
       elapsed, Latency, bytes, if(success, '', responseMessage), threadName
FROM file({path:String}, CSV, {structure:String})
"""


def cpu_load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} on {os.cpu_count()} cores"


def file_creation(work: Path, files: int = 300) -> str:
    """What creating a file in the work directory costs now, for the record beside the ratios.

    A load writes a dozen files per part (perfhouse's 65 k-row parts: some 4,000 files per GB of JTL; the
    reference's 1 M-row parts, a tenth of that). On this machine's ext4, which has no journal, creating a file
    within minutes of many deletions in the same block group costs about 0.5 ms of kernel time instead of some
    20 µs (the allocator skips inodes freed recently), which weighs on whoever writes more files. The probe's
    files stay until the benchmark ends, so that probing frees no inodes in between.
    """
    probe = Path(tempfile.mkdtemp(prefix=".probe-", dir=work))
    t = time.perf_counter()
    for i in range(files):
        (probe / str(i)).touch()
    return f"creating a file in {work} takes {(time.perf_counter() - t) / files * 1e6:.0f} µs"


def python_loop(path: Path) -> float:
    t = time.perf_counter()
    n = 0
    with open(path) as fh:
        for line in fh:
            n += len(json.loads(line))
    return time.perf_counter() - t


def new_dir(work: Path, name: str) -> Path:
    """A round's own directory, new (one left by an earlier benchmark in the same work directory is removed first).

    Nothing a round writes is deleted before the benchmark ends: on some file systems creating files where many
    were deleted in the last minutes costs far more (on this machine's ext4, which has no journal, 0.3-0.7 ms a
    file instead of some 20 µs, for a few minutes), and deleting one measurement's warehouse just before the next
    would weigh on whichever side runs next, the more so the more files that side writes. Each round still prints
    what creating a file costs at its start.
    """
    path = work / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def k6_round(big: Path, n: int, work: Path, first: str) -> tuple[float, float]:
    """One round on the k6 file, in the round's own new directory `work`: (perfhouse's pace against ClickHouse's,
    perfhouse's peak RSS in MB)."""
    order = ["perfhouse", "clickhouse"] if first == "perfhouse" else ["clickhouse", "perfhouse"]
    for who in order:
        if who == "perfhouse":
            ours, info, peak_kb, anon_kb = perfhouse_ingest(big, work / "k6")
        else:
            refs = clickhouse_references(big, work, REF_INSERT, REF_STRUCTURE, "k6_points")
    theirs = clickhouse_insert(big, "JSONEachRow", "type String, metric String, data String", work / "raw")
    print(f"  perfhouse ingest   {n / ours:12,.0f} lines/s  ({info['points']:.0f} points, {info['rows']:.0f} requests,"
          f" {info['rejected']:.0f} rejected; hash, parse, points, requests, checks, summaries)")
    print(f"    peak RSS {peak_kb / 1024:.0f} MB, of which allocated (anonymous) {anon_kb / 1024:.0f} MB "
          f"(the rest is file-backed pages: chdb's engine library, mapped files)")
    refs.report(n, "lines", ours, f"file() JSONEachRow into a table of k6_points' shape, {refs.rows} points")
    print(f"  ClickHouse insert  {n / theirs:12,.0f} lines/s  (for information: file() JSONEachRow into 3 String "
          f"columns, no parsing of data)")
    return refs.seconds / ours, peak_kb / 1024


def jtl_round(jtl: Path, rows: int, work: Path, first: str) -> tuple[float, float]:
    """One round on the JTL, in the round's own new directory `work`: (perfhouse's pace against ClickHouse's,
    perfhouse's peak RSS in MB)."""
    order = ["perfhouse", "clickhouse"] if first == "perfhouse" else ["clickhouse", "perfhouse"]
    for who in order:
        if who == "perfhouse":
            ours, info, peak_kb, anon_kb = perfhouse_ingest(jtl, work / "jtl")
        else:
            refs = clickhouse_references(jtl, work, JTL_REF_INSERT, JTL_STRUCTURE, "requests")
    theirs = clickhouse_insert(jtl, "CSV", ", ".join(f"c{i} String" for i in range(12)), work / "raw")
    print(f"  perfhouse ingest   {rows / ours:12,.0f} rows/s  ({info['rows']:.0f} requests, "
          f"{info['rejected']:.0f} rejected; hash, parse, requests, summaries)")
    print(f"    peak RSS {peak_kb / 1024:.0f} MB, of which allocated (anonymous) {anon_kb / 1024:.0f} MB")
    refs.report(rows, "rows", ours, f"file() CSV, typed, into a table of the requests table's shape, {refs.rows} requests")
    print(f"  ClickHouse insert  {rows / theirs:12,.0f} rows/s  (for information: file() CSV into 12 String columns, "
          f"no parsing, no sort)")
    return refs.seconds / ours, peak_kb / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The defaults make inputs of about 2 GB each; --lines 3500000 --jtl-rows 17760000 make about 1 GB.
    parser.add_argument("--lines", type=int, default=7_000_000)
    parser.add_argument("--jtl-rows", type=int, default=32_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    add_tiny(parser)
    args = tiny_sizes(parser.parse_args(), lines=20_000, jtl_rows=50_000, rounds=1)
    work = args.work or Path(tempfile.mkdtemp(prefix="perfhouse-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    big = work / "k6-big.json"
    n = build_k6(real_k6_output(work), big, args.lines)
    print(f"k6 JSON: {n} lines, {big.stat().st_size / 1e6:.0f} MB")
    print(f"  before: {cpu_load()}; {file_creation(work)}")
    verdicts = []
    for r in range(args.rounds):
        first = "perfhouse" if r % 2 == 0 else "clickhouse"
        print(f" round {r + 1} ({first} first; {file_creation(work)})")
        pace, peak = k6_round(big, n, new_dir(work, f"k6-round-{r + 1}"), first)
        verdicts += [ratio(f"k6 JSON round {r + 1}: perfhouse pace / ClickHouse's", pace, PACE_TARGET),
                     ratio(f"k6 JSON round {r + 1}: peak RSS", peak, RSS_TARGET_MB, higher_is_better=False, unit=" MB")]
        print("\n".join(verdicts[-2:]))
    loop = python_loop(big)
    print(f"  Python json.loads  {n / loop:12,.0f} lines/s")
    print(f"  after: {cpu_load()} (other work on the machine makes every figure noisy)")
    big.unlink()
    jtl = work / "big.jtl"
    rows = build_jtl(jtl, args.jtl_rows)
    print(f"JTL CSV: {rows} rows, {jtl.stat().st_size / 1e6:.0f} MB")
    print(f"  before: {cpu_load()}; {file_creation(work)}")
    for r in range(args.rounds):
        first = "perfhouse" if r % 2 == 0 else "clickhouse"
        print(f" round {r + 1} ({first} first; {file_creation(work)})")
        pace, peak = jtl_round(jtl, rows, new_dir(work, f"jtl-round-{r + 1}"), first)
        verdicts += [ratio(f"JTL round {r + 1}: perfhouse pace / ClickHouse's", pace, PACE_TARGET),
                     ratio(f"JTL round {r + 1}: peak RSS", peak, RSS_TARGET_MB, higher_is_better=False, unit=" MB")]
        print("\n".join(verdicts[-2:]))
    print(f"  after: {cpu_load()}; {file_creation(work)}")
    jtl.unlink()
    for done in [*work.glob(".probe-*"), *work.glob("*-round-*")]:
        shutil.rmtree(done, ignore_errors=True)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    print("targets:")
    print("\n".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
