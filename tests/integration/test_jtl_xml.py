"""JTL XML from real JMeter 2.13 runs: the same requests as JMeter's own summariser and as its CSV, nested
sub-results (redirect hops, a Transaction Controller's parent sample) counted as their innermost requests,
and bad or truncated XML keeping every complete sample before and after the damage."""

from __future__ import annotations

import gzip
import re
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from orchestrator.demo_api import DemoAPI
from tests.conftest import ROOT, need
from tests.support.localhttp import serving
from warehouse.errors import IngestError
from warehouse.ingest import all_formats, detect_format
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration

XML = "-Jjmeter.save.saveservice.output_format=xml"
SHOP_STEPS = {
    "list_products": "browse",
    "view_product": "browse",
    "login": "checkout",
    "add_to_cart": "checkout",
}


def plan(spec: Path, profile: str, services: dict[str, str], out: Path) -> Path:
    from orchestrator.generators import GenerationOptions
    from orchestrator.spec import load_spec
    from orchestrator.tools import generate

    out.write_text(
        generate(load_spec(spec), "jmeter", GenerationOptions(profile, services, "2.13")).content,
        encoding="utf-8",
    )
    return out


def jmeter(jmx: Path, out: Path, *props: str) -> Path:
    """Run the plan with JMeter (non-GUI); its log (with the summariser lines) is out + '.log'."""
    subprocess.run(
        [need("jmeter"), "-n", "-t", str(jmx), "-l", str(out), "-j", f"{out}.log", *props],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def summariser(log: Path) -> tuple[int, int, int]:
    """Count, average (whole ms, as JMeter prints it) and errors of JMeter's `summary =` line."""
    found = re.findall(
        r"summary =\s+(\d+) in .*?Avg:\s+(\d+) .*?Err:\s+(\d+)", log.read_text(encoding="utf-8")
    )
    assert found, f"no summariser line in {log}"
    count, avg, errors = found[-1]
    return int(count), int(avg), int(errors)


def leaves(path: Path) -> list[ET.Element]:
    """The oracle: innermost samples that are not a transaction's own sample, read by ElementTree."""
    found = []
    for element in ET.parse(path).getroot().iter():
        innermost = element.tag in ("httpSample", "sample") and not any(
            c.tag in ("httpSample", "sample") for c in element
        )
        if innermost and not element.get("rm", "").startswith("Number of samples in transaction"):
            found.append(element)
    return found


def requests_of(wh: Warehouse, run_id: str, columns: str) -> list[dict[str, Any]]:
    return wh.backend.query(
        f"SELECT {columns} FROM requests WHERE run_id = {{r:String}} ORDER BY ts, step", {"r": run_id}
    )


@pytest.fixture(scope="module")
def shop_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The shop's smoke profile (2 VUs × 3 iterations) against the demo API: once to XML, once to CSV."""
    tmp = tmp_path_factory.mktemp("jtlxml")
    with DemoAPI() as api:
        jmx = plan(ROOT / "examples" / "shop.yaml", "smoke", {"api": api.url}, tmp / "shop.jmx")
        return jmeter(jmx, tmp / "shop.xml", XML), jmeter(jmx, tmp / "shop.csv")


@pytest.fixture(scope="module")
def groups_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """tests/golden/groups (a Transaction Controller around login and cart), as generated and with JMeter's
    "Generate parent sample" on, which nests the transaction's requests inside its own sample."""
    tmp = tmp_path_factory.mktemp("jtlxml-groups")
    with DemoAPI() as api:
        flat = plan(
            ROOT / "tests" / "golden" / "groups" / "spec.yaml", "golden", {"api": api.url}, tmp / "groups.jmx"
        )
        text = flat.read_text(encoding="utf-8")
        off = '<boolProp name="TransactionController.parent">false</boolProp>'
        assert off in text
        nested = tmp / "groups-parent.jmx"
        nested.write_text(text.replace(off, off.replace("false", "true")), encoding="utf-8")
        return {
            "flat": jmeter(flat, tmp / "flat.xml", XML),
            "nested": jmeter(nested, tmp / "nested.xml", XML),
        }


class Redirects(BaseHTTPRequestHandler):
    """/old → 302 /mid → 301 /new → 200."""

    def do_GET(self) -> None:
        hops = {"/old": (302, "/mid"), "/mid": (301, "/new")}
        if self.path in hops:
            code, where = hops[self.path]
            self.send_response(code)
            self.send_header("Location", where)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def redirect_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two iterations of a redirected step (JMeter nests each hop in the step's sample) and a failing check."""
    tmp = tmp_path_factory.mktemp("jtlxml-redirect")
    spec = tmp / "redirect.yaml"
    spec.write_text(
        "name: redirect\nservices:\n  web: http://127.0.0.1:1\njourneys:\n  - name: hop\n    steps:\n"
        "      - {name: moved, path: /old}\n      - {name: direct, path: /new, checks: [{status: 201}]}\n"
        "profiles:\n  two: {executor: iterations, vus: 1, iterations: 2}\n",
        encoding="utf-8",
    )
    with serving(Redirects) as url:
        jmx = plan(spec, "two", {"web": url}, tmp / "redirect.jmx")
        yield jmeter(jmx, tmp / "redirect.xml", XML, "-Jjmeter.save.saveservice.url=true")


def test_xml_is_detected_and_registered(shop_runs: tuple[Path, Path]) -> None:
    assert "jtl-xml" in all_formats()
    assert detect_format(shop_runs[0]).name == "jtl-xml"
    assert detect_format(shop_runs[1]).name == "jtl-csv"


def test_xml_totals_equal_the_jmeter_summariser(any_warehouse_url: str, shop_runs: tuple[Path, Path]) -> None:
    xml = shop_runs[0]
    count, avg, errors = summariser(Path(f"{xml}.log"))
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(xml)
    assert (result.format, result.tool, result.rows, result.rejected) == ("jtl-xml", "jmeter", 12, 0)
    totals = wh.totals(result.run_id)
    assert (totals["count"], totals["errors"]) == (count, errors) == (12, 0)
    assert abs(totals["avg_ms"] - avg) < 1  # the summariser prints whole milliseconds
    # Every sample exactly as the file has it.
    expected = Counter(
        (
            e.get("lb"),
            float(e.get("t", "")),
            float(e.get("lt", "")),
            int(e.get("by", "")),
            int(e.get("rc", "")),
            e.get("tn"),
            int(e.get("ts", "")),
        )
        for e in leaves(xml)
    )
    got = requests_of(
        wh,
        result.run_id,
        "step, duration_ms, waiting_ms, bytes_received, status, vu, toUnixTimestamp64Milli(ts) AS ms",
    )
    assert Counter(tuple(r.values()) for r in got) == expected


def test_xml_and_csv_of_the_same_plan_give_the_same_steps(
    any_warehouse_url: str, shop_runs: tuple[Path, Path]
) -> None:
    services = {(journey, step): "api" for step, journey in SHOP_STEPS.items()}
    wh = Warehouse.open(any_warehouse_url)
    from_xml, from_csv = (wh.ingest(path, services=services) for path in shop_runs)
    a, b = wh.step_stats(from_xml.run_id), wh.step_stats(from_csv.run_id)
    keys = ("journey", "step", "service", "count", "errors")
    assert (
        [tuple(getattr(s, k) for k in keys) for s in a]
        == [tuple(getattr(s, k) for k in keys) for s in b]
        == [
            ("browse", "list_products", "api", 3, 0),
            ("browse", "view_product", "api", 3, 0),
            ("checkout", "add_to_cart", "api", 3, 0),
            ("checkout", "login", "api", 3, 0),
        ]
    )


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_transaction_controller_sample_is_not_a_request(
    any_warehouse_url: str, groups_runs: dict[str, Path], layout: str
) -> None:
    xml = groups_runs[layout]
    text = xml.read_text(encoding="utf-8")
    assert "Number of samples in transaction" in text
    assert (re.search(r"<sample [^>]*[^/]>\s*<httpSample", text) is not None) == (layout == "nested")
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(xml)
    assert (result.rows, result.rejected) == (4, 0)
    got = requests_of(wh, result.run_id, "journey, step, status, ok")
    assert [tuple(r.values()) for r in got] == [
        ("buy", "browse", 200, 1),
        ("buy", "login", 200, 1),
        ("buy", "cart", 201, 1),
        ("buy", "after", 200, 1),
    ]


def test_redirect_hops_are_the_requests_under_their_step(any_warehouse_url: str, redirect_run: Path) -> None:
    assert re.search(
        r'<httpSample [^>]*lb="moved"[^>]*>\s*<httpSample', redirect_run.read_text(encoding="utf-8")
    )
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(redirect_run)
    assert (result.rows, result.rejected) == (8, 0)  # 2 × (3 hops + 1 direct); not the 2 parents
    got = requests_of(wh, result.run_id, "journey, step, service, status, ok, url, error, failed_checks, failed_check")
    port = got[0]["url"].split(":")[2].split("/")[0]
    base = f"http://127.0.0.1:{port}"
    failing = [a for a in leaves(redirect_run)[3].iter("assertionResult") if a.findtext("failure") == "true"]
    assert Counter(tuple(r.values()) for r in got) == Counter(
        {
            ("hop", "moved", "127.0.0.1", 302, 1, f"{base}/old", "", 0, ""): 2,
            ("hop", "moved", "127.0.0.1", 301, 1, f"{base}/mid", "", 0, ""): 2,
            ("hop", "moved", "127.0.0.1", 200, 1, f"{base}/new", "", 0, ""): 2,
            # A 200 where the plan's status assertion expects 201: a request error (the response's message is
            # its text), and that assertion is a failed check, named as the plan names it.
            ("hop", "direct", "127.0.0.1", 200, 0, f"{base}/new", "OK", 1, failing[0].findtext("name")): 2,
        }
    )
    assert failing[0].findtext("failureMessage").startswith("Test failed: code")
    totals = wh.totals(result.run_id)
    assert (totals["errors"], totals["check_failures"]) == (2, 2)
    assert {(e.get("lb"), e.get("s")) for e in leaves(redirect_run)} >= {("direct", "false")}


HAND_WRITTEN = """<?xml version="1.0" encoding="UTF-8"?>
<testResults version="1.2">
<httpSample t="42" it="3" lt="40" ct="7" ts="1700000000000" s="true" lb="search" rc="200" rm="OK"
    tn="Shoppers 1-1" dt="text" de="UTF-8" by="1234" sby="321" sc="1" ec="0" ng="1" na="2" hn="loadgen-7">
  <responseHeader class="java.lang.String">HTTP/1.1 200 OK\tX-Odd: a\\tb</responseHeader>
  <responseData class="java.lang.String">{"items": ["tab\there", "line
break", "&lt;tag&gt;"]}</responseData>
  <method class="java.lang.String">POST</method>
  <java.net.URL>http://shop.example.com/search?q=a&amp;b=c</java.net.URL>
</httpSample>
<sample t="90" ts="1700000000100" s="false" lb="pay" rc="" rm="Number of samples in transaction : 2, number of failing samples : 1" tn="Shoppers 1-1" dt="" by="10" ng="1" na="2">
  <sample t="5" lt="0" ts="1700000000101" s="true" lb="think" rc="200" rm="OK" tn="Shoppers 1-1" dt="text" by="0" ng="1" na="2"/>
  <httpSample t="80" lt="60" ct="1" ts="1700000000110" s="false" lb="card &quot;visa&quot;" rc="502" rm="Bad Gateway" tn="Shoppers 1-1" dt="text" by="10" sby="77" ng="1" na="2">
    <assertionResult>
      <name>ok</name>
      <failure>false</failure>
      <error>false</error>
    </assertionResult>
    <assertionResult>
      <name>status</name>
      <failure>true</failure>
      <error>false</error>
      <failureMessage>Test failed: code expected 200, got 502</failureMessage>
    </assertionResult>
    <java.net.URL>https://pay.example.com:8443/charge</java.net.URL>
  </httpSample>
</sample>
</testResults>
"""


def test_every_attribute_and_child_of_a_hand_written_5x_xml(any_warehouse_url: str, tmp_path: Path) -> None:
    """Attributes on several lines, it/ct/sby/hn, headers and bodies with tabs and line breaks, entities."""
    path = tmp_path / "five.jtl"
    path.write_text(HAND_WRITTEN, encoding="utf-8")
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(path, services={("Shoppers", "search"): "search-svc"})
    assert (result.format, result.rows, result.rejected) == ("jtl-xml", 3, 0)
    got = requests_of(
        wh,
        result.run_id,
        "journey, step, service, method, url, status, ok, duration_ms, waiting_ms, "
        "connect_ms, bytes_sent, bytes_received, error, vu, toString(ts) AS t, checks, failed_checks, failed_check",
    )
    assert [tuple(r.values()) for r in got] == [
        (
            "Shoppers",
            "search",
            "search-svc",
            "POST",
            "http://shop.example.com/search?q=a&b=c",
            200,
            1,
            42.0,
            40.0,
            7.0,
            321,
            1234,
            "",
            "Shoppers 1-1",
            "2023-11-14 22:13:20.000000",
            0,
            0,
            "",
        ),
        (
            "Shoppers",
            "think",
            "",
            "",
            "",
            200,
            1,
            5.0,
            0.0,
            0.0,
            0,
            0,
            "",
            "Shoppers 1-1",
            "2023-11-14 22:13:20.101000",
            0,
            0,
            "",
        ),
        (
            "Shoppers",
            'card "visa"',
            "pay.example.com",
            "",
            "https://pay.example.com:8443/charge",
            502,
            0,
            80.0,
            60.0,
            1.0,
            77,
            10,
            "Bad Gateway",  # the request error; the failed status assertion is a failed check, by its name
            "Shoppers 1-1",
            "2023-11-14 22:13:20.110000",
            2,
            1,
            "status",
        ),
    ]


# -- bad input -------------------------------------------------------------------------------------------


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def sample_starts(lines: list[bytes]) -> list[int]:
    """0-based indexes of the lines where top-level samples start."""
    return [i for i, line in enumerate(lines) if re.match(rb"<(httpSample|sample)[\s>/]", line)]


def test_truncated_xml_keeps_the_complete_samples_before_the_cut(
    any_warehouse_url: str, shop_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    lines = lines_of(shop_runs[0])
    starts = sample_starts(lines)
    assert len(starts) == 12
    cut = tmp_path / "cut.xml"
    cut.write_bytes(b"".join(lines[: starts[7] + 2]) + lines[starts[7] + 2][:9])  # inside the 8th sample
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(cut)
    assert (result.rows, result.rejected) == (7, 1)
    assert [(r.line, r.reason) for r in result.samples] == [
        (starts[7] + 1, "the file is cut short inside this sample; the sample is lost")
    ]

    mid_tag = tmp_path / "cut-tag.xml"  # JMeter killed while writing a start tag
    mid_tag.write_bytes(b"".join(lines[: starts[5]]) + lines[starts[5]][:40])
    result = wh.ingest(mid_tag)
    assert (result.rows, result.rejected) == (5, 1)
    assert result.samples[0].line == starts[5] + 1 and "cut short" in result.samples[0].reason


def test_missing_closing_tag_loses_nothing(
    any_warehouse_url: str, shop_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    """JMeter stopped hard leaves every sample complete and only </testResults> missing."""
    lines = lines_of(shop_runs[0])
    assert lines[-1].strip() == b"</testResults>"
    open_end = tmp_path / "open.xml"
    open_end.write_bytes(b"".join(lines[:-1]))
    result = Warehouse.open(any_warehouse_url).ingest(open_end)
    assert (result.rows, result.rejected) == (12, 0)


def test_garbage_in_the_middle_loses_only_its_sample(
    any_warehouse_url: str, shop_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    lines = lines_of(shop_runs[0])
    s = sample_starts(lines)
    damaged = list(lines)
    damaged[s[9]] = damaged[s[9]].replace(b'lb="', b'lb="a&b ', 1)  # an unescaped & in the 10th sample
    damaged.insert(s[3], b"\x00garbage <<not xml\n")  # a garbage line between the 3rd and 4th samples
    damaged.insert(s[6] + 1, lines[s[6]][:30] + b"\n")  # a start tag cut short, then the 7th sample whole
    bad = tmp_path / "garbage.xml"
    bad.write_bytes(b"".join(damaged))
    wh = Warehouse.open(any_warehouse_url)
    result = wh.ingest(bad)
    assert (result.rows, result.rejected) == (11, 3)
    assert [(r.line, r.reason) for r in result.samples] == [
        (s[3] + 1, "not well-formed XML (invalid token); parsing resumed at the next sample"),
        (s[6] + 2, "not well-formed XML (invalid token); parsing resumed at the next sample"),
        (s[9] + 3, "not well-formed XML (invalid token); parsing resumed at the next sample"),
    ]
    assert result.samples[0].text == "\x00garbage <<not xml"
    lost = re.search(rb' lb="([^"]+)"', lines[s[9]])
    assert lost is not None
    expected = Counter({"list_products": 3, "view_product": 3, "login": 3, "add_to_cart": 3})
    expected[lost.group(1).decode()] -= 1
    assert Counter(r["step"] for r in requests_of(wh, result.run_id, "step")) == expected


def test_bad_values_are_rejected_with_their_line(
    any_warehouse_url: str, shop_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    lines = lines_of(shop_runs[0])
    s = sample_starts(lines)
    damaged = list(lines)
    damaged[s[1]] = re.sub(rb' t="\d+"', b' t="slow"', damaged[s[1]])
    damaged[s[4]] = re.sub(rb' s="true"', b' s="maybe"', damaged[s[4]])
    bad = tmp_path / "values.xml"
    bad.write_bytes(b"".join(damaged))
    result = Warehouse.open(any_warehouse_url).ingest(bad)
    assert (result.rows, result.rejected) == (10, 2)
    assert [(r.line, r.reason) for r in result.samples] == [
        (s[1] + 1, "t (elapsed) is not a number"),
        (s[4] + 1, "s (success) is neither true nor false"),
    ]


def test_gzip_xml_and_reingest_adds_nothing(
    any_warehouse_url: str, shop_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    packed = tmp_path / "shop.xml.gz"
    packed.write_bytes(gzip.compress(shop_runs[0].read_bytes()))
    wh = Warehouse.open(any_warehouse_url)
    first = wh.ingest(packed)
    assert (first.format, first.rows, first.rejected) == ("jtl-xml", 12, 0)
    again = wh.ingest(packed)
    assert again.duplicate and again.run_id == first.run_id
    assert wh.totals(first.run_id)["count"] == 12


def test_xml_without_samples_is_refused(any_warehouse_url: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.xml"
    empty.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<testResults version="1.2">\n</testResults>\n')
    with pytest.raises(IngestError, match="no valid jtl-xml rows"):
        Warehouse.open(any_warehouse_url).ingest(empty)
