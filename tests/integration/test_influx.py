"""InfluxDB line protocol: k6's `--out influxdb` points and JMeter's InfluxDB Backend Listener aggregates."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from warehouse.errors import IngestError
from warehouse.ingest import detect_format
from warehouse.store import Warehouse
from warehouse.tools.influx.influx_line import LineError, Point, parse_line

pytestmark = pytest.mark.integration

NS = 1_706_738_701_000_000_000  # 2024-01-31 22:05:01 UTC


# -- the parser, against the line-protocol syntax ---------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("cpu value=1 1", Point("cpu", {}, {"value": 1.0}, 10**9)),
        (r"my\ metric,host\,name=a\ b\=c value=1.5 " + str(NS),
         Point("my metric", {"host,name": "a b=c"}, {"value": 1.5}, NS)),
        ('m,t=x s="a \\"quoted\\" text, with = and \\\\",i=-3i,u=7u,b=t,f=-1.5e3 ' + str(NS),
         Point("m", {"t": "x"}, {"s": 'a "quoted" text, with = and \\', "i": -3, "u": 7, "b": True, "f": -1500.0},
               NS)),
        ("m v=1 1706738701000", Point("m", {}, {"v": 1.0}, NS)),  # milliseconds, recognised by magnitude
    ],
)
def test_line_protocol_escapes_and_field_types(line: str, expected: Point) -> None:
    assert parse_line(line) == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("garbage line here", "expected field=value"),
        ("m,t= v=1 1", "empty value"),
        ("m v=abc 1", "not a number"),
        ('m s="never closed 1', "no closing quote"),
        ("m v=1", "no timestamp"),
        ("m v=1 12:00", "not an integer"),
    ],
)
def test_bad_lines_say_what_is_wrong(line: str, reason: str) -> None:
    with pytest.raises(LineError, match=reason):
        parse_line(line)


# -- k6 --out influxdb -------------------------------------------------------------------------------


def _escape_tag(text: str) -> str:
    return re.sub(r"([, =\\])", r"\\\1", text)


def _ns(time: str) -> int:
    """k6's RFC 3339 time (nanoseconds, any offset) as unix nanoseconds, exactly."""
    import datetime as dt

    m = re.fullmatch(r"(.{19})(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", time)
    assert m, time
    whole = dt.datetime.fromisoformat(m[1] + ("+00:00" if m[3] == "Z" else m[3]))
    return int(whole.timestamp()) * 10**9 + int((m[2] or "0").ljust(9, "0")[:9])


def k6_json_to_line_protocol(source: Path, target: Path) -> int:
    """What k6's InfluxDB output writes for the points of a k6 JSON output: the metric as measurement, the
    tags (empty ones dropped, as InfluxDB drops them), url as a string field (k6's tags-as-fields), `value`."""
    written = 0
    with open(source, encoding="utf-8") as src, open(target, "w", encoding="utf-8") as out:
        out.write("# DML\n# CONTEXT-DATABASE: k6\n# CONTEXT-RETENTION-POLICY: autogen\n")
        for line in src:
            doc = json.loads(line)
            if doc["type"] != "Point":
                continue
            tags = dict(doc["data"]["tags"] or {})
            url = tags.pop("url", None)
            head = ",".join([_escape_tag(doc["metric"]), *(f"{_escape_tag(k)}={_escape_tag(v)}"
                                                           for k, v in sorted(tags.items()) if v != "")])
            fields = f"value={float(doc['data']['value'])!r}"
            if url is not None:
                fields += ',url="' + url.replace("\\", "\\\\").replace('"', '\\"') + '"'
            out.write(f"{head} {fields} {_ns(doc['data']['time'])}\n")
            written += 1
    return written


def test_k6_influx_export_gives_the_same_percentiles_as_its_json(
    tmp_path: Path, any_warehouse_url: str, k6_output: Path
) -> None:
    lp = tmp_path / "k6-influx.lp"
    points = k6_json_to_line_protocol(k6_output, lp)
    assert detect_format(lp).name == "influx-line"
    wh = Warehouse.open(any_warehouse_url)
    from_json = wh.ingest(k6_output)
    from_influx = wh.ingest(lp)
    assert from_influx.tool == "k6" and from_influx.rejected == 0
    assert from_influx.points == points == from_json.points
    assert from_influx.rows == from_json.rows > 10
    a, b = wh.totals(from_json.run_id), wh.totals(from_influx.run_id)
    for key in ("count", "errors", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "first_ts"):
        assert a[key] == b[key], key
    assert wh.step_stats(from_json.run_id) == wh.step_stats(from_influx.run_id)
    assert wh.run(from_influx.run_id).tool == "k6"
    again = wh.ingest(lp)
    assert again.duplicate and again.run_id == from_influx.run_id


# -- JMeter's InfluxDB Backend Listener --------------------------------------------------------------

# As JMeter 5.x's InfluxdbBackendListenerClient writes them: per interval, a line per transaction and
# status (ok, ko, all) with count, avg, min, max and the percentiles asked for, sent and received bytes;
# the `all` transaction with countError and hit; error lines with responseCode and responseMessage;
# the `internal` users line; an annotation in `events`.
JMETER_LINES = [
    "# DML",
    "# CONTEXT-DATABASE: jmeter",
    f"jmeter,application=shop,statut=ok,transaction=list\\ products count=40i,avg=12.5,min=3,max=48,"
    f"pct90.0=25,pct95.0=31.5,pct99.0=45,sb=5200i,rb=88000i {NS}",
    f"jmeter,application=shop,statut=ko,transaction=list\\ products count=2i,avg=70,min=65,max=75,"
    f"pct90.0=75,pct95.0=75,pct99.0=75 {NS}",
    f"jmeter,application=shop,statut=all,transaction=list\\ products count=42i,avg=15.2,min=3,max=75,"
    f"pct90.0=30,pct95.0=48,pct99.0=75 {NS}",
    f"jmeter,application=shop,transaction=list\\ products,responseCode=500,"
    f"responseMessage=Internal\\ Server\\ Error count=2i {NS}",
    f"jmeter,application=shop,statut=ok,transaction=login count=10i,avg=20,min=8,max=41,pct90.0=35 {NS + 5 * 10**9}",
    f"jmeter,application=shop,transaction=all,statut=all count=52i,countError=2i,hit=52i,avg=16.1 {NS}",
    f"jmeter,application=shop,transaction=internal minAT=0i,maxAT=4i,meanAT=3i,startedT=4i,endedT=0i {NS}",
    "jmeter,application=shop,transaction=login count=oops " + str(NS + 10**9),
    f'events,application=shop,title=ApacheJMeter,tags=ci text="shop started" {NS}',
]


def test_jmeter_backend_listener_lines_become_interval_aggregates(tmp_path: Path, any_warehouse_url: str) -> None:
    lp = tmp_path / "jmeter.lp"
    lp.write_text("\n".join(JMETER_LINES) + "\n", encoding="utf-8")
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(lp)
    assert (result.tool, result.rows, result.points) == ("jmeter", 0, 0)
    assert result.rejected == 1
    assert [(r.line, r.reason) for r in result.samples] == [
        (10, "field value 'oops' is not a number, boolean or quoted string")]
    assert any("interval aggregates" in n for n in result.notes)
    run = wh.run(result.run_id)
    assert run.tool == "jmeter" and "interval aggregates" in run.notes
    assert run.started_at.startswith("2024-01-31 22:05:01")
    p95 = {(r.step, r.status): r.value for r in wh.aggregates(result.run_id, "pct95.0")}
    assert p95 == {("list products", "ok"): 31.5, ("list products", "ko"): 75, ("list products", "all"): 48}
    counts = wh.aggregates(result.run_id, "count")
    assert {(r.journey, r.step, r.status, r.value) for r in counts} >= {
        ("shop", "list products", "ok", 40), ("shop", "login", "ok", 10), ("shop", "all", "all", 52)}
    errors = [r for r in counts if r.tags.get("responseCode") == "500"]
    assert errors[0].tags["responseMessage"] == "Internal Server Error" and errors[0].value == 2
    assert wh.totals(result.run_id)["count"] == 0  # no requests are invented from aggregates


def test_cli_says_jmeter_influx_data_are_aggregates(tmp_path: Path) -> None:
    lp = tmp_path / "jmeter.lp.gz"
    import gzip

    lp.write_bytes(gzip.compress(("\n".join(JMETER_LINES) + "\n").encode()))
    out = CliRunner().invoke(main, ["--warehouse", f"chdb://{tmp_path / 'wh'}", "ingest", str(lp)])
    assert out.exit_code == 7, out.output  # one rejected line
    assert "interval aggregates" in out.output and "no per-request rows" in out.output
    assert "jmeter.lp.gz:10: rejected: field value 'oops'" in out.output


def test_text_that_is_not_line_protocol_is_not_taken_for_it(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\nworld\n")
    with pytest.raises(IngestError, match="not a results file"):
        detect_format(notes)
