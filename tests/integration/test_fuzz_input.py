"""Damaged input of every kind, to every format and to the receiver: no traceback, no hang (every command runs under
a timeout), the valid records kept and every damaged one counted.

Each format gets a file of valid requests with every line-level damage inserted between them (impossible numbers,
garbage, binary, cut lines, hostile text), and files damaged as a whole (gzip damaged midway or cut short, ten years
of months, BOM and CRLF, a cut last line). All files go to one `perfhouse ingest` (one process, one warehouse
open); the receiver gets every damaged line as a write of its own, all at once."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.test_receiver import ReceiverProcess
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

N = 30  # valid requests per file
T0 = 1_704_067_200  # 2024-01-01, in seconds
BAD_T = T0 + 10_000  # where the damaged records claim to be (no valid request there)


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    header: str
    request: Callable[[int, int], list[str]]  # the lines of valid request i, t seconds after T0
    bad: Callable[[str, str], str]  # an otherwise valid record with this duration and time (as written)
    time: Callable[[int], str]  # a time in seconds, as the format writes it
    footer: str = ""


def _iso(seconds: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _k6_json_point(metric: str, value: str, time: str, name: str) -> str:
    return (f'{{"type":"Point","metric":"{metric}","data":{{"time":{time},"value":{value},'
            f'"tags":{{"name":"{name}","status":"200"}}}}}}')


K6_CSV_HEADER = ("metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,method,name,proto,"
                 "scenario,service,status,subproto,tls_version,url,extra_tags,metadata")
JTL_HEADER = ("timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,bytes,grpThreads,"
              "allThreads,Latency")

FORMATS = [
    Format("k6-json", "json", '{"type":"Metric","data":{"name":"http_reqs","type":"counter"},"metric":"http_reqs"}',
           lambda i, t: [_k6_json_point("http_reqs", "1", f'"{_iso(T0 + t)}"', f"s{i % 3}"),
                      _k6_json_point("http_req_duration", str(10 + i % 50), f'"{_iso(T0 + t)}"', f"s{i % 3}")],
           lambda d, t: _k6_json_point("http_req_duration", d, t, "bad"), lambda s: f'"{_iso(s)}"'),
    Format("k6-csv", "csv", K6_CSV_HEADER,
           lambda i, t: [f"http_reqs,{T0 + t},1,,,,true,,GET,s{i % 3},,default,,200,,,http://x/s,,",
                      f"http_req_duration,{T0 + t},{10 + i % 50},,,,true,,GET,s{i % 3},,default,,200,,,http://x/s,,"],
           lambda d, t: f"http_req_duration,{t},{d},,,,true,,GET,bad,,default,,200,,,http://x/bad,,", str),
    Format("jtl-csv", "jtl", JTL_HEADER,
           lambda i, t: [f"{(T0 + t) * 1000},{10 + i % 50},s{i % 3},200,OK,shop 1-1,text,true,100,1,1,5"],
           lambda d, t: f"{t},{d},bad,200,OK,shop 1-1,text,true,100,1,1,5", lambda s: str(s * 1000)),
    Format("jtl-xml", "xml", '<?xml version="1.0" encoding="UTF-8"?>\n<testResults version="1.2">',
           lambda i, t: [f'<httpSample t="{10 + i % 50}" lt="5" ts="{(T0 + t) * 1000}" s="true" lb="s{i % 3}" rc="200" '
                      f'rm="OK" tn="shop 1-1" by="100"/>'],
           lambda d, t: f'<httpSample t="{d}" lt="5" ts="{t}" s="true" lb="bad" rc="200" rm="OK" tn="shop 1-1"/>',
           lambda s: str(s * 1000), footer="</testResults>"),
    Format("locust-jsonl", "jsonl", "",
           lambda i, t: [json.dumps({"tool": "locust", "ts": T0 + t + 0.5, "duration_ms": 10 + i % 50, "journey": "shop",
                                  "step": f"s{i % 3}", "ok": True, "status": 200})],
           lambda d, t: f'{{"tool":"locust","ts":{t},"duration_ms":{d},"journey":"shop","step":"bad"}}', str),
    Format("influx-line", "lp", "",
           lambda i, t: [f"http_reqs,name=s{i % 3},status=200 value=1 {(T0 + t) * 10**9}",
                      f"http_req_duration,name=s{i % 3},status=200 value={10 + i % 50} {(T0 + t) * 10**9}"],
           lambda d, t: f"http_req_duration,name=bad,status=200 value={d} {t}", lambda s: str(s * 10**9)),
]

# Impossible or unreadable numbers: (kind, duration as written, time as written or None for a valid one). A text
# value goes into JSON as a string.
NUMBERS: list[tuple[str, str, str | None]] = [
    ("duration 1e20", "1e20", None), ("duration NaN", "NaN", None), ("duration -10", "-10", None),
    ("duration past Int64", "99999999999999999999", None), ("duration Int64 min", "-9223372036854775808", None),
    ("duration inf", "inf", None), ("duration 1e400", "1e400", None), ("duration over a day", "86400001", None),
    ("duration empty", "", None), ("duration text", "abc", None), ("duration hex", "0x10", None),
    ("duration comma decimal", "1,5", None), ("duration Infinity", "Infinity", None), ("duration -inf", "-inf", None),
    ("time past Int64", "10", "99999999999999999999"), ("time negative", "10", "-1000"),
    ("time year 9999", "10", "year9999"), ("time text", "10", "abc"), ("time empty", "10", ""),
    ("time year 2200", "10", "year2200"), ("time spaces", "10", "   "),
]
# Lines no format can read.
GARBAGE: list[tuple[str, bytes]] = [
    ("plain text", b"this is not a record at all"), ("NUL bytes", b"\x00\x00\x00\x00"),
    ("binary", bytes(b for b in range(256) if b not in (10, 13))), ("invalid UTF-8", b"\xff\xfe\xfd broken"),
    ("HTML error page", b"<html><body>502 Bad Gateway</body></html>"), ("JSON array", b"[1, 2, 3]"),
    ("shell injection", b"$(rm -rf /); `reboot`"), ("SQL injection", b"'); DROP TABLE requests; --"),
    ("format strings", b"%s%s%s%n {0} {{x}} ${jndi:ldap://x/a}"), ("unbalanced quote", b'"unterminated, quote'),
    ("delimiters only", b"\t;|,\t;|,"), ("emoji", "💥 ünïcödé ☃".encode()),
    ("deep nesting", b"[" * 5000 + b"]" * 5000), ("ten thousand fields", b",".join([b"1"] * 10000)),
    ("control characters", bytes(b for b in range(1, 32) if b not in (10, 13))),
    ("a megabyte line", b"x" * (1 << 20)), ("lone CR inside", b"abc\rdef"),
    ("JSON object of no tool", b'{"hello": "world"}'), ("an empty sample element", b"<sample/>"),
]


def _time(fmt: Format, written: str | None) -> str:
    if written is None:
        return fmt.time(BAD_T)
    years = {"year9999": 253_402_214_400, "year2200": 7_258_118_400}
    if written in years:
        return fmt.time(years[written])
    if fmt.name == "k6-json":
        return json.dumps(written) if not written.lstrip("-").isdigit() else f'"{written}"'
    return written


def _value(fmt: Format, written: str) -> str:
    if fmt.name in ("k6-json", "locust-jsonl"):
        try:
            float(written)
        except ValueError:
            return json.dumps(written)
        return written if written.lstrip("-").replace(".", "").replace("e", "").isdigit() else json.dumps(written)
    if fmt.name == "k6-csv" and "," in written:
        return f'"{written}"'
    return written


def valid_lines(fmt: Format, n: int = N, step_s: int = 1) -> list[str]:
    return [line for i in range(n) for line in fmt.request(i, i * step_s)]


def damaged_file(fmt: Format, tmp: Path) -> tuple[Path, int]:
    """Valid requests with every damage between them; the number of damaged lines."""
    bad = [fmt.bad(_value(fmt, d), _time(fmt, t)).encode() for _, d, t in NUMBERS]
    bad += [g for _, g in GARBAGE]
    good = [line.encode() for line in valid_lines(fmt)]
    lines, step = [], max(1, len(good) // len(bad))
    for i, line in enumerate(good):
        lines.append(line)
        if i % step == step - 1 and bad:
            lines.append(bad.pop(0))
    lines += bad
    path = tmp / f"damaged.{fmt.suffix}"
    path.write_bytes(_document(fmt, lines))
    return path, len(NUMBERS) + len(GARBAGE)


def _document(fmt: Format, lines: list[bytes]) -> bytes:
    parts = ([fmt.header.encode()] if fmt.header else []) + lines + ([fmt.footer.encode()] if fmt.footer else [])
    return b"\n".join(parts) + b"\n"


WHOLE_FILE_KINDS = ["gzip damaged midway", "gzip cut short", "ten years of months", "BOM and CRLF",
                    "last line cut", "label with NUL"]


def whole_files(fmt: Format, tmp: Path) -> list[tuple[str, Path]]:
    many = _document(fmt, [line.encode() for line in valid_lines(fmt, 3000)])
    packed = bytearray(gzip.compress(many))
    damaged = bytes(packed[: len(packed) // 2] + bytes([packed[len(packed) // 2] ^ 0xFF]) + packed[len(packed) // 2 + 1:])
    months = _document(fmt, [line.encode() for line in valid_lines(fmt, 120, step_s=31 * 86400)])
    plain = _document(fmt, [line.encode() for line in valid_lines(fmt)])
    crlf = b"\xef\xbb\xbf" + plain.replace(b"\n", b"\r\n")
    cut = plain.rstrip(b"\n")
    cut = cut[: len(cut) - 7] if not fmt.footer else plain[: plain.rindex(b"<httpSample") + 20]
    # a NUL byte in a label: JSON writes it escaped; XML cannot hold one at all (that sample is rejected)
    nul = plain.replace(b"s1", b"s\\u00001" if fmt.name in ("k6-json", "locust-jsonl") else b"s\x001", 1)
    out = []
    for kind, data in zip(WHOLE_FILE_KINDS, (damaged, bytes(packed[:-200]), months, crlf, cut, nul), strict=True):
        path = tmp / f"{kind.replace(' ', '_')}.{fmt.suffix}{'.gz' if kind.startswith('gzip') else ''}"
        path.write_bytes(data)
        out.append((kind, path))
    return out


def perfhouse(warehouse: str, *args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", warehouse, *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "CI": "true", **env})


def test_every_format_keeps_the_valid_records_and_counts_every_damaged_one(tmp_path: Path) -> None:
    assert len(NUMBERS) + len(GARBAGE) + len(WHOLE_FILE_KINDS) + 4 >= 50  # kinds of damage (4 below)
    expected: dict[str, tuple[str, int, int]] = {}  # file -> (format, requests kept, lines rejected at least)
    for fmt in FORMATS:
        path, bad = damaged_file(fmt, tmp_path)
        # XML reads text between two samples as character data, not as a record: only what breaks a sample counts
        expected[str(path)] = (fmt.name, N, bad if fmt.name != "jtl-xml" else -len(NUMBERS))
        for kind, whole in whole_files(fmt, tmp_path):
            keep, rejected = {"gzip damaged midway": (1, 1), "gzip cut short": (1, 1), "ten years of months": (120, 0),
                              "BOM and CRLF": (N, 0), "last line cut": (N - 1, 1),
                              "label with NUL": (N - 1, 1) if fmt.name == "jtl-xml" else (N, 0)}[kind]
            expected[str(whole)] = (fmt.name, keep, rejected)
    epoch = tmp_path / "epoch.jtl"  # a headerless JTL whose clock said 1970: detected by its columns
    epoch.write_text("".join(f"{1000 + i},{10 + i},s,200,OK,shop 1-1,text,true,1,1,1,1\n" for i in range(N)))
    expected[str(epoch)] = ("jtl-csv", N, 0)
    warehouse = f"chdb://{tmp_path / 'wh'}"
    done = perfhouse(warehouse, "ingest", *expected, "--json")
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 7, done.stderr[-3000:]
    outcomes = {o["path"]: o for o in map(json.loads, done.stdout.splitlines())}
    for path, (fmt_name, keep, rejected) in expected.items():
        o = outcomes[path]
        assert o["status"] == "ingested" and o["format"] == fmt_name, (path, o)
        kept = o["rows"]
        if keep in (N, 120) and "cut" not in path:
            assert kept == keep, (path, kept, o["rejected_lines"])
        else:
            assert kept >= keep, (path, kept, o["rejected_lines"])
        if rejected < 0:  # at least this many
            assert o["rejected"] >= -rejected, (path, o["rejected"], rejected, o["rejected_lines"])
        elif path.endswith(f"damaged.{path.rsplit('.', 1)[1]}"):
            assert o["rejected"] == rejected, (path, o["rejected"], rejected, o["rejected_lines"])
        else:
            assert o["rejected"] >= rejected, (path, o)
    # whole files that hold nothing to keep: a one-line error each, no traceback
    for name, data in (("empty.jtl", b""), ("binary.jtl", bytes(range(256)) * 64), ("garbage.json.gz", gzip.compress(
            b"\x00garbage\n" * 100)), ("header-only.jtl", JTL_HEADER.encode() + b"\n")):
        path = tmp_path / name
        path.write_bytes(data)
        failed = perfhouse(warehouse, "ingest", str(path))
        assert failed.returncode == 7 and "Traceback" not in failed.stderr, failed.stderr
        assert failed.stderr.count("\n") <= 3 and name in failed.stderr, failed.stderr


def post(url: str, body: bytes) -> tuple[int, str]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=300)
    try:
        conn.request("POST", "/write?db=perfhouse", body=body)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def test_the_receiver_answers_every_damaged_write_and_stores_the_valid_lines_once(tmp_path: Path) -> None:
    fmt = next(f for f in FORMATS if f.name == "influx-line")
    bodies = [fmt.bad(_value(fmt, d), _time(fmt, t)).encode() for _, d, t in NUMBERS] + [g for _, g in GARBAGE]
    valid = [line.encode() for line in valid_lines(fmt)]
    # each damaged line alone (refused: 400), and with a valid request beside it (the valid lines stored)
    writes = [*bodies, *(b + b"\n" + valid[2 * i] + b"\n" + valid[2 * i + 1] for i, b in enumerate(bodies[:N]))]
    writes += [gzip.compress(b) for b in bodies[:5]]
    url = f"chdb://{tmp_path / 'wh'}"
    receiver = ReceiverProcess(url)
    answers: list[tuple[int, str]] = []

    def send(body: bytes) -> None:
        answers.append(post(receiver.url, body))

    threads = [threading.Thread(target=send, args=(b,)) for b in writes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    receiver.proc.send_signal(signal.SIGTERM)
    _, stderr = receiver.proc.communicate(timeout=120)
    assert "Traceback" not in stderr, stderr
    assert len(answers) == len(writes) and all(status in (204, 400) for status, _ in answers), answers
    assert sum(1 for status, _ in answers if status == 400) >= len(bodies)
    stored = Warehouse.open(url).backend.query(
        "SELECT count() AS n FROM requests WHERE run_id = {r:String}", {"r": receiver.run_id})[0]["n"]
    assert stored == min(N, len(bodies))


def test_a_gzip_damaged_midway_keeps_every_line_zcat_recovers(tmp_path: Path) -> None:
    import random

    rng = random.Random(1)
    lines = [f"{(T0 + i) * 1000},{10 + i % 50},s{rng.randrange(10**9)},200,OK,shop 1-1,text,true,100,1,1,5"
             for i in range(40_000)]
    plain = ("\n".join([JTL_HEADER, *lines]) + "\n").encode()
    # Deflate mostly survives a flipped byte (the damage shows only at the checksum); a stored block's length
    # that does not match its complement breaks the stream where it stands: a full flush midway writes such a
    # block (empty: 00 00 FF FF), and the damage goes into it.
    pack = zlib.compressobj(6, zlib.DEFLATED, 31)
    first = pack.compress(plain[: len(plain) // 2]) + pack.flush(zlib.Z_FULL_FLUSH)
    packed = bytearray(first + pack.compress(plain[len(plain) // 2:]) + pack.flush())
    marker = first.rindex(b"\x00\x00\xff\xff")
    packed[marker + 2] ^= 0x01
    path = tmp_path / "damaged.jtl.gz"
    path.write_bytes(bytes(packed))
    recovered = subprocess.run(["zcat", str(path)], capture_output=True, timeout=60).stdout
    original = set(plain.splitlines()[1:])
    intact = sum(1 for line in recovered.split(b"\n")[:-1] if line in original)  # records zcat gives back whole
    assert 1000 < intact < 40_000
    done = perfhouse(f"chdb://{tmp_path / 'wh'}", "ingest", str(path), "--json")
    assert done.returncode == 7 and "Traceback" not in done.stderr, done.stderr
    outcome = json.loads(done.stdout.splitlines()[-1])
    before_damage = plain[: len(plain) // 2].count(b"\n") - 1  # every record whose line ends before the damage
    assert outcome["rows"] == before_damage >= intact  # all of it: what zcat gives back and what it still held
    assert outcome["rejected"] >= 1 and any("corrupt" in r["reason"] for r in outcome["rejected_lines"])
