"""Every tool's generated script against a recording server: same requests, same order, extraction used."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from orchestrator.demo_api import DemoAPI, Recorded
from orchestrator.generators import GenerationOptions, generate
from orchestrator.spec import Spec, load_spec
from orchestrator.tools import TOOLS
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
