"""import-jmx: a team's JMeter plans become specs whose generated scripts send what the plans send under JMeter."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import yaml

from orchestrator.demo_api import DemoAPI, Recorded
from orchestrator.generators import GenerationOptions
from orchestrator.spec import load_spec
from orchestrator.tools import TOOLS, generate
from tests.conftest import ROOT, need
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration
PLANS = ROOT / "tests" / "fixtures" / "jmx"

# what the server saw of one request: method, path, query, the headers the plan sets, the body
Seen = tuple[str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], object]


def seen(requests: list[Recorded], headers: tuple[str, ...], skip: tuple[str, ...] = ()) -> list[Seen]:
    """The requests as comparable values, sorted (thread groups run side by side); a token the server issued
    is the same in every run once its random part is masked."""
    out = []
    for r in requests:
        if r.path.startswith(skip):
            continue
        ctype = r.headers.get("content-type", "").split(";")[0].strip()
        text = re.sub(r"tok-(\w+)-\d+", r"tok-\1-N", r.body.decode("utf-8"))
        body: object = text
        if ctype == "application/x-www-form-urlencoded":
            body = tuple(sorted(parse_qsl(text, keep_blank_values=True)))
        picked = tuple((h, re.sub(r"tok-(\w+)-\d+", r"tok-\1-N", r.headers.get(h, "")).split(";")[0])
                       for h in headers)
        out.append((r.method, r.path, tuple(r.query), picked, body))
    return sorted(out, key=repr)


_SENT: dict[str, list[Recorded]] = {}


def under_jmeter(plan: Path, tmp_path: Path) -> list[Recorded]:
    """What the plan itself sends under the JMeter on this machine (2.13 here), its server given by -J; run once
    per plan for the tests of this module."""
    if plan.name in _SENT:
        return _SENT[plan.name]
    binary = need("jmeter")
    work = tmp_path / "plan"
    shutil.copytree(plan.parent, work)
    with DemoAPI(record=True) as api:
        proc = subprocess.run([binary, "-n", "-t", str(work / plan.name), "-l", str(work / "plan.jtl"),
                               "-j", str(work / "jmeter.log"), "-Jhost=127.0.0.1", f"-Jport={api.port}"],
                              cwd=work, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0 and "Created the tree successfully" in proc.stdout, proc.stdout + proc.stderr
        _SENT[plan.name] = api.requests
    return _SENT[plan.name]


def imported(plan: Path, tmp_path: Path) -> tuple[Path, str, list[str]]:
    """The spec import-jmx writes for the plan (with its data files beside it), its text and what it left out."""
    out = tmp_path / "spec" / f"{plan.stem}.yaml"
    out.parent.mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "import-jmx", str(plan), "-o", str(out),
                           "--name", plan.stem.split("-")[0]], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    left_out = [line.removeprefix("not imported: ") for line in proc.stderr.splitlines()
                if line.startswith("not imported: ")]
    return out, out.read_text(encoding="utf-8"), left_out


def through_tool(spec_path: Path, tool: str, tmp_path: Path, profile: str = "plan") -> list[Recorded]:
    """What the spec's script for `tool` sends, generated for the tool's version on this machine."""
    binary = need(tool)
    spec = load_spec(spec_path)
    work = tmp_path / tool
    work.mkdir()
    with DemoAPI(record=True) as api:
        options = GenerationOptions(profile, {name: api.url for name in spec.services})
        script = generate(spec, tool, TOOLS[tool].for_version(options, TOOLS[tool].version(binary)))
        for data in script.files:
            shutil.copy(data, work / data.name)
        path = work / script.filename
        path.write_text(script.content, encoding="utf-8")
        proc = subprocess.run(TOOLS[tool].invocation(binary, path, work).argv, cwd=work, capture_output=True,
                              text=True, timeout=300)
        assert TOOLS[tool].completed(proc.returncode), proc.stdout[-3000:] + proc.stderr[-3000:]
        return api.requests


SHOP_HEADERS = ("accept", "x-client", "authorization", "content-type")


@pytest.mark.parametrize("tool", ["k6", "jmeter"])
def test_jmeter_2_13_plan_and_its_imported_spec_send_the_same_requests(tool: str, tmp_path: Path) -> None:
    plan = PLANS / "shop-2.13.jmx"
    spec_path, text, left_out = imported(plan, tmp_path)
    assert (spec_path.parent / "users.csv").read_text() == "user,password\ndemo,secret\nalice,pa$w0rd\n"
    assert left_out == [
        "Shop checkout / Shoppers / Only for admins [IfController]: runs its children on a condition known only at "
        "run time (and the 1 element under it)",
        "Shop checkout / Shoppers / Checkout / Log in / log the token [BeanShellPostProcessor]: a script",
    ]
    assert "#   Shop checkout / Shoppers / Only for admins [IfController]" in text  # said in the spec too
    expected = seen(under_jmeter(plan, tmp_path), SHOP_HEADERS)
    assert len(expected) == 12 and not any(r[1] == "/echo/admin/report" for r in expected)  # the admin is never in
    assert seen(through_tool(spec_path, tool, tmp_path), SHOP_HEADERS) == expected


@pytest.mark.parametrize("tool", ["k6", "jmeter"])
def test_jmeter_5_plan_and_its_imported_spec_send_the_same_requests(tool: str, tmp_path: Path) -> None:
    plan = PLANS / "catalog-5.x.jmx"
    spec_path, _, left_out = imported(plan, tmp_path)
    assert [line.split(" [")[0] for line in left_out] == [
        "Catalog API / Readers / Until the cart is empty", "Catalog API / Editors / Publish / Sign the request",
        "Catalog API / Editors / Show variables", "Catalog API / Editors / By role",
        "Catalog API / Editors / Reuse login"]
    headers = ("accept", "x-tenant", "content-type")
    # what JMeter runs under the elements left out is what the spec does not send
    expected = seen(under_jmeter(plan, tmp_path), headers, skip=("/echo/drain", "/echo/approve"))
    assert len(expected) == 14 and ("lang", "en") in expected[0][2]  # the defaults' argument with the request's
    assert seen(through_tool(spec_path, tool, tmp_path), headers) == expected


@pytest.mark.parametrize("tool", ["k6", "jmeter"])
def test_timed_plan_and_its_imported_spec_send_the_same_kinds_of_request(tool: str, tmp_path: Path) -> None:
    plan = PLANS / "steady-2.13.jmx"
    spec_path, text, left_out = imported(plan, tmp_path)
    assert [line.split(" [")[0] for line in left_out] == [
        "Test Plan / setUp Thread Group", "Test Plan / Steady traffic / HTTP Request / no stack trace",
        "Test Plan / Steady traffic / Item flow / First time only", "Test Plan / Steady traffic / One report per pass"]
    doc = yaml.safe_load(text)
    assert doc["profiles"]["plan"] == {"executor": "constant_vus", "vus": 1, "duration": "3s"}
    # the plan runs for a time: each side sends each kind of request it sends, and no other
    expected = set(seen(under_jmeter(plan, tmp_path), ("x-flow",), skip=("/echo/setup", "/echo/warmup",
                                                                         "/echo/report")))
    assert {r[1] for r in expected} == {"/products/999", "/echo/items/11", "/echo/items/12", "/echo/items/13",
                                        "/echo/items/11/stock", "/echo/items/12/stock", "/echo/items/13/stock"}
    assert set(seen(through_tool(spec_path, tool, tmp_path), ("x-flow",))) == expected


@pytest.mark.parametrize("tool", ["k6", "jmeter"])
def test_plan_jmeter_2_13_cannot_load_imports_to_a_spec_that_extracts_and_sends_its_flow(tool: str,
                                                                                         tmp_path: Path) -> None:
    # JSON and boundary extractors and the throughput shaping plugin are newer than this machine's JMeter: the
    # plan's flow is known from the plan itself
    spec_path, text, _ = imported(PLANS / "orders-5.x.jmx", tmp_path)
    doc = yaml.safe_load(text)
    doc["profiles"]["once"] = {"executor": "iterations", "vus": 1, "iterations": 1}
    spec_path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    got = seen(through_tool(spec_path, tool, tmp_path, profile="once"), ("accept", "authorization", "content-type"))
    assert got == sorted([
        ("POST", "/login", (), (("accept", "application/json"), ("authorization", ""),
                                ("content-type", "application/json")), '{"user":"demo","password":"secret"}'),
        ("GET", "/products", (("category", "books"),), (("accept", "application/json"), ("authorization", ""),
                                                        ("content-type", "")), ""),
        # the boundary extractor's id and the JSON extractor's token
        ("POST", "/cart", (), (("accept", "application/json"), ("authorization", "Bearer tok-demo-N"),
                               ("content-type", "application/json")), '{"product_id": 1, "qty": 1}'),
        ("GET", "/products/$%7B__Random%281,40%29%7D", (), (("accept", "application/json"), ("authorization", ""),
                                                    ("content-type", "")), ""),
    ], key=repr)


def test_imported_spec_runs_through_perfhouse_with_both_tools_like_the_plan(tmp_path: Path) -> None:
    plan = PLANS / "shop-2.13.jmx"
    spec_path, _, _ = imported(plan, tmp_path)
    expected = seen(under_jmeter(plan, tmp_path), SHOP_HEADERS)
    need("k6")
    warehouse = f"chdb://{tmp_path / 'warehouse'}"
    with DemoAPI(record=True) as api:
        proc = subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", warehouse, "run", str(spec_path),
                               "--profile", "plan", "--tool", "k6,jmeter", "--service", f"app={api.url}",
                               "--runs-dir", str(tmp_path / "runs"), "--progress-interval", "0"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=600)
        requests = api.requests
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert seen(requests, SHOP_HEADERS) == sorted(expected * 2, key=repr)  # each tool sent what the plan sends
    rows = Warehouse.open(warehouse).backend.query("SELECT tool, count() AS n FROM requests GROUP BY tool ORDER BY tool")
    assert [(r["tool"], r["n"]) for r in rows] == [("jmeter", 12), ("k6", 12)]
