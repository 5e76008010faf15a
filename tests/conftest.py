"""Shared fixtures: tool requirements that skip on a laptop but fail under CI=true, local servers."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
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


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (`make test`): two workers per core, at most eight. Most of the suite's time is spent waiting on
    load runs of a fixed duration, servers and subprocesses, not computing, so one worker per core would leave
    the cores idle half the time. PYTEST_XDIST_AUTO_NUM_WORKERS still overrides this."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(2, min(8, 2 * cores))


# Tests whose verdicts rest on latencies or rates measured on this machine (a 1-4 ms API against a slower one,
# rates a load shape holds, a server's capacity knee, the SLO verdicts of the dashboard's recorded run): under
# xdist they share one group, so no two of them load the cores at once, while the other workers run the rest.
TIMING_MODULES = frozenset({
    "tests/integration/test_gate.py", "tests/integration/test_gate_repeat.py",
    "tests/integration/test_load_shapes.py", "tests/integration/test_report_capacity.py",
    "tests/integration/test_dashboard.py",
})


def _loadgroup(config: pytest.Config) -> bool:
    """Whether pytest-xdist distributes by group: on the controller `--dist loadgroup`; on a worker, where xdist
    sets `dist` to "no", its own `loadgroup` flag."""
    return bool(getattr(config.option, "loadgroup", False)) or getattr(config.option, "dist", "no") == "loadgroup"


def _group_suffix(item: pytest.Item) -> bool:
    """Put the item's xdist_group names after its node id, as the controller's loadgroup scheduler reads them.
    pytest-xdist 3.8 writes them to `item._nodeid`, which pytest 9.2's structured node ids no longer read, so
    every group was silently split across workers (pytest-xdist issue 1386); with such ids the suffix is set
    on the structured id here, in the form xdist gives it."""
    names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                    for m in item.iter_markers("xdist_group")})
    node_id = getattr(item, "_id", None)
    if not names or node_id is None or not hasattr(type(node_id), "parse"):
        return False  # no group, or an older pytest whose `_nodeid` xdist sets itself
    if "@" not in item.nodeid.rsplit("]", 1)[-1]:
        item._id = type(node_id).parse(f"{item.nodeid}@{'_'.join(names)}")
    return True


def _shared_fixture_group(item: pytest.Item) -> str:
    """The xdist group of a test that uses a module- or class-scoped fixture: its module, and for each such fixture
    that is parametrized, which of its values the test gets (each value is its own fixture instance, made once,
    so the values of a costly parametrized fixture are made on different workers at once); "" for no such fixture."""
    info = getattr(item, "_fixtureinfo", None)
    shared = [(name, d) for name, defs in (info.name2fixturedefs.items() if info else ()) for d in defs
              if d.scope in ("module", "class")]
    if not shared:
        return ""
    indices = getattr(getattr(item, "callspec", None), "indices", {})
    values = sorted({f":{name}={indices[name]}" for name, d in shared if d.params is not None and name in indices})
    return item.nodeid.split("::", 1)[0] + "".join(values)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist's loadgroup (`make test`), the tests of a module that shares a module-scoped fixture (a
    recorded run, a filled warehouse) go to one worker, so the fixture is made once (each value of a parametrized
    one on a worker of its own: _shared_fixture_group); the tests that use the one
    Docker engine say so themselves (xdist_group "docker"), and the timing-sensitive modules share one group
    (TIMING_MODULES). Every other test goes wherever a worker is free. Each worker is its own process, so the
    embedded warehouse's one-path-per-process rule holds within a worker as it does in a serial run. A group
    that would not reach the scheduler stops the run instead of being split across workers unnoticed."""
    if not _loadgroup(config):
        return
    for item in items:
        if item.nodeid.split("::", 1)[0] in TIMING_MODULES and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group("timing"))
        if item.get_closest_marker("xdist_group") is None and (group := _shared_fixture_group(item)):
            item.add_marker(pytest.mark.xdist_group(group))
    suffixed = [item for item in items if _group_suffix(item)]
    if hasattr(config, "workerinput"):  # a worker: the ids it sends to the controller must carry the groups
        lost = [i.nodeid for i in suffixed if "@" not in i.nodeid.rsplit("]", 1)[-1]]
        if lost:
            raise pytest.UsageError(f"--dist loadgroup: {len(lost)} grouped tests have no @group in their node id "
                                    f"(first: {lost[0]}); this pytest-xdist cannot group them")


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


def recorded_once(tmp_path_factory: pytest.TempPathFactory, name: str, record: Callable[[Path], Path]) -> Path:
    """A recording every xdist worker of one run reads: the first worker to ask makes it (`record` into a fresh
    directory) in the run's own temporary directory, the others wait for it under a file lock and take the same
    file; without xdist, made once for the session as any session fixture is. Its readers only read it."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the controller's directory of this run, above each worker's popen-gwN
    with open(base / f"recorded-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also when `record` fails
        made = base / f"recorded-{name}.path"
        if not made.exists():
            made.write_text(str(record(Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base)))))
        return Path(made.read_text())


def _record_k6(directory: Path) -> Path:
    with DemoAPI() as api:
        return run_k6(directory, api)


def _record_jmeter(directory: Path) -> Path:
    with DemoAPI() as api:
        return run_jmeter_default(directory, api)


@pytest.fixture(scope="session")
def k6_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recorded_once(tmp_path_factory, "k6", _record_k6)


@pytest.fixture(scope="session")
def jtl_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recorded_once(tmp_path_factory, "jmeter", _record_jmeter)
