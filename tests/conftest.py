"""Shared fixtures: tool requirements that skip on a laptop but fail under CI=true, local servers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from orchestrator.demo_api import DemoAPI

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """The signal dispositions the tests rely on. A suite started as a background job (`make test &`, a CI
    runner's shell) inherits SIGINT ignored, and every process it starts would too: Ctrl-C sent by a test
    would then be lost. SIGINT raises KeyboardInterrupt here, so the processes the tests start (a handler
    becomes the default on exec) treat it as a terminal's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="Rewrite golden files from the generators.")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist's loadgroup (`make test`), the tests of a module that shares a module-scoped fixture (a
    recorded run, a filled warehouse) go to one worker, so the fixture is made once; the tests that use the one
    Docker engine say so themselves (xdist_group "docker"). Every other test goes wherever a worker is free. Each
    worker is its own process, so the embedded warehouse's one-path-per-process rule holds within a worker as
    it does in a serial run."""
    if getattr(config.option, "dist", "no") != "loadgroup":
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        info = getattr(item, "_fixtureinfo", None)
        scopes = {d.scope for defs in (info.name2fixturedefs.values() if info else ()) for d in defs}
        if "module" in scopes or "class" in scopes:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


def unavailable(reason: str, hint: str = "") -> NoReturn:
    """Skip a test whose tool or engine is missing on a laptop; under CI=true every integration test must run,
    so there it fails, saying what sets the tool up (`hint`)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}, and CI=true requires every integration test to run" + (f" ({hint})" if hint else ""))
    pytest.skip(reason)


def need(binary: str) -> str:
    """The binary's path; skip the test when it is missing, except under CI=true where it fails."""
    path = shutil.which(binary)
    if path is None:
        unavailable(f"{binary} is not installed")
    return path


@pytest.fixture
def demo_api() -> Iterator[DemoAPI]:
    with DemoAPI(record=True) as api:
        yield api


@pytest.fixture
def warehouse_url(tmp_path: Path) -> str:
    return f"chdb://{tmp_path / 'warehouse'}"


def run_k6(tmp: Path, api: DemoAPI, seconds: str = "2s") -> Path:
    """A real k6 JSON output: two VUs on the demo API for a couple of seconds."""
    script = tmp / "probe.js"
    script.write_text(
        'import http from "k6/http";\n'
        f'export const options = {{ vus: 2, duration: "{seconds}" }};\n'
        f'export default function () {{ http.get("{api.url}/products?category=books"); '
        f'http.get("{api.url}/nope"); }}\n',
        encoding="utf-8",
    )
    out = tmp / "probe.json"
    subprocess.run([need("k6"), "run", "--quiet", "--out", f"json={out}", str(script)], check=True,
                   capture_output=True, timeout=120)
    return out


def run_jmeter_default(tmp: Path, api: DemoAPI) -> Path:
    """A real JTL written with JMeter's default settings (2.13: CSV without a header row)."""
    from orchestrator.generators import GenerationOptions
    from orchestrator.spec import load_spec
    from orchestrator.tools import generate

    spec = load_spec(ROOT / "examples" / "shop.yaml")
    plan = tmp / "shop.jmx"
    plan.write_text(generate(spec, "jmeter", GenerationOptions("smoke", {"api": api.url}, "2.13")).content)
    out = tmp / "default.jtl"
    subprocess.run([need("jmeter"), "-n", "-t", str(plan), "-l", str(out), "-j", str(tmp / "jm.log")], check=True,
                   capture_output=True, timeout=300)
    return out


@pytest.fixture(scope="session")
def k6_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with DemoAPI() as api:
        return run_k6(tmp_path_factory.mktemp("k6"), api)


@pytest.fixture(scope="session")
def jtl_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with DemoAPI() as api:
        return run_jmeter_default(tmp_path_factory.mktemp("jmeter"), api)
