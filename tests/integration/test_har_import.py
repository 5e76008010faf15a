"""import-har: a browser recording becomes a spec that loads and replays the recorded calls."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.demo_api import DemoAPI
from orchestrator.generators import GenerationOptions
from orchestrator.har import har_to_spec, import_har
from orchestrator.spec import load_spec
from orchestrator.tools import generate
from tests.conftest import need

BASE = "http://127.0.0.1:8080"


def entry(method: str, url: str, status: int = 200, mime: str = "application/json", started: str = "00.000",
          post: dict[str, object] | None = None, query: list[dict[str, str]] | None = None) -> dict[str, object]:
    request: dict[str, object] = {
        "method": method, "url": url, "queryString": query or [],
        "headers": [{"name": "Accept", "value": "application/json"}, {"name": "Cookie", "value": "s=1"},
                    {"name": ":authority", "value": "x"}, {"name": "X-Price", "value": "$5"}],
    }
    if post is not None:
        request["postData"] = post
    return {"startedDateTime": f"2026-11-23T10:00:{started}Z", "time": 20, "request": request,
            "response": {"status": status, "content": {"mimeType": mime}}}


HAR = {"log": {"entries": [
    entry("GET", f"{BASE}/static/app.js", mime="application/javascript"),
    entry("GET", f"{BASE}/products?category=books", started="00.100",
          query=[{"name": "category", "value": "books"}]),
    entry("GET", f"{BASE}/logo.png", mime="image/png", started="00.200"),
    entry("POST", f"{BASE}/login", started="02.120",
          post={"mimeType": "application/json", "text": json.dumps({"user": "demo", "password": "p$w"})}),
    entry("POST", f"{BASE}/cart", status=401, started="02.500",
          post={"mimeType": "application/x-www-form-urlencoded", "params": [{"name": "id", "value": "3"}]}),
]}}


def test_har_becomes_one_journey_without_static_assets_or_browser_headers() -> None:
    doc = har_to_spec(HAR, "shop")
    assert doc["services"] == {"app": BASE}
    steps = doc["journeys"][0]["steps"]
    assert [(s["method"], s["path"]) for s in steps] == [("GET", "/products"), ("POST", "/login"),
                                                          ("POST", "/cart")]
    assert steps[0]["query"] == {"category": "books"}
    assert steps[0]["headers"] == {"Accept": "application/json", "X-Price": "$$5"}
    assert steps[0]["think_time"] == "2s"  # 2.12 s later, less the 20 ms the call took
    assert steps[1]["body"] == {"json": {"user": "demo", "password": "p$$w"}}
    assert steps[2]["body"] == {"form": {"id": "3"}} and steps[2]["checks"] == [{"status": 401}]
    assert steps[2]["expected_statuses"] == 401 and "expected_statuses" not in steps[1]  # as recorded


@pytest.mark.integration
def test_imported_spec_replays_the_recording_with_k6(tmp_path: Path) -> None:
    har_path = tmp_path / "session.har"
    har_path.write_text(json.dumps(HAR))
    spec_path = tmp_path / "spec.yaml"
    doc = yaml.safe_load(import_har(har_path, "shop"))
    doc["profiles"]["once"] = {"executor": "iterations", "vus": 1, "iterations": 1}
    spec_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    spec = load_spec(spec_path)
    binary = need("k6")
    with DemoAPI(record=True) as api:
        script = generate(spec, "k6", GenerationOptions("once", {"app": api.url}))
        path = tmp_path / script.filename
        path.write_text(script.content)
        subprocess.run([binary, "run", "--quiet", str(path)], check=True, capture_output=True, timeout=120)
        seen = [(r.method, r.path, r.query, r.headers.get("x-price"), r.body) for r in api.requests]
    assert seen == [
        ("GET", "/products", [("category", "books")], "$5", b""),
        ("POST", "/login", [], "$5", json.dumps({"user": "demo", "password": "p$w"}, separators=(",", ":")).encode()),
        ("POST", "/cart", [], "$5", b"id=3"),
    ]
