"""Every tool's generated script against a recording server: same requests, same order, extraction used."""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from orchestrator.demo_api import DemoAPI, Recorded
from orchestrator.generators import GenerationOptions
from orchestrator.generators.jmeter import BRACKETS_NOTE, UNTYPED_BODY_NOTE
from orchestrator.spec import Spec, load_spec
from orchestrator.tools import TOOLS, generate
from tests.conftest import ROOT, need

pytestmark = pytest.mark.integration

Seen = tuple[str, str, tuple[tuple[str, str], ...], str, object]


def run_script(spec: Spec, tool: str, api: DemoAPI, tmp_path: Path, profile: str = "once") -> list[Recorded]:
    binary = need(tool)
    version = TOOLS[tool].version(binary)
    script = generate(spec, tool, TOOLS[tool].for_version(GenerationOptions(profile, {"api": api.url}), version))
    path = tmp_path / script.filename
    path.write_text(script.content, encoding="utf-8")
    invocation = TOOLS[tool].invocation(binary, path, tmp_path)
    proc = subprocess.run(invocation.argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert TOOLS[tool].completed(proc.returncode), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "level=error" not in proc.stderr, proc.stderr[-3000:]  # k6 carries on after a script exception
    return api.requests


def seen(requests: list[Recorded], headers: tuple[str, ...] = ()) -> list[Seen]:
    out = []
    for r in requests:
        ctype = r.headers.get("content-type", "").split(";")[0]
        body: object = r.body.decode("utf-8")
        if ctype == "application/json":
            body = json.loads(r.body)
        elif ctype == "application/x-www-form-urlencoded":
            body = sorted(parse_qsl(r.body.decode(), keep_blank_values=True))
        picked = "|".join(f"{h}={r.headers.get(h, '')}" for h in headers)
        out.append((r.method, r.path, tuple(r.query), picked, body))
    return out


def shop_once(tmp_path: Path) -> Spec:
    """The example shop with one profile: one VU per journey, one iteration."""
    head = (ROOT / "examples" / "shop.yaml").read_text(encoding="utf-8").partition("profiles:\n")[0]
    path = tmp_path / "shop.yaml"
    path.write_text(
        head + "profiles:\n  once: {executor: iterations, vus: 1, iterations: 1}\n", encoding="utf-8"
    )
    return load_spec(path)


@pytest.mark.parametrize("tool", ["k6", "jmeter", "locust"])
def test_shop_requests_match_the_spec_with_extracted_values(tool: str, tmp_path: Path) -> None:
    spec = shop_once(tmp_path)
    with DemoAPI(record=True) as api:
        requests = run_script(spec, tool, api, tmp_path)
    got = seen(requests, ("authorization", "accept"))
    browse = [r for r in got if r[1].startswith("/products")]
    checkout = [r for r in got if r[1] in ("/login", "/cart")]
    assert [(m, p, q) for m, p, q, _, _ in browse] == [
        ("GET", "/products", (("category", "books"),)),
        ("GET", "/products/1", ()),  # product_id extracted from $.items[0].id of the first response
    ]
    assert [(m, p, b) for m, p, _, _, b in checkout] == [
        ("POST", "/login", {"user": "demo", "password": "secret"}),
        ("POST", "/cart", {"product_id": 3, "qty": 1}),
    ]
    login_headers, cart_headers = checkout[0][3], checkout[1][3]
    assert "accept=application/json" in login_headers
    assert cart_headers.startswith("authorization=Bearer tok-demo-")  # the token the login returned
    assert len(got) == 4


def test_every_tool_sends_identical_hostile_strings(tmp_path: Path) -> None:
    spec = load_spec(ROOT / "tests" / "golden" / "hostile" / "spec.yaml")
    recordings = {}
    for tool in ("k6", "jmeter", "locust"):
        (tmp_path / tool).mkdir()
        with DemoAPI(record=True) as api:
            recordings[tool] = seen(
                run_script(spec, tool, api, tmp_path / tool, profile="golden"), ("x-note",)
            )
    word = 'it\'s "quoted" `tick` </script> ]]> & <b>'
    expected = [
        (
            "POST",
            "/echo/caf%C3%A9",
            (("q", word), ("literal", "${not_a_var} \\ back\\slash, (ünïcødé 😀)")),
            'x-note=it\'s "q" `t` ${x} </b>',
            {"text": f"line1\nline2\u2028sep {word}", "nested": {"list": [1, 2.5, True, None, word]}},
        )
    ]
    assert recordings["k6"] == expected
    assert recordings["jmeter"] == expected
    assert recordings["locust"] == expected


@pytest.mark.parametrize("tool", ["k6", "jmeter", "locust"])
def test_csv_rows_are_used_in_sequence_and_json_escaped(tool: str, tmp_path: Path) -> None:
    spec = load_spec(ROOT / "tests" / "golden" / "data" / "spec.yaml")
    script = generate(spec, tool, GenerationOptions(profile="golden"))
    for data_file in script.files:  # runners place data files beside the script
        (tmp_path / data_file.name).write_bytes(data_file.read_bytes())
    with DemoAPI(record=True) as api:
        requests = run_script(spec, tool, api, tmp_path, profile="golden")
    bodies = [json.loads(r.body) for r in requests]
    assert bodies == [
        {"user": "alice", "password": "s3cret", "note": "plain"},
        {"user": "bob", "password": "pa,ss", "note": "quoted, with comma"},
        {"user": "carol", "password": 'say "hi"', "note": "${not_a_var} é"},
        {"user": "alice", "password": "s3cret", "note": "plain"},
    ]


@pytest.mark.parametrize("tool", ["k6", "jmeter", "locust"])
def test_grouped_steps_send_the_same_requests_in_order(tool: str, tmp_path: Path) -> None:
    spec = load_spec(ROOT / "tests" / "golden" / "groups" / "spec.yaml")
    with DemoAPI(record=True) as api:
        requests = run_script(spec, tool, api, tmp_path, profile="golden")
    assert [(r.method, r.path) for r in requests] == [("GET", "/products"), ("POST", "/login"), ("POST", "/cart"),
                                                     ("GET", "/health")]
    assert requests[2].headers["authorization"].startswith("Bearer tok-demo-")


def test_jmeter_transaction_samples_are_not_counted_as_requests(tmp_path: Path) -> None:
    from warehouse.store import Warehouse

    spec = load_spec(ROOT / "tests" / "golden" / "groups" / "spec.yaml")
    with DemoAPI(record=True) as api:
        run_script(spec, "jmeter", api, tmp_path, profile="golden")
    assert b"Number of samples in transaction" in (tmp_path / "jmeter.jtl").read_bytes()
    result = Warehouse.open(f"chdb://{tmp_path / 'wh'}").ingest(tmp_path / "jmeter.jtl")
    assert (result.rows, result.rejected) == (4, 0)


@pytest.mark.parametrize("tool", ["k6", "jmeter"])
def test_variables_reach_every_place_that_takes_them(tool: str, tmp_path: Path) -> None:
    spec = load_spec(ROOT / "tests" / "golden" / "variables" / "spec.yaml")
    for data_file in generate(spec, tool, GenerationOptions(profile="golden")).files:
        (tmp_path / data_file.name).write_bytes(data_file.read_bytes())
    with DemoAPI(record=True) as api:
        requests = run_script(spec, tool, api, tmp_path, profile="golden")
    got = seen(requests, ("x-tenant", "x-client", "authorization", "x-user", "x-version"))
    token = got[1][1].split("/")[4]
    assert token.startswith("tok-alice-")  # extracted from the login's JSON
    defaults = "x-tenant=acme & co|x-client=perfhouse/v2 (acme & co)"
    assert got == [
        ("POST", "/login", (), f"{defaults}|authorization=|x-user=|x-version=", {"user": "alice", "tenant": "acme & co"}),
        ("GET", f"/echo/v2/alice/{token}/K%C3%B6ln%20am%20Rhein",  # encoded as k6 encodes it
         (("tenant", "acme & co"), ("city", "Köln am Rhein"), ("session", f"s-{token}")),
         f"{defaults}|authorization=Bearer {token}|x-user=alice|x-version=v2", ""),
        ("POST", "/echo/form", (), f"{defaults}|authorization=|x-user=|x-version=",
         [("tenant", "acme & co"), ("token", token), ("user", "alice")]),
        ("PUT", "/echo/raw", (), f"{defaults}|authorization=|x-user=|x-version=", f"v2|alice|Köln am Rhein|{token}"),
    ]


def test_paths_needing_percent_encoding_are_sent_alike(tmp_path: Path) -> None:
    spec = load_spec(ROOT / "tests" / "golden" / "paths" / "spec.yaml")
    sent = {}
    for tool in ("k6", "jmeter"):
        (tmp_path / tool).mkdir()
        with DemoAPI(record=True) as api:
            sent[tool] = [r.path for r in run_script(spec, tool, api, tmp_path / tool, profile="golden")]
    assert sent["k6"] == [
        "/echo/q%22uote", "/echo/back%60tick", "/echo/%3Cangle%3E", "/echo/pi%7Cpe", "/echo/%7Bbrace%7D",
        "/echo/ca%5Eret", "/echo/sp%20ace", "/echo/%C3%BCn%C3%AF/%E6%97%A5%E6%9C%AC", "/echo/back%5Cslash",
        "/echo/sub!$&'()*+,;=:@[x]%41~", "/echo/mixed%20%28x%29%20A/", "/echo/v/a%20b/%C3%BC%22x%22/end",
    ]
    # java.net.URI refuses brackets in a path: JMeter sends them encoded, and the plan records it
    assert sent["jmeter"] == [p.replace("[", "%5B").replace("]", "%5D") for p in sent["k6"]]
    assert BRACKETS_NOTE in generate(spec, "jmeter", GenerationOptions(profile="golden", tool_version="2.13")).notes


SHOP_FLOW = [("GET", "/products"), ("GET", "/products/1"), ("POST", "/login"), ("POST", "/cart")]


@pytest.mark.parametrize("tool", ["k6", "jmeter", "locust"])
def test_generated_scripts_retarget_by_environment_or_property_alone(tool: str, tmp_path: Path) -> None:
    spec = shop_once(tmp_path)
    binary = need(tool)
    with DemoAPI(record=True) as baked, DemoAPI(record=True) as other:
        text = (tmp_path / "shop.yaml").read_text(encoding="utf-8").replace("http://127.0.0.1:8080", baked.url)
        (tmp_path / "shop.yaml").write_text(text, encoding="utf-8")
        spec = load_spec(tmp_path / "shop.yaml")
        version = TOOLS[tool].version(binary) if tool == "jmeter" else "5.6"
        script = generate(spec, tool, GenerationOptions(profile="once", tool_version=version))
        path = tmp_path / script.filename
        path.write_text(script.content, encoding="utf-8")
        argv = TOOLS[tool].invocation(binary, path, tmp_path).argv
        env = dict(os.environ)
        if tool != "jmeter":  # k6 and the locustfile read the variable, the JMX a property
            env["PERFHOUSE_SERVICE_API"] = other.url + "/"  # a trailing slash is dropped
        else:
            argv.append(f"-Jperfhouse.service.api={other.url}/")
        proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert TOOLS[tool].completed(proc.returncode), proc.stdout[-3000:] + proc.stderr[-3000:]
        assert baked.requests == []
        assert sorted((r.method, r.path) for r in other.requests) == sorted(SHOP_FLOW)


@pytest.mark.parametrize("tool", ["k6", "jmeter", "locust"])
def test_a_run_honours_the_service_variable_and_service_option_wins(tool: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.run import run_tool
    from warehouse.store import Warehouse

    need(tool)
    spec = shop_once(tmp_path)
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    with DemoAPI(record=True) as from_env, DemoAPI(record=True) as from_option:
        monkeypatch.setenv("PERFHOUSE_SERVICE_API", from_env.url)
        first = run_tool(spec, tool, wh, "once", runs_dir=tmp_path / "runs")
        assert first.status == "completed", first.notes
        assert sorted((r.method, r.path) for r in from_env.requests) == sorted(SHOP_FLOW)
        second = run_tool(spec, tool, wh, "once", {"api": from_option.url}, runs_dir=tmp_path / "runs")
        assert second.status == "completed", second.notes
        assert len(from_env.requests) == 4
        assert sorted((r.method, r.path) for r in from_option.requests) == sorted(SHOP_FLOW)


LABELLED_SPEC = """\
name: labelled
services: {api: "http://127.0.0.1:8080"}
journeys:
  - name: browse
    steps:
      - {name: list, label: list products, path: /products}
      - {name: view, label: "view product #1 (détail)", path: /products/1}
  - name: buy
    label: Buy & pay
    steps:
      - {name: health, path: /health}
profiles:
  once: {executor: iterations, vus: 1, iterations: 2}
slos:
  - {metric: p95, threshold: 5s, step: list}
"""

HAND_WRITTEN_K6 = """\
import http from "k6/http";
export const options = { scenarios: { browse: { executor: "per-vu-iterations", vus: 1, iterations: 2 } } };
export default function () {
  http.get(`${__ENV.BASE}/products`, { tags: { name: "list products" } });
  http.get(`${__ENV.BASE}/products/1`, { tags: { name: "view product #1 (détail)" } });
}
"""


def test_labelled_steps_land_where_hand_written_history_does(tmp_path: Path) -> None:
    from orchestrator.run import run_tool
    from warehouse.store import Warehouse

    (tmp_path / "labelled.yaml").write_text(LABELLED_SPEC, encoding="utf-8")
    spec = load_spec(tmp_path / "labelled.yaml")
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    expected = {("browse", "list products"): 2, ("browse", "view product #1 (détail)"): 2}
    with DemoAPI() as api:
        for tool in ("k6", "jmeter", "locust"):
            need(tool)
            outcome = run_tool(spec, tool, wh, "once", {"api": api.url}, runs_dir=tmp_path / "runs")
            assert outcome.status == "completed", outcome.notes
            assert {(s.journey, s.step): s.count for s in outcome.steps} == {**expected,
                                                                                   ("Buy & pay", "health"): 2}, tool
            assert [v.scope for v in outcome.verdicts] == ["list products"] and outcome.verdicts[0].passed
        # history from a hand-written k6 script and a hand-written JMeter plan's JTL, imported
        (tmp_path / "hand.js").write_text(HAND_WRITTEN_K6, encoding="utf-8")
        subprocess.run([need("k6"), "run", "--quiet", "--out", f"json={tmp_path / 'hand.json'}", str(tmp_path / "hand.js")],
                       env={**os.environ, "BASE": api.url}, check=True, capture_output=True, timeout=120)
    jtl = tmp_path / "hand.jtl"
    jtl.write_text("".join(f"17960{i}0000000,{3 + i},{label},200,OK,browse 1-1,text,true,120,1,1,{2 + i}\n"
                           for i, label in enumerate(["list products", "view product #1 (détail)"] * 2)),
                   encoding="utf-8")
    for path in (tmp_path / "hand.json", jtl):
        result = wh.ingest(path)
        steps = {(s.journey, s.step): s.count for s in wh.step_stats(result.run_id)}
        assert steps == expected, path.name


@pytest.mark.parametrize("tool", ["k6", "jmeter", "locust"])
def test_untyped_bodies_and_expected_statuses(tool: str, tmp_path: Path) -> None:
    from orchestrator.run import run_tool
    from warehouse.store import Warehouse

    need(tool)
    spec = load_spec(ROOT / "tests" / "golden" / "bodies" / "spec.yaml")
    wh = Warehouse.open(f"chdb://{tmp_path / 'wh'}")
    with DemoAPI(record=True) as api:
        outcome = run_tool(spec, tool, wh, "golden", {"api": api.url}, runs_dir=tmp_path / "runs")
        sent = {r.path: (r.headers.get("content-type"), r.body) for r in api.requests}
    assert outcome.status == "completed", outcome.notes
    if tool == "k6":
        assert sent["/echo/raw"] == (None, b"a=1;b=2")
        assert sent["/echo/json"] == (None, b'{"a":1}')
    elif tool == "jmeter":  # JMeter cannot leave the header out, and the run records that
        assert sent["/echo/raw"] == ("application/x-www-form-urlencoded", b"a=1;b=2")
        assert sent["/echo/json"] == ("text/plain; charset=UTF-8", b'{"a": 1}')
        assert UNTYPED_BODY_NOTE in outcome.notes
    assert sent["/echo/typed"] == ("application/xml", b"<x/>")
    # a 404 is a request error unless the step expects it; a status check alone does not make it expected
    errors = {s.step: s.errors for s in outcome.steps}
    assert errors == {"raw_untyped": 0, "json_untyped": 0, "raw_typed": 0, "missing_expected": 0,
                      "missing_checked": 1, "either": 0}


def test_named_checks_and_step_tags_reach_the_results(tmp_path: Path) -> None:
    spec = load_spec(ROOT / "tests" / "golden" / "tagged" / "spec.yaml")
    with DemoAPI() as api:
        k6_script = tmp_path / "tagged.k6.js"
        k6_script.write_text(generate(spec, "k6", GenerationOptions("golden", {"api": api.url})).content)
        subprocess.run([need("k6"), "run", "--quiet", "--out", f"json={tmp_path / 'k6.json'}", str(k6_script)],
                       check=True, capture_output=True, timeout=120)
        jmeter = need("jmeter")
        plan = tmp_path / "tagged.jmx"
        plan.write_text(generate(spec, "jmeter", GenerationOptions("golden", {"api": api.url},
                                                                   TOOLS["jmeter"].version(jmeter))).content)
        subprocess.run([jmeter, "-n", "-t", str(plan), "-l", str(tmp_path / "j.jtl"), "-j", str(tmp_path / "j.log"),
                        "-Jjmeter.save.saveservice.output_format=xml", "-Jjmeter.save.saveservice.assertion_results=all"],
                       check=True, capture_output=True, timeout=300)
    points = [p for p in map(json.loads, (tmp_path / "k6.json").read_text().splitlines()) if p["type"] == "Point"]
    checks = {p["data"]["tags"]["check"]: p["data"]["value"] for p in points if p.get("metric") == "checks"}
    assert checks == {"list is served": 1, 'finds the unicorn, "always"': 0, "status is 200": 1}
    reqs = [p["data"]["tags"] for p in points if p.get("metric") == "http_reqs"]
    assert [(t["team"], t["tier"]) for t in reqs] == [("catalogue", "gold")]
    results = ET.parse(tmp_path / "j.jtl").getroot()
    assertions = {a.findtext("name"): a.findtext("failure") for a in results.iter("assertionResult")}
    assert assertions == {"list is served": "false", 'finds the unicorn, "always"': "true", "status is 200": "false"}


@pytest.mark.parametrize("tool", ["k6", "jmeter"])
def test_think_time_after_a_group_is_outside_it(tool: str, tmp_path: Path) -> None:
    spec = load_spec(ROOT / "tests" / "golden" / "pauses" / "spec.yaml")
    with DemoAPI(record=True, delay_ms=(1.0, 2.0)) as api:
        requests = run_script(spec, tool, api, tmp_path, profile="golden")
    assert [r.path for r in requests] == ["/health", "/login", "/products"] * 2
    if tool == "k6":
        points = [p for p in map(json.loads, (tmp_path / "k6.json").read_text().splitlines()) if p["type"] == "Point"]
        groups = [p["data"]["value"] for p in points if p["metric"] == "group_duration"]
        iterations = [p["data"]["value"] for p in points if p["metric"] == "iteration_duration"]
    else:
        rows = [line.split(",") for line in (tmp_path / "jmeter.jtl").read_text().splitlines()[1:]]
        groups = [float(r[1]) for r in rows if r[2] == "buy"]  # the transaction's own sample
        starts = [int(r[0]) for r in rows if r[2] == "look"]
        iterations = [starts[1] - starts[0]]
    assert len(groups) == 2 and max(groups) < 500  # two requests of a few ms, without the 700 ms pause
    assert min(iterations) >= 1000  # the group's 700 ms and the journey's 300 ms are still slept
