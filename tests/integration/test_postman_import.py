"""import-postman: a Postman collection becomes a spec that loads and replays the collection's flow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.demo_api import DemoAPI
from orchestrator.generators import GenerationOptions
from orchestrator.postman import postman_to_spec
from orchestrator.spec import load_spec
from orchestrator.tools import TOOLS, generate
from tests.conftest import need
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration


def request(name: str, method: str, url: str, tests: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"name": name, "request": {"method": method, "url": {"raw": url}, **extra}}
    if tests is not None:
        item["event"] = [{"listen": "test", "script": {"type": "text/javascript", "exec": tests}}]
    return item


COLLECTION: dict[str, Any] = {
    "info": {"name": "Shop API", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
    "variable": [{"key": "baseUrl", "value": "http://127.0.0.1:8080"}, {"key": "category", "value": "books"},
                 {"key": "unused", "value": "x", "disabled": True}],
    "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{token}}", "type": "string"}]},
    "item": [
        {"name": "Browse products", "auth": {"type": "noauth"}, "item": [
            request("List products", "GET", "{{baseUrl}}/products?category={{category}}",
                    ["pm.test('ok', function () {", "    pm.response.to.have.status(200);", "});",
                     "const body = pm.response.json();",
                     "pm.collectionVariables.set(\"product_id\", body.items[0].id);",
                     "console.log(body.total);"],
                    header=[{"key": "Accept", "value": "application/json"},
                            {"key": "X-Off", "value": "1", "disabled": True}]),
            request("View product", "GET", "{{baseUrl}}/products/{{product_id}}",
                    ["pm.response.to.have.status(200);"]),
        ]},
        {"name": "checkout", "item": [
            request("log in", "POST", "{{baseUrl}}/login",
                    ["pm.response.to.have.status(200);",
                     "pm.environment.set('token', pm.response.json().token);"],
                    auth={"type": "basic", "basic": [{"key": "username", "value": "demo"},
                                                     {"key": "password", "value": "secret"}]},
                    body={"mode": "raw", "raw": json.dumps({"user": "demo", "password": "{{password}}"}),
                          "options": {"raw": {"language": "json"}}}),
            request("add to cart", "POST", "{{baseUrl}}/cart", ["pm.response.to.have.status(201);"],
                    body={"mode": "urlencoded", "urlencoded": [{"key": "product_id", "value": "3"}]}),
            request("upload", "POST", "{{baseUrl}}/echo/upload",
                    body={"mode": "formdata", "formdata": [{"key": "f", "type": "file", "src": "a.png"}]}),
        ]},
    ],
}


def test_collection_maps_folders_variables_auth_and_tests() -> None:
    doc, warnings = postman_to_spec(COLLECTION, "shop")
    assert doc["services"] == {"baseUrl": "http://127.0.0.1:8080"}
    assert doc["variables"] == {"baseUrl": "http://127.0.0.1:8080", "category": "books"}
    browse, checkout = doc["journeys"]
    assert (browse["name"], browse["label"], checkout["name"]) == ("Browse_products", "Browse products", "checkout")
    listing, view = browse["steps"]
    assert listing == {"name": "List_products", "label": "List products", "service": "baseUrl", "method": "GET",
                       "path": "/products", "query": {"category": "${category}"},
                       "headers": {"Accept": "application/json"}, "checks": [{"status": 200, "name": "ok"}],
                       "extract": {"product_id": {"jsonpath": "$.items[0].id"}}}
    assert view["path"] == "/products/${product_id}" and "headers" not in view  # the folder says noauth
    login, cart, upload = checkout["steps"]
    assert login["headers"] == {"Authorization": "Basic ZGVtbzpzZWNyZXQ="}
    assert login["body"] == {"json": {"user": "demo", "password": "${env:password}"}}
    assert login["extract"] == {"token": {"jsonpath": "$.token"}}
    assert cart["headers"] == {"Authorization": "Bearer ${token}"} and cart["body"] == {"form": {"product_id": "3"}}
    assert "body" not in upload
    assert any("console.log(body.total);" in w for w in warnings)
    assert any("formdata body is not imported" in w for w in warnings)
    assert any("{{password}}" in w and "environment variable password" in w for w in warnings)


def test_odd_collections_warn_instead_of_failing() -> None:
    odd = {"info": {"schema": "v1"}, "item": [
        None, {"name": "a", "request": "https://example.test/x?y=1"},
        {"name": "b", "request": {"method": "GET", "url": "{{host}}/z", "auth": {"type": "digest"}},
         "event": [{"listen": "prerequest", "script": {"exec": "pm.variables.set('x', 1)"}}]},
    ]}
    doc, warnings = postman_to_spec(odd, "odd")
    steps = doc["journeys"][0]["steps"]
    assert [(s["service"], s["path"]) for s in steps] == [("example", "/x"), ("api", "/z")]
    assert steps[0]["query"] == {"y": "1"}
    assert len(warnings) >= 4  # schema, base URL, digest auth, pre-request script


def test_imported_collection_runs_the_flow_with_extracted_values(tmp_path: Path) -> None:
    path = tmp_path / "shop.postman_collection.json"
    path.write_text(json.dumps(COLLECTION), encoding="utf-8")
    spec_path = tmp_path / "shop.yaml"
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "import-postman", str(path), "-o", str(spec_path),
                           "--name", "shop"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "warning: checkout / upload: a formdata body is not imported" in proc.stderr
    text = spec_path.read_text(encoding="utf-8")
    assert "# Not imported:\n" in text and yaml.safe_load(text)["name"] == "shop"
    doc = yaml.safe_load(text)
    doc["profiles"] = {"once": {"executor": "iterations", "vus": 1, "iterations": 1}}
    spec_path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    spec = load_spec(spec_path)
    for tool in ("k6", "jmeter"):
        binary = need(tool)
        version = TOOLS[tool].version(binary) if tool == "jmeter" else "5.6"
        (tmp_path / tool).mkdir()
        with DemoAPI(record=True) as api:
            script = generate(spec, tool, GenerationOptions("once", {"baseUrl": api.url}, version))
            script_path = tmp_path / tool / script.filename
            script_path.write_text(script.content, encoding="utf-8")
            argv = TOOLS[tool].invocation(binary, script_path, tmp_path / tool).argv
            env = {**os.environ, "password": "secret"}
            if tool == "jmeter":  # ${env:NAME} reaches JMeter as a property (perfhouse run writes a file)
                argv.append("-Jperfhouse.env.password=secret")
            done = subprocess.run(argv, cwd=tmp_path / tool, env=env, capture_output=True, text=True, timeout=300)
            assert TOOLS[tool].completed(done.returncode), done.stderr[-2000:]
            seen = api.requests
        assert sorted((r.method, r.path) for r in seen) == [("GET", "/products"), ("GET", "/products/1"),
                                                           ("POST", "/cart"), ("POST", "/echo/upload"),
                                                           ("POST", "/login")], tool
        cart = next(r for r in seen if r.path == "/cart")
        assert cart.headers["authorization"].startswith("Bearer tok-demo-"), tool
        login = next(r for r in seen if r.path == "/login")
        assert json.loads(login.body) == {"user": "demo", "password": "secret"}, tool


def test_status_tests_become_checks_that_fail_when_the_status_differs(tmp_path: Path) -> None:
    base = "http://127.0.0.1:8080"
    collection = {"info": {"name": "status", "schema": COLLECTION["info"]["schema"]}, "item": [
        request("missing product", "GET", f"{base}/products/999",
                ["pm.test('Status code is 200', function () {", "    pm.response.to.have.status(200);", "});"]),
        request("list", "GET", f"{base}/products",
                ['pm.test("created", () => { pm.expect(pm.response.code).to.eql(201); });']),
        request("health", "GET", f"{base}/health",
                ["pm.test('healthy', function () { pm.response.to.be.ok; });",
                 "pm.test('body', function () { pm.expect(pm.response.json().status).to.eql('ok'); });"]),
    ]}
    doc, warnings = postman_to_spec(collection, "status")
    assert [s["checks"] for s in doc["journeys"][0]["steps"]] == [
        [{"status": 200, "name": "Status code is 200"}], [{"status": 201, "name": "created"}],
        [{"status": 200, "name": "healthy"}]]
    assert len(warnings) == 1 and "pm.test('body'" in warnings[0]  # not a status test: said, not dropped silently
    doc["profiles"] = {"once": {"executor": "iterations", "vus": 1, "iterations": 1}}
    (tmp_path / "status.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    spec = load_spec(tmp_path / "status.yaml")
    binary = need("k6")
    with DemoAPI() as api:  # answers 404 for the missing product and 200 for the list
        script = generate(spec, "k6", GenerationOptions("once", {s: api.url for s in spec.services}))
        path = tmp_path / script.filename
        path.write_text(script.content, encoding="utf-8")
        invocation = TOOLS["k6"].invocation(binary, path, tmp_path)
        done = subprocess.run(invocation.argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert TOOLS["k6"].completed(done.returncode), done.stderr[-2000:]
    checks = json.loads((tmp_path / "k6-summary.json").read_text())["root_group"]["checks"]
    assert {name: (c["passes"], c["fails"]) for name, c in checks.items()} == {
        "Status code is 200": (0, 1), "created": (0, 1), "healthy": (1, 0)}
    warehouse = Warehouse.open(f"chdb://{tmp_path / 'warehouse'}")
    run_id = warehouse.ingest(tmp_path / "k6.json").run_id
    rows = warehouse.backend.query("SELECT step, status, failed_checks, failed_check FROM requests "
                                   "WHERE run_id = {r:String} ORDER BY step", {"r": run_id})
    assert [tuple(r.values()) for r in rows] == [("health", 200, 0, ""), ("list", 200, 1, "created"),
                                                 ("missing product", 404, 1, "Status code is 200")]
